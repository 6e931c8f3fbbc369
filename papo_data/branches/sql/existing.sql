-- Branches already written for some episodes (a rerun skips them and reuses their outcome).
SELECT branch_uid, success FROM branches WHERE episode_uid IN (SELECT unnest($uids))
