-- Per task: episodes, successes, groups and the groups holding both outcomes (the only ones
-- with an outcome contrast and a non-zero GRPO advantage).
WITH grouped AS (
    SELECT task_index, group_id, bool_or(success) AND NOT bool_and(success) AS mixed
    FROM episodes GROUP BY task_index, group_id
),
per_task AS (
    SELECT task_index, count(*) AS episodes, count(*) FILTER (WHERE success) AS successes,
           avg(length) AS mean_length
    FROM episodes GROUP BY task_index
)
SELECT t.task_index, t.task, p.episodes, p.successes, p.mean_length,
       count(g.group_id) AS "groups", count(*) FILTER (WHERE g.mixed) AS mixed_groups
FROM per_task p
JOIN tasks t USING (task_index)
LEFT JOIN grouped g USING (task_index)
GROUP BY ALL
ORDER BY t.task_index
