-- task_index of steps and episodes must name a task; an episode's `tasks` must hold its task.
SELECT min(s.filename) AS filename, min(s.file_row_number) AS row, 'task_index' AS field,
       'task ' || s.task_index || ' is not in meta/tasks.parquet' AS message
FROM steps s ANTI JOIN tasks t USING (task_index)
GROUP BY s.task_index
UNION ALL
SELECT e.filename, e.file_row_number, 'task_index',
       'task ' || e.task_index || ' is not in meta/tasks.parquet'
FROM episodes e ANTI JOIN tasks t USING (task_index)
UNION ALL
SELECT e.filename, e.file_row_number, 'tasks',
       'does not hold the text of task ' || e.task_index || ' (' || t.task || ')'
FROM episodes e JOIN tasks t USING (task_index)
WHERE NOT list_contains(e.tasks, t.task)
