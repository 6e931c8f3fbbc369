-- One aggregate pass over steps standing in for its row rules when nothing is wrong (the rules
-- then run to name the rows). Counts the faults of two kinds:
-- * `index` runs 0, 1, 2, ... through each file in file order, and the files follow each other
--   without gap or overlap: so every index is used once;
-- * each episode of meta/episodes has `length` frames 0..length-1, all at the same offset from
--   their `index` (so each frame once) and inside its index range; its steps agree with it on
--   uid, task, success, first success and return; and the columns the command reads hold no
--   null where the schema forbids one, no NaN or infinity, and timestamps are frame_index /
--   fps ({row_ok}).
WITH files AS (
    SELECT filename,
           min("index" - file_row_number) AS offset_lo,
           max("index" - file_row_number) AS offset_hi,
           count(*) AS n
    FROM steps GROUP BY filename
),
tiling AS (
    SELECT offset_lo, offset_hi,
           coalesce(sum(n) OVER (ORDER BY offset_lo ROWS UNBOUNDED PRECEDING EXCLUDE CURRENT ROW), 0)
               AS expected_first
    FROM files
),
frames AS (
    SELECT episode_index,
           count(*) AS n,
           min(frame_index) AS first_frame,
           max(frame_index) AS last_frame,
           min("index" - frame_index) AS offset_lo,
           max("index" - frame_index) AS offset_hi,
           min("index") AS from_index,
           min(episode_uid) AS uid_lo, max(episode_uid) AS uid_hi,
           min(task_index) AS task_lo, max(task_index) AS task_hi,
           bool_or("next.success") AS success,
           min(frame_index) FILTER (WHERE "next.success") AS first_success_frame,
           sum("next.reward") AS return,
           bool_and({row_ok}) AS rows_ok
    FROM steps GROUP BY episode_index
)
SELECT (SELECT count(*) FROM tiling
        WHERE offset_lo <> offset_hi OR offset_lo <> expected_first)
     + (SELECT count(*)
        FROM frames f FULL JOIN episodes e USING (episode_index)
        WHERE e.length IS DISTINCT FROM f.n OR f.first_frame <> 0 OR f.last_frame <> f.n - 1
           OR f.offset_lo <> f.offset_hi OR NOT f.rows_ok
           OR e.dataset_from_index <> f.from_index OR e.dataset_to_index <> f.from_index + f.n
           OR f.uid_lo <> f.uid_hi OR e.episode_uid IS DISTINCT FROM f.uid_lo
           OR f.task_lo <> f.task_hi OR e.task_index IS DISTINCT FROM f.task_lo
           OR e.success IS DISTINCT FROM f.success
           OR e.first_success_frame IS DISTINCT FROM f.first_success_frame
           OR NOT abs(e.return - f.return) <= 1e-3 * greatest(1, abs(f.return)))
