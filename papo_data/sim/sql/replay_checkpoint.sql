-- The nearest checkpoint at or before a frame.
SELECT frame_index, format, state
FROM snapshots
WHERE episode_uid = $episode_uid AND frame_index <= $frame
ORDER BY frame_index DESC
LIMIT 1
