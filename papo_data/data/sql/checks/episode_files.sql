-- Which data files hold each episode's frames (compared with data/chunk_index, data/file_index).
SELECT e.filename, e.file_row_number AS row, e.episode_index,
       e."data/chunk_index" AS chunk_index, e."data/file_index" AS file_index,
       list(DISTINCT s.filename) AS files
FROM episodes e JOIN steps s USING (episode_index)
GROUP BY ALL
