-- One row describing how a dataset was produced, for its dataset card.
-- Lists are NULL when their table is empty (the stage has not run).
SELECT
    (SELECT count(*) FROM episodes) AS episodes,
    (SELECT count(*) FROM steps) AS frames,
    (SELECT count(DISTINCT group_id) FROM episodes) AS groups,
    (SELECT avg(success::INTEGER) FROM episodes) AS success_rate,
    (SELECT list(DISTINCT env_id ORDER BY env_id) FROM episodes) AS env_ids,
    (SELECT list(DISTINCT policy_id ORDER BY policy_id) FROM episodes) AS policy_ids,
    (SELECT list(DISTINCT detector ORDER BY detector) FROM planning_actions) AS detectors,
    (SELECT list(DISTINCT intervention ORDER BY intervention) FROM branches WHERE arm <> 'replay')
        AS interventions,
    (SELECT count(*) FILTER (arm = 'replay') FROM branches) AS replay_arms,
    (SELECT count(*) FILTER (arm = 'replay' AND replay_exact) FROM branches) AS replay_exact,
    (SELECT list(DISTINCT method ORDER BY method) FROM causal) AS methods,
    (SELECT list(DISTINCT run_id ORDER BY run_id) FROM weights) AS run_ids
