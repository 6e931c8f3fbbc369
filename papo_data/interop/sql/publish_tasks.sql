-- Episodes, frames, groups and success rate of each task, for the dataset card.
SELECT
    t.task_index,
    t.task,
    count(e.episode_index) AS episodes,
    coalesce(sum(e.length), 0) AS frames,
    count(DISTINCT e.group_id) AS groups,
    avg(e.success::INTEGER) AS success_rate
FROM tasks AS t
LEFT JOIN episodes AS e USING (task_index)
GROUP BY ALL
ORDER BY t.task_index
