-- The group to contrast: holding both outcomes when one does (the group of the most important
-- planning action first), else the first group.
WITH grouped AS (
    SELECT group_id, min(episode_index) AS first_episode,
           bool_or(success) AND NOT bool_and(success) AS mixed,
           max(c.importance) AS importance
    FROM episodes LEFT JOIN causal c USING (episode_uid)
    GROUP BY group_id
)
SELECT group_id, mixed FROM grouped
ORDER BY mixed DESC, importance DESC NULLS LAST, first_episode
LIMIT 1
