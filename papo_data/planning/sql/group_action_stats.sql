-- Mean and standard deviation of each action dim over the successful and over the failed
-- rollouts of one group, per frame, among the rollouts still running at that frame (episodes
-- that end at their first success drop out early). `dim` counts from 0.
-- Parameters: $group_id, $n_dims.
SELECT s.frame_index, e.success, d.i - 1 AS dim, count(*) AS n,
       avg(s.action[d.i]::DOUBLE) AS mean,
       coalesce(stddev_samp(s.action[d.i]::DOUBLE), 0) AS std
FROM steps s
JOIN episodes e USING (episode_index)
CROSS JOIN range(1, $n_dims + 1) d(i)
WHERE e.group_id = $group_id
GROUP BY s.frame_index, e.success, d.i
ORDER BY dim, e.success, s.frame_index
