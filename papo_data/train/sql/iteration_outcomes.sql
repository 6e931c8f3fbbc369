-- What an iteration's rollouts achieved.
SELECT
    count(*) AS episodes,
    avg(success::INT) AS success_rate,
    avg("return") AS mean_return,
    avg(length) AS mean_length,
    sum(length) AS rollout_steps
FROM episodes
