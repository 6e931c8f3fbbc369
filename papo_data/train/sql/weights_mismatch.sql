-- Weights whose (episode_uid, frame_index) is not the step at their `index` here: a file
-- exported from another dataset, or edited. The first one, if any.
SELECT w."index", s.episode_uid, s.frame_index, w.episode_uid AS file_uid, w.frame_index AS file_frame
FROM step_weights w JOIN steps s USING ("index")
WHERE w.episode_uid IS DISTINCT FROM s.episode_uid OR w.frame_index IS DISTINCT FROM s.frame_index
ORDER BY w."index"
LIMIT 1
