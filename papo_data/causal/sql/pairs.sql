-- Paired outcome counts per planning action and intervention: seeds with both a factual and an
-- alternative arm. Planning actions whose replay arm did not reproduce the log are left out
-- (a snapshot fault, DESIGN §3), and so are actions without a replay arm, and branched actions
-- a later `segment` dropped (orphaned.sql counts them).
WITH exact AS (
    SELECT episode_uid, frame_index FROM branches
    SEMI JOIN planning_actions USING (episode_uid, frame_index)
    WHERE arm = 'replay' GROUP BY ALL HAVING bool_and(replay_exact)
),
pairs AS (
    SELECT episode_uid, frame_index, intervention, seed,
           bool_or(success) FILTER (arm = 'factual') AS y,
           bool_or(success) FILTER (arm = 'alternative') AS y_alt
    FROM branches SEMI JOIN exact USING (episode_uid, frame_index)
    WHERE arm IN ('factual', 'alternative')
    GROUP BY ALL
)
SELECT episode_uid, frame_index, intervention,
       count(*) FILTER (y AND NOT y_alt) AS n10,
       count(*) FILTER (y AND y_alt) AS n11,
       count(*) FILTER (NOT y AND y_alt) AS n01,
       count(*) FILTER (NOT y AND NOT y_alt) AS n00,
       avg(y::INTEGER) AS p_y_do_x,
       avg(y_alt::INTEGER) AS p_y_do_xp
FROM pairs
WHERE y IS NOT NULL AND y_alt IS NOT NULL
GROUP BY ALL
ORDER BY ALL
