-- How many demos the budget $per_task selects (see bc_demos.sql).
SELECT count(*) AS n
FROM (
    SELECT row_number() OVER (PARTITION BY env_id ORDER BY episode_index) AS n
    FROM episodes
    WHERE success
)
WHERE n <= $per_task
