-- Interventional effect of each task's planning actions measured by the branches:
-- P(y_x) - P(y_x') of the hold intervention, averaged over planning actions. As in pairs.sql,
-- actions whose replay arm did not reproduce the log (or that have none), and branched actions
-- that are no longer planning actions, are left out.
WITH exact AS (
    SELECT episode_uid, frame_index FROM branches
    SEMI JOIN planning_actions USING (episode_uid, frame_index)
    WHERE arm = 'replay' GROUP BY ALL HAVING bool_and(replay_exact)
)
SELECT e.env_id, avg(f.y - a.y) AS effect
FROM (SELECT episode_uid, frame_index, avg(success::INTEGER) AS y
      FROM branches SEMI JOIN exact USING (episode_uid, frame_index)
      WHERE arm = 'factual' AND intervention = 'hold' GROUP BY ALL) f
JOIN (SELECT episode_uid, frame_index, avg(success::INTEGER) AS y FROM branches
      WHERE arm = 'alternative' AND intervention = 'hold' GROUP BY ALL) a
  USING (episode_uid, frame_index)
JOIN episodes e USING (episode_uid)
GROUP BY e.env_id
