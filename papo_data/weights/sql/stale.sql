-- Estimated actions (of $method, or amortized) that are not planning actions of the current
-- segmentation: `segment` ran again after `estimate`. They still get weights, over
-- --fixed-window steps, since their own window is gone.
SELECT count(*) AS n
FROM (SELECT DISTINCT episode_uid, frame_index FROM causal
      WHERE method = $method OR method = 'amortized') c
ANTI JOIN planning_actions pa USING (episode_uid, frame_index)
