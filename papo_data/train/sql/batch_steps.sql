-- Every step in (episode, frame) order with its PAPO weight; steps without one weigh 1 (GRPO).
-- `step_weights` (index, weight) is registered by the caller: a run's rows or an exported file.
SELECT
    s."index",
    s.episode_index,
    s."observation.state" AS state,
    s.action,
    s."policy.log_prob" AS log_prob,
    coalesce(w.weight, 1.0)::FLOAT AS weight,
    split_part(e.env_id, '/', 2) AS task
FROM steps AS s
JOIN episodes AS e USING (episode_index)
LEFT JOIN step_weights AS w ON w."index" = s."index"
ORDER BY s."index"
