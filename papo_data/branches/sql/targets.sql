-- The planning actions of one detector to branch, with what a worker needs to start: the
-- episode's task, policy and outcome, the nearest checkpoint at or before the frame, and an
-- opposite-outcome sibling of the same group for the `sibling` arm: the lowest group member
-- among those still running at the window's last frame (one that ended sooner has no actions
-- to give there).
-- $mixed_only keeps groups holding both outcomes (the only ones with a GRPO advantage).
WITH targets AS (
    SELECT pa.episode_uid, pa.frame_index, pa.window,
           e.env_id, e.policy_id, e.group_id, e.group_member, e.success, e.length
    FROM planning_actions pa JOIN episodes e USING (episode_uid)
    WHERE pa.detector = $detector
      AND (NOT $mixed_only OR e.group_id IN (
          SELECT group_id FROM episodes
          GROUP BY group_id
          HAVING bool_or(success) AND NOT bool_and(success)))
    ORDER BY pa.episode_uid, pa.frame_index
    LIMIT $limit
)
SELECT t.*, c.frame_index AS checkpoint_frame, c.format AS checkpoint_format,
       c.state AS checkpoint,
       (SELECT s.episode_uid FROM episodes s
        WHERE s.group_id = t.group_id AND s.success <> t.success
          AND s.length >= t.frame_index + t.window  -- it acts at every frame of the window
        ORDER BY s.group_member LIMIT 1) AS sibling_uid,
       EXISTS (SELECT 1 FROM episodes s
               WHERE s.group_id = t.group_id AND s.success <> t.success) AS mixed_group
FROM targets t
ASOF LEFT JOIN snapshots c
    ON c.episode_uid = t.episode_uid AND c.frame_index <= t.frame_index
ORDER BY t.episode_uid, t.frame_index
