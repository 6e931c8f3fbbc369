-- Logged steps of some episodes, in frame order.
SELECT episode_uid, frame_index, "observation.state" AS state, action,
       "next.reward" AS reward, "next.success" AS success
FROM steps
WHERE episode_uid IN (SELECT unnest($uids))
ORDER BY episode_uid, frame_index
