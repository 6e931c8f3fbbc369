-- Per-step planning scores (DESIGN §3). One row per step with a full window of w steps on
-- each side (w <= frame <= length - w). A template: segment.py fills the slots in braces with one
-- column per action dim (DuckDB windows over plain columns are much cheaper than over lists).
-- Parameters:
--   $w              window: steps before/after t that are averaged, and the +-w alignment
--   $beta           weight of the outcome contrast in the joint score
--   $switch_weight  weight of the nearness to a gripper switch, (w + 1 - d)+, in v_t
--   $detector       joint | variation | outcome | random
--   $seed           seed of the random detector
WITH ep AS MATERIALIZED (  -- integer group keys: no string hashing per step
    SELECT episode_index, episode_uid, length, success,
           dense_rank() OVER (ORDER BY group_id) AS g
    FROM episodes
),
means AS (  -- steps alone, scalars only through the sort: mean of each dim before / from t
    SELECT episode_index, frame_index, {means},
           {switch} AS switch
    FROM (SELECT episode_index, frame_index, {extract} FROM steps)
    WINDOW o AS (PARTITION BY episode_index ORDER BY frame_index),
           before AS (o ROWS BETWEEN $w PRECEDING AND 1 PRECEDING),
           after AS (o ROWS BETWEEN CURRENT ROW AND $w - 1 FOLLOWING)
    -- a full window on both sides: w <= t and step t + w - 1 exists (t <= length - w)
    QUALIFY frame_index >= $w AND lead(frame_index, $w - 1) OVER o IS NOT NULL
),
change AS (
    SELECT episode_index, frame_index, switch,
           list_distance([{before}], [{after}]) AS delta,
           1 - coalesce(nullif(list_cosine_similarity([{before}], [{after}]), 'nan'::FLOAT), 1)
             AS theta
    FROM means
),
variation AS (
    -- v_t = switch_weight (w + 1 - d_t)+ + (1 + z_t / (1 + |z_t|)) / 2, with d_t the frames
    -- to the nearest gripper switch (among scored frames) and z_t the mean robust z of delta
    -- and theta (window aggregates: no GROUP BY + join). The squash keeps action change in
    -- (0, 1) without ties (a logistic saturates in doubles), so at switch_weight >= 1 steps
    -- rank by nearness first; holding those is what flips outcomes (analyses/RESULTS.md).
    SELECT episode_index, frame_index,
           $switch_weight * greatest($w + 1 - least(
               frame_index - max(CASE WHEN switch THEN frame_index END) OVER upto,
               min(CASE WHEN switch THEN frame_index END) OVER from_t - frame_index), 0)
           + (1 + z / (1 + abs(z))) / 2 AS v
    FROM (
        SELECT *, ((delta - median(delta) OVER e) / (1.4826 * mad(delta) OVER e + 1e-6)
                   + (theta - median(theta) OVER e) / (1.4826 * mad(theta) OVER e + 1e-6)) / 2 AS z
        FROM change
        WINDOW e AS (PARTITION BY episode_index)
    )
    WINDOW t AS (PARTITION BY episode_index ORDER BY frame_index),
           upto AS (t ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
           from_t AS (t ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)
),
mixed AS (  -- groups holding both outcomes; contrast frames end at the last success + w
    SELECT g, max(CASE WHEN success THEN length END) - 1 + $w AS last_frame
    FROM ep GROUP BY g HAVING bool_or(success) AND NOT bool_and(success)
),
per_frame AS (  -- one row per group, outcome and frame; the dims are columns
    SELECT e.g, s.frame_index, e.success, count(*) AS n, {sums}
    FROM steps s JOIN ep e USING (episode_index) JOIN mixed m USING (g)
    WHERE s.frame_index <= m.last_frame  -- later frames of failures have no success to contrast
    GROUP BY ALL
),
aligned AS (  -- frames are contiguous per episode (validate checks it): ROWS = RANGE here
    SELECT g, frame_index, success, sum(n) OVER win AS n, {pooled}
    FROM per_frame
    WINDOW win AS (PARTITION BY g, success ORDER BY frame_index
                   ROWS BETWEEN $w PRECEDING AND $w FOLLOWING)
),
contrast AS (
    SELECT g, frame_index, sqrt(({terms}) / {n_dims}) AS o
    FROM (SELECT * FROM aligned WHERE success) ok
    JOIN (SELECT * FROM aligned WHERE NOT success) ko USING (g, frame_index)
)
SELECT v.episode_index, e.episode_uid, v.frame_index, e.length,
       v.v AS variation_score,
       -- Mixed groups: 0 where frame t itself has no step of one outcome (e.g. past the
       -- group's last success), even if steps of that outcome lie within t +- w.
       CASE WHEN m.g IS NOT NULL THEN coalesce(c.o, 0) END AS outcome_score,
       CASE $detector
           WHEN 'variation' THEN greatest(v.v, 0)
           WHEN 'outcome' THEN CASE WHEN m.g IS NOT NULL THEN coalesce(c.o, 0) END
           WHEN 'joint' THEN greatest(v.v, 0) * (1 + $beta * coalesce(c.o, 0))
           WHEN 'random' THEN (md5_number(concat($seed, '/', e.episode_uid, '/', v.frame_index))
                               % 1000000007)::DOUBLE / 1000000007
       END AS score
FROM variation v
JOIN ep e USING (episode_index)
LEFT JOIN mixed m ON m.g = e.g
LEFT JOIN contrast c ON c.g = e.g AND c.frame_index = v.frame_index
