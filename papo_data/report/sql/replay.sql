-- Replay arms: did restoring the snapshot and replaying the logged actions reproduce the log?
SELECT count(*) AS replays,
       count(*) FILTER (WHERE replay_exact) AS exact,
       count(*) FILTER (WHERE NOT replay_exact) AS not_exact,
       count(*) FILTER (WHERE replay_exact IS NULL) AS unchecked
FROM branches
WHERE arm = 'replay'
