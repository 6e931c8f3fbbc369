-- LeRobot timestamps are frame_index / fps (same tolerance as LeRobot's own check).
SELECT filename, file_row_number AS row, 'timestamp' AS field,
       'is ' || timestamp || ', expected frame_index / fps = ' || (frame_index / {fps}) AS message
FROM steps
WHERE abs(timestamp - frame_index / {fps}) > 1e-4
