-- Row counts compared with the totals in meta/info.json.
SELECT (SELECT count(*) FROM steps) AS total_frames,
       (SELECT count(*) FROM episodes) AS total_episodes,
       (SELECT count(*) FROM tasks) AS total_tasks
