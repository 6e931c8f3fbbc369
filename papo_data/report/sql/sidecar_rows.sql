-- Rows in each sidecar table: which pipeline stages have run on this dataset.
SELECT 'snapshots' AS "table", count(*) AS "rows" FROM snapshots
UNION ALL SELECT 'planning_actions', count(*) FROM planning_actions
UNION ALL SELECT 'branches', count(*) FROM branches
UNION ALL SELECT 'causal', count(*) FROM causal
UNION ALL SELECT 'weights', count(*) FROM weights
