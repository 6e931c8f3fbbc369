-- step_scores.sql over one group: its episodes and their steps shadow the views of the same
-- names. Variation is per episode and the contrast per group, so each row equals the row the
-- whole-dataset query gives, at a fraction of the cost.
WITH episodes AS (SELECT * FROM episodes WHERE group_id = $group_id),
     steps AS (SELECT * FROM steps WHERE episode_index IN (SELECT episode_index FROM episodes))
SELECT * FROM (
{step_scores}
)
