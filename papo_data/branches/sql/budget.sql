-- Simulated branch steps against logged rollout steps. A factual arm is shared by the
-- interventions of its planning action and seed, so it is counted once.
WITH simulated AS (
    SELECT DISTINCT ON (episode_uid, frame_index, arm, CASE WHEN arm = 'alternative'
                        THEN intervention END, seed)
           length
    FROM branches
)
SELECT (SELECT coalesce(sum(length), 0) FROM simulated)::BIGINT AS branch_steps,
       (SELECT count(*) FROM steps)::BIGINT AS logged_steps
