-- Groups whose rollouts all succeeded or all failed: no outcome contrast exists for them.
SELECT count(*) AS groups, coalesce(sum(n), 0) AS episodes
FROM (SELECT group_id, count(*) AS n FROM episodes GROUP BY group_id
      HAVING bool_and(success) OR NOT bool_or(success))
