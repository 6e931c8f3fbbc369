-- Sidecar rows of an existing episode must name one of its frames, 0..length-1 (the steps
-- rules check that the episode's frames are exactly those).
SELECT x.filename, x.file_row_number AS row, 'frame_index' AS field,
       'episode ' || x.episode_uid || ' has no frame ' || x.frame_index || ' in steps' AS message
FROM {table} x
JOIN episodes e USING (episode_uid)
WHERE x.frame_index NOT BETWEEN 0 AND e.length - 1
