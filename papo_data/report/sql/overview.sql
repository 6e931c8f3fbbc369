-- One row of dataset totals: what was collected and how many groups can contrast outcomes.
WITH grouped AS (
    SELECT group_id, bool_or(success) AND NOT bool_and(success) AS mixed
    FROM episodes GROUP BY group_id
)
SELECT (SELECT count(*) FROM episodes) AS episodes,
       (SELECT count(*) FROM steps) AS frames,
       (SELECT count(*) FROM tasks) AS tasks,
       (SELECT count(*) FROM grouped) AS "groups",
       (SELECT count(*) FILTER (WHERE mixed) FROM grouped) AS mixed_groups,
       (SELECT count(*) FILTER (WHERE success) FROM episodes) AS successes
