-- Weights join onto steps by `index`: the index must be the step's.
SELECT w.filename, w.file_row_number AS row, 'index' AS field,
       'is ' || w."index" || ', but the step (' || w.episode_uid || ', frame ' || w.frame_index
       || ') has index ' || s."index" AS message
FROM weights w JOIN steps s ON s.episode_uid = w.episode_uid AND s.frame_index = w.frame_index
WHERE w."index" <> s."index" OR w.episode_index <> s.episode_index
