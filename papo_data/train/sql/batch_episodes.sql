-- One row per episode in step order: its GRPO group as 0..n-1, outcome and behaviour policy.
SELECT
    episode_index,
    dense_rank() OVER (ORDER BY group_id) - 1 AS group_index,
    group_id,
    success,
    "return",
    policy_id
FROM episodes
ORDER BY episode_index
