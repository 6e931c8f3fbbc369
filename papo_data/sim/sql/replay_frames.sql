-- Logged observations and actions of one episode over a frame range.
SELECT frame_index, "observation.state" AS state, action, e.env_id
FROM steps JOIN episodes e USING (episode_uid)
WHERE episode_uid = $episode_uid AND frame_index BETWEEN $first AND $last
ORDER BY frame_index
