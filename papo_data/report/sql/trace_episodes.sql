-- Episodes whose action traces to draw: the highest importance first (from causal), then the
-- first episodes holding planning actions of the detector.
WITH planned AS (
    SELECT DISTINCT episode_uid FROM planning_actions WHERE detector = $detector
),
ranked AS (
    SELECT e.episode_uid, e.episode_index, max(c.importance) AS importance
    FROM episodes e
    JOIN planned USING (episode_uid)
    LEFT JOIN causal c USING (episode_uid)
    GROUP BY ALL
)
SELECT episode_uid, importance FROM ranked
ORDER BY importance DESC NULLS LAST, episode_index
LIMIT $n
