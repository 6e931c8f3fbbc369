-- Each episode row must describe its frames in `steps` exactly.
WITH frames AS (
    SELECT episode_index,
           count(*) AS length,
           min("index") AS from_index,
           max("index") + 1 AS to_index,
           min(episode_uid) AS uid_min, max(episode_uid) AS uid_max,
           min(task_index) AS task_min, max(task_index) AS task_max,
           bool_or("next.success") AS success,
           sum("next.reward") AS return,
           min(frame_index) FILTER (WHERE "next.success") AS first_success_frame,
           string_agg(DISTINCT filename, ',') AS files
    FROM steps GROUP BY episode_index
),
checks AS (
    SELECT e.filename, e.file_row_number AS row, c.field, c.message
    FROM episodes e
    LEFT JOIN frames f USING (episode_index)
    CROSS JOIN LATERAL (VALUES
        ('episode_index', CASE WHEN f.episode_index IS NULL THEN 'episode ' || e.episode_index || ' has no frames in steps' END),
        ('length', CASE WHEN e.length <> f.length THEN 'is ' || e.length || ', steps hold ' || f.length || ' frames' END),
        ('dataset_from_index', CASE WHEN e.dataset_from_index <> f.from_index THEN 'is ' || e.dataset_from_index || ', first frame has index ' || f.from_index END),
        ('dataset_to_index', CASE WHEN e.dataset_to_index <> f.to_index THEN 'is ' || e.dataset_to_index || ', last frame has index ' || (f.to_index - 1) END),
        ('episode_uid', CASE WHEN f.uid_min <> f.uid_max OR e.episode_uid <> f.uid_min THEN 'is ' || e.episode_uid || ', steps say ' || f.uid_min END),
        ('task_index', CASE WHEN f.task_min <> f.task_max OR e.task_index <> f.task_min THEN 'is ' || e.task_index || ', steps say ' || f.task_min END),
        ('success', CASE WHEN e.success <> f.success THEN 'is ' || e.success || ', steps say ' || f.success END),
        ('return', CASE WHEN abs(e.return - f.return) > 1e-3 * greatest(1, abs(f.return)) THEN 'is ' || e.return || ', steps sum to ' || f.return END),
        ('first_success_frame', CASE WHEN e.first_success_frame IS DISTINCT FROM f.first_success_frame THEN 'is ' || coalesce(CAST(e.first_success_frame AS VARCHAR), 'null') || ', steps say ' || coalesce(CAST(f.first_success_frame AS VARCHAR), 'null') END)
    ) AS c(field, message)
    WHERE f.episode_index IS NULL AND c.field = 'episode_index'
       OR f.episode_index IS NOT NULL AND c.message IS NOT NULL
)
SELECT * FROM checks
UNION ALL
SELECT min(filename), min(file_row_number), 'episode_index',
       'frames of episode ' || episode_index || ' have no row in meta/episodes'
FROM steps
WHERE episode_index NOT IN (SELECT episode_index FROM episodes)
GROUP BY episode_index
