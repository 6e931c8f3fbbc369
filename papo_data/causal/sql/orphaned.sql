-- Branched actions that are no longer planning actions (segment ran again after branch):
-- estimates leave them out.
SELECT count(*) AS n
FROM (SELECT DISTINCT episode_uid, frame_index FROM branches) b
ANTI JOIN planning_actions USING (episode_uid, frame_index)
