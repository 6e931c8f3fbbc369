-- The first $per_task successful episodes of each task (by episode_index): the demo budget.
WITH demos AS (
    SELECT
        episode_index,
        split_part(env_id, '/', 2) AS task,
        row_number() OVER (PARTITION BY env_id ORDER BY episode_index) AS n
    FROM episodes
    WHERE success
)
SELECT s."observation.state" AS state, s.action, d.task
FROM demos AS d
JOIN steps AS s USING (episode_index)
WHERE d.n <= $per_task
ORDER BY s."index"
