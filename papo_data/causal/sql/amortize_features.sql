-- Features of every planning action of a detector: its scores, where it sits in the episode,
-- the gripper command at t and t-1 and the observation at t.
SELECT pa.episode_uid, pa.frame_index, pa.variation_score, pa.outcome_score, pa.score,
       e.length, s.action[array_length(s.action)] AS gripper_now,
       p.action[array_length(p.action)] AS gripper_before,
       s."observation.state" AS state
FROM planning_actions pa
JOIN episodes e USING (episode_uid)
JOIN steps s ON s.episode_uid = pa.episode_uid AND s.frame_index = pa.frame_index
JOIN steps p ON p.episode_uid = pa.episode_uid AND p.frame_index = pa.frame_index - 1
WHERE pa.detector = $detector
ORDER BY pa.episode_uid, pa.frame_index
