-- Sidecar rows must name an existing episode.
SELECT filename, file_row_number AS row, 'episode_uid' AS field,
       'episode ' || episode_uid || ' is not in meta/episodes' AS message
FROM {table} ANTI JOIN episodes USING (episode_uid)
