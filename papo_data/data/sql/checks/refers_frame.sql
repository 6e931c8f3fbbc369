-- Sidecar rows of an existing episode must name an existing frame of it.
SELECT x.filename, x.file_row_number AS row, 'frame_index' AS field,
       'episode ' || x.episode_uid || ' has no frame ' || x.frame_index || ' in steps' AS message
FROM {table} x
SEMI JOIN episodes USING (episode_uid)
ANTI JOIN steps s ON s.episode_uid = x.episode_uid AND s.frame_index = x.frame_index
