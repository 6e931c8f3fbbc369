-- Planning actions left out of estimates because their replay arm was not exact.
SELECT DISTINCT episode_uid, frame_index FROM branches
WHERE arm = 'replay' AND NOT replay_exact
ORDER BY ALL
