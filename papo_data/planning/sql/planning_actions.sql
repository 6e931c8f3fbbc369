-- Planning actions from per-step scores (the CTE `step_scores`, see step_scores.sql):
-- local maxima of the score over +-$w frames (non-max suppression; ties go to the earliest
-- frame), above $threshold, the $top_m best per episode.
SELECT episode_uid, frame_index,
       least($w, length - frame_index)::INTEGER AS window,
       variation_score::FLOAT AS variation_score,
       outcome_score::FLOAT AS outcome_score,
       score::FLOAT AS score,
       rank::INTEGER AS rank,
       $detector AS detector
FROM (
    SELECT *, row_number() OVER (PARTITION BY episode_index ORDER BY score DESC, frame_index) AS rank
    FROM (
        SELECT *,
               max(score) OVER (PARTITION BY episode_index ORDER BY frame_index
                                ROWS BETWEEN $w PRECEDING AND 1 PRECEDING) AS best_before,
               max(score) OVER (PARTITION BY episode_index ORDER BY frame_index
                                ROWS BETWEEN CURRENT ROW AND $w FOLLOWING) AS best_from
        FROM step_scores
        WHERE score IS NOT NULL
    )
    WHERE score = best_from AND score > coalesce(best_before, '-inf'::DOUBLE)
      AND score > $threshold
)
WHERE rank <= $top_m
ORDER BY episode_uid, frame_index
