-- Per weights run: steps, steps inside planning windows and the weights they carry.
SELECT run_id, count(*) AS steps,
       count(*) FILTER (WHERE is_planning) AS planning_steps,
       avg(weight) AS mean_weight,
       avg(weight) FILTER (WHERE is_planning) AS mean_planning_weight,
       min(weight) AS min_weight, max(weight) AS max_weight
FROM weights
GROUP BY run_id
ORDER BY run_id
