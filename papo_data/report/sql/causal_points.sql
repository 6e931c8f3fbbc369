-- Causal rows with the task they belong to, for the PN/PS and importance figures.
SELECT t.task, c.episode_uid, c.frame_index, c.intervention, c.method, c.n_pairs,
       c.pn, c.pn_lo, c.pn_hi, c.ps, c.ps_lo, c.ps_hi, c.importance
FROM causal c
JOIN episodes e USING (episode_uid)
JOIN tasks t ON t.task_index = e.task_index
ORDER BY t.task_index, c.episode_uid, c.frame_index, c.intervention, c.method
