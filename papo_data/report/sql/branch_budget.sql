-- Simulated branch steps per part of the budget, as a multiple of the logged rollout steps.
-- A factual arm is shared by the interventions of its planning action and seed, so it is
-- counted once (as in papo_data/branches/sql/budget.sql); alternatives count per intervention.
WITH simulated AS (
    SELECT DISTINCT ON (episode_uid, frame_index, arm,
                        CASE WHEN arm = 'alternative' THEN intervention END, seed)
           CASE WHEN arm = 'alternative' THEN 'alternative: ' || intervention ELSE arm END AS part,
           arm, length
    FROM branches
),
logged AS (SELECT count(*) AS logged_steps FROM steps)
SELECT part, count(*) AS runs, sum(length)::BIGINT AS branch_steps, logged_steps,
       sum(length) / nullif(logged_steps, 0) AS ratio
FROM simulated, logged
GROUP BY part, arm, logged_steps
ORDER BY CASE arm WHEN 'factual' THEN 0 WHEN 'alternative' THEN 1 ELSE 2 END, part
