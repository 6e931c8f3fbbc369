-- For every branched planning action (e, t) with window W: each group member's actions over
-- frames t-1 .. t+W-1 (members that ended before t are not at risk and are left out), its
-- outcome, whether it acts at every frame of the window, and which member is e itself. Feeds
-- the observational side of the bounds.
WITH actions AS (
    SELECT b.episode_uid, b.frame_index, max(pa.window) AS window
    FROM (SELECT DISTINCT episode_uid, frame_index FROM branches WHERE arm = 'alternative') b
    JOIN planning_actions pa USING (episode_uid, frame_index)
    GROUP BY ALL
)
SELECT a.episode_uid, a.frame_index, a.window, e.group_id, m.episode_uid AS member,
       m.success AS y, m.group_member, m.episode_uid = a.episode_uid AS is_self,
       m.length >= a.frame_index + a.window AS through_window,
       list(s.action ORDER BY s.frame_index) AS actions
FROM actions a
JOIN episodes e ON e.episode_uid = a.episode_uid
JOIN episodes m ON m.group_id = e.group_id AND m.length > a.frame_index
JOIN steps s ON s.episode_uid = m.episode_uid
            AND s.frame_index BETWEEN a.frame_index - 1 AND a.frame_index + a.window - 1
GROUP BY ALL
ORDER BY a.episode_uid, a.frame_index, m.group_member
