-- The most important planning actions, estimates shown as "value [lo, hi]" (bounds without a
-- point as "[lo, hi]"; undefined ones say so rather than show 0).
SELECT episode_uid, frame_index AS frame, intervention, importance,
       CASE WHEN pn IS NOT NULL THEN printf('%.2f [%.2f, %.2f]', pn, pn_lo, pn_hi)
            WHEN pn_lo IS NOT NULL THEN printf('[%.2f, %.2f]', pn_lo, pn_hi)
            ELSE 'undefined' END AS pn,
       CASE WHEN ps IS NOT NULL THEN printf('%.2f [%.2f, %.2f]', ps, ps_lo, ps_hi)
            WHEN ps_lo IS NOT NULL THEN printf('[%.2f, %.2f]', ps_lo, ps_hi)
            ELSE 'undefined' END AS ps,
       CASE WHEN pns IS NOT NULL THEN printf('%.2f [%.2f, %.2f]', pns, pns_lo, pns_hi)
            WHEN pns_lo IS NOT NULL THEN printf('[%.2f, %.2f]', pns_lo, pns_hi)
            ELSE 'undefined' END AS pns,
       harm, n_pairs, method
FROM causal
ORDER BY importance DESC NULLS LAST, episode_uid, frame_index, intervention, method
LIMIT $n
