-- Global index order must follow (episode_index, frame_index), and files hold rows in that order.
SELECT filename, file_row_number AS row, 'index' AS field,
       'is ' || "index" || ' but the row sorts at position ' || (by_key - 1)
       || ' by (episode_index, frame_index)' AS message
FROM (
    SELECT filename, file_row_number, "index",
           row_number() OVER (ORDER BY "index") AS by_index,
           row_number() OVER (ORDER BY episode_index, frame_index) AS by_key
    FROM steps
)
WHERE by_index <> by_key
UNION ALL
SELECT filename, file_row_number, 'index', 'rows are not sorted by index within the file'
FROM (
    SELECT filename, file_row_number, "index",
           lag("index") OVER (PARTITION BY filename ORDER BY file_row_number) AS previous
    FROM steps
)
WHERE "index" < previous
