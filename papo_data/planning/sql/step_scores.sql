-- Per-step planning scores (DESIGN §3). One row per step with a full window of w steps on
-- each side (w <= frame <= length - w). Parameters:
--   $cont           1-based indices of the continuous action dims, e.g. [1, 2, 3]
--   $grip           1-based index of the gripper dim, or NULL when the robot has none
--   $n_dims         number of action dims
--   $w              window: steps before/after t that are averaged, and the +-w alignment
--   $beta           weight of the outcome contrast in the joint score
--   $switch_weight  a gripper switch adds this many robust z units to v_t
--   $detector       joint | variation | outcome | random
--   $seed           seed of the random detector
WITH acts AS (
    SELECT s.episode_index, s.episode_uid, s.frame_index, e.group_id, e.length,
           list_select(s.action::FLOAT[], $cont) AS xyz,
           list(list_select(s.action::FLOAT[], $cont)) OVER (
               PARTITION BY s.episode_index ORDER BY s.frame_index
               ROWS BETWEEN $w PRECEDING AND 1 PRECEDING) AS before,
           list(list_select(s.action::FLOAT[], $cont)) OVER (
               PARTITION BY s.episode_index ORDER BY s.frame_index
               ROWS BETWEEN CURRENT ROW AND $w - 1 FOLLOWING) AS after,
           coalesce(abs(s.action[$grip] - lag(s.action[$grip]) OVER (
               PARTITION BY s.episode_index ORDER BY s.frame_index)) > 0.5, false) AS switch
    FROM steps s JOIN episodes e USING (episode_index)
),
-- Change of execution at t: magnitude and direction change between the mean action of the w
-- steps before t and of the w steps from t on (means, because single steps carry policy noise).
change AS (
    SELECT * EXCLUDE (before, after, xyz),
           list_distance(mean_before, mean_after) AS delta,
           -- A zero mean (a robot at rest) has no direction: DuckDB gives NaN, we say no turn.
           1 - coalesce(nullif(list_cosine_similarity(mean_before, mean_after), 'nan'::FLOAT), 1)
             AS theta
    FROM (
        SELECT *,
               list_transform(range(1, len(xyz) + 1),
                              lambda i: list_avg(list_transform(before, lambda v: v[i]))) AS mean_before,
               list_transform(range(1, len(xyz) + 1),
                              lambda i: list_avg(list_transform(after, lambda v: v[i]))) AS mean_after
        -- Only frames with a full window on both sides: near the episode's ends the means
        -- cover fewer steps and are noisier, and a branch needs a window to intervene on.
        FROM acts WHERE frame_index >= $w AND frame_index <= length - $w
    )
),
robust AS (  -- median and MAD per episode, for robust z-scores
    SELECT episode_index,
           median(delta) AS delta_med, mad(delta) AS delta_mad,
           median(theta) AS theta_med, mad(theta) AS theta_mad
    FROM change GROUP BY episode_index
),
variation AS (
    SELECT c.episode_index, c.episode_uid, c.frame_index, c.group_id, c.length,
           ((c.delta - r.delta_med) / (1.4826 * r.delta_mad + 1e-6)
            + (c.theta - r.theta_med) / (1.4826 * r.theta_mad + 1e-6)) / 2
             + $switch_weight * c.switch::INTEGER AS v
    FROM change c JOIN robust r USING (episode_index)
),
-- Outcome contrast: only groups that hold both outcomes.
mixed AS (
    SELECT group_id FROM episodes GROUP BY group_id
    HAVING bool_or(success) AND NOT bool_and(success)
),
per_dim AS (  -- sums per group, frame, outcome and action dim
    SELECT e.group_id, s.frame_index, e.success, d.i AS dim,
           count(*) AS n, sum(s.action[d.i]::DOUBLE) AS sx, sum(s.action[d.i]::DOUBLE ^ 2) AS sxx
    FROM steps s JOIN episodes e USING (episode_index)
    SEMI JOIN mixed USING (group_id)
    CROSS JOIN range(1, $n_dims + 1) d(i)
    GROUP BY ALL
),
aligned AS (  -- pooled over the aligned frames t-w .. t+w
    SELECT group_id, frame_index, success, dim,
           sum(n) OVER win AS n, sum(sx) OVER win AS sx, sum(sxx) OVER win AS sxx
    FROM per_dim
    WINDOW win AS (PARTITION BY group_id, success, dim ORDER BY frame_index
                   RANGE BETWEEN $w PRECEDING AND $w FOLLOWING)
),
contrast AS (  -- standardised distance of the successful and failed mean actions
    SELECT group_id, frame_index,
           sqrt(avg(power(ok.sx / ok.n - ko.sx / ko.n, 2)
                    / ((ok.sxx - ok.sx * ok.sx / ok.n + ko.sxx - ko.sx * ko.sx / ko.n)
                       / greatest(ok.n + ko.n - 2, 1) + 0.01))) AS o
    FROM (SELECT * FROM aligned WHERE success) ok
    JOIN (SELECT * FROM aligned WHERE NOT success) ko USING (group_id, frame_index, dim)
    GROUP BY group_id, frame_index
)
SELECT v.episode_index, v.episode_uid, v.frame_index, v.length,
       v.v AS variation_score,
       -- Mixed groups: 0 where one outcome has no steps at the aligned frames.
       CASE WHEN m.group_id IS NOT NULL THEN coalesce(c.o, 0) END AS outcome_score,
       CASE $detector
           WHEN 'variation' THEN greatest(v.v, 0)
           WHEN 'outcome' THEN CASE WHEN m.group_id IS NOT NULL THEN coalesce(c.o, 0) END
           WHEN 'joint' THEN greatest(v.v, 0) * (1 + $beta * coalesce(c.o, 0))
           WHEN 'random' THEN (md5_number(concat($seed, '/', v.episode_uid, '/', v.frame_index))
                               % 1000000007)::DOUBLE / 1000000007
       END AS score
FROM variation v
LEFT JOIN mixed m USING (group_id)
LEFT JOIN contrast c USING (group_id, frame_index)
