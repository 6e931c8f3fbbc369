-- One weight per step (DESIGN §3): w_t = clip(1 + lambda I, w_min, w_max) on a planning window,
-- exactly 1 elsewhere; optionally renormalised to mean 1 per episode. I of a planning action is
-- the mean importance over its interventions (estimate method $method); a window whose I is
-- undefined counts as planning with I = 0. Overlapping windows take the larger I.
WITH chosen AS (
    SELECT episode_uid, frame_index, importance FROM causal WHERE method = $method
),
importance AS (  -- planning actions without rows of $method fall back to amortized predictions
    SELECT episode_uid, frame_index, coalesce(avg(importance), 0) AS importance
    FROM (
        SELECT * FROM chosen
        UNION ALL
        SELECT episode_uid, frame_index, importance FROM causal
        WHERE method = 'amortized' AND $method <> 'amortized'
          AND (episode_uid, frame_index) NOT IN (SELECT (episode_uid, frame_index) FROM chosen)
    )
    GROUP BY ALL
),
windows AS (
    SELECT i.episode_uid, i.frame_index AS start, i.importance,
           CASE WHEN $window_from = 'fixed' THEN $fixed_window
                ELSE coalesce(max(pa.window), $fixed_window) END AS span
    FROM importance i LEFT JOIN planning_actions pa USING (episode_uid, frame_index)
    GROUP BY ALL
),
per_step AS (
    SELECT s.episode_uid, s.episode_index, s.frame_index, s."index",
           max(w.importance) AS importance
    FROM steps s
    LEFT JOIN windows w ON w.episode_uid = s.episode_uid
                       AND s.frame_index >= w.start AND s.frame_index < w.start + w.span
    GROUP BY ALL
),
weighted AS (
    SELECT *, importance IS NOT NULL AS is_planning,
           CASE WHEN importance IS NULL THEN 1.0
                ELSE least(greatest(1 + $lambda * importance, $w_min), $w_max) END AS w
    FROM per_step
)
SELECT episode_uid, episode_index, frame_index, "index",
       (CASE WHEN $normalize = 'episode' THEN w / avg(w) OVER (PARTITION BY episode_index)
             ELSE w END)::FLOAT AS weight,
       coalesce(importance, 0)::FLOAT AS importance,
       is_planning,
       $run_id AS run_id
FROM weighted
ORDER BY "index"
