-- The detector to show: joint when it has run, else the one with the most planning actions.
SELECT detector FROM planning_actions
GROUP BY detector
ORDER BY detector = 'joint' DESC, count(*) DESC, detector
LIMIT 1
