-- The initial state (frame 0 observation) and task of every episode.
SELECT s.episode_uid, e.env_id, s."observation.state" AS state
FROM steps s JOIN episodes e USING (episode_uid)
WHERE s.frame_index = 0
