"""Re-simulate the counterfactual branches of one planning action (DESIGN §3).

For a planning action (e, t) with window W, the simulator is brought to the state before a_t
(nearest checkpoint, then the logged actions, checked bit for bit), and for every seed two arms
run from there with common random numbers:
    factual      a_t .. a_{t+W-1} as logged, then the episode's policy with the seed;
    alternative  a'_t .. a'_{t+W-1} of the intervention, then the same policy with the same seed.
Interventions: `hold` repeats a_{t-1} (the decision not taken), `noise` adds sigma * eps (eps
from the seed), `sibling` takes an opposite-outcome sibling's actions at the same frames. A
`replay` arm replays the logged actions to the end and must reproduce the log exactly.

Everything here is a pure function of the `Job`, so where it runs (process pool, Ray) and whether
it ran before (a rerun reuses known outcomes) never changes the rows.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from papo_data.causal.paired import paired_pn_ps
from papo_data.sim import EnvAdapter
from papo_data.sim.policies import policy_from_id

INTERVENTIONS = ("hold", "noise", "sibling")
REPLAY = "none"  # the `intervention` of a replay arm: it intervenes on nothing


def branch_uid(episode_uid: str, frame: int, intervention: str, arm: str, seed: int) -> str:
    """Deterministic id of a branch: a rerun recognises what is already written."""
    key = f"{episode_uid}\x1f{frame}\x1f{intervention}\x1f{arm}\x1f{seed}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def branch_seed(root_seed: int, episode_uid: str, frame: int, k: int) -> int:
    """The k-th seed of a planning action; shared by its arms and interventions."""
    words = [root_seed, zlib.crc32(episode_uid.encode()), frame, k]
    return int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0] >> 1)


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to branch one planning action (no dataset access)."""

    episode_uid: str
    frame: int
    window: int
    policy_id: str
    checkpoint: bytes
    checkpoint_frame: int
    states: np.ndarray  # logged observations from checkpoint_frame to the end
    actions: np.ndarray  # logged actions from checkpoint_frame to the end
    rewards: np.ndarray
    successes: np.ndarray
    alternatives: dict[str, np.ndarray | None]  # intervention -> (W, A) actions; None = per seed
    horizon: int
    stop_on_success: bool
    seeds: list[int]  # candidate seeds in order; adaptive mode may stop early
    noise_sigma: float
    adaptive_tol: float | None  # None: run every seed
    adaptive_min: int
    adaptive_step: int
    known: dict[str, bool] = field(default_factory=dict)  # branch_uid -> success, already written
    need_replay: bool = True
    policy_dir: str | None = None  # the dataset's papo/policies (trained policies' checkpoints)


@dataclass
class Outcome:
    success: bool
    ret: float
    length: int


@dataclass
class JobResult:
    episode_uid: str
    frame: int
    rows: list[dict[str, object]]
    simulated_steps: int
    seeds_used: int
    replay_exact: bool | None


def _run_arm(
    env: EnvAdapter, job: Job, start: bytes, window: np.ndarray, seed: int
) -> tuple[Outcome, np.ndarray]:
    """From the state `start`, apply `window` actions, then the episode's policy seeded `seed`."""
    obs = env.restore(start)
    policy = policy_from_id(job.policy_id, env, Path(job.policy_dir) if job.policy_dir else None)
    policy.reset()
    rng = np.random.default_rng(seed)
    total, steps, success = 0.0, 0, False
    for _ in range(job.frame, job.horizon):
        if steps < len(window):
            action = window[steps]
        else:
            action, _ = policy.act(obs, rng)
        obs, reward, ok = env.step(action)
        total += reward
        steps += 1
        success = success or ok
        if ok and job.stop_on_success:
            break
    return Outcome(success, total, steps), obs


def _replay(env: EnvAdapter, job: Job, start: bytes) -> tuple[Outcome, bool]:
    """Replay the logged actions from the planning frame to the end; exact = the log reproduced."""
    obs = env.restore(start)
    offset = job.frame - job.checkpoint_frame
    exact = True
    total, success = 0.0, False
    n = len(job.actions) - offset
    for i in range(n):
        row = offset + i
        exact = exact and np.array_equal(obs.astype(np.float32), job.states[row])
        obs, reward, ok = env.step(job.actions[row])
        exact = exact and np.float32(reward) == job.rewards[row] and ok == job.successes[row]
        total += reward
        success = success or ok
    return Outcome(success, total, n), exact


def _reach_frame(env: EnvAdapter, job: Job) -> tuple[bytes, bool]:
    """Snapshot of the state before a_t, and whether the replay from the checkpoint was exact."""
    obs = env.restore(job.checkpoint)
    exact = True
    for row in range(job.frame - job.checkpoint_frame):
        exact = exact and np.array_equal(obs.astype(np.float32), job.states[row])
        obs, _, _ = env.step(job.actions[row])
    exact = exact and np.array_equal(
        obs.astype(np.float32), job.states[job.frame - job.checkpoint_frame]
    )
    return env.snapshot(), exact


def _converged(outcomes: dict[str, tuple[list[bool], list[bool]]], tol: float, k: int) -> bool:
    """Adaptive stop: every defined PN and PS interval half-width is below `tol`. A PN or PS
    whose conditioning event has not happened after `k` seeds counts as settled (rare)."""
    for factual, alternative in outcomes.values():
        est = paired_pn_ps(np.array(factual), np.array(alternative))
        for name in ("pn", "ps"):
            lo, hi = est[f"{name}_lo"], est[f"{name}_hi"]
            if not math.isnan(lo) and (hi - lo) / 2 >= tol:
                return False
    return k > 0


def _should_stop(job: Job, k: int, outcomes: dict[str, tuple[list[bool], list[bool]]]) -> bool:
    """Adaptive mode checks convergence after the first round and every `adaptive_step` seeds."""
    if job.adaptive_tol is None or k < job.adaptive_min:
        return False
    return (k - job.adaptive_min) % job.adaptive_step == 0 and _converged(
        outcomes, job.adaptive_tol, k
    )


def run_job(job: Job, env: EnvAdapter) -> JobResult:
    """All branches of one planning action that are not in `job.known`, as branches rows."""
    start, reach_exact = _reach_frame(env, job)
    rows: list[dict[str, object]] = []
    simulated = 0
    base = {"episode_uid": job.episode_uid, "frame_index": job.frame}

    def add(intervention: str, arm: str, seed: int, out: Outcome, exact: bool | None) -> None:
        uid = branch_uid(job.episode_uid, job.frame, intervention, arm, seed)
        if uid not in job.known:
            rows.append(
                base
                | {
                    "branch_uid": uid,
                    "intervention": intervention,
                    "arm": arm,
                    "seed": seed,
                    "success": out.success,
                    "return": out.ret,
                    "length": out.length,
                    "replay_exact": exact,
                }
            )

    replay_exact: bool | None = None
    if job.need_replay:
        out, exact = _replay(env, job, start)
        replay_exact = bool(reach_exact and exact)
        simulated += out.length
        add(REPLAY, "replay", 0, out, replay_exact)

    logged = job.actions[job.frame - job.checkpoint_frame :][: job.window]
    outcomes: dict[str, tuple[list[bool], list[bool]]] = {i: ([], []) for i in job.alternatives}
    used = 0
    for k, seed in enumerate(job.seeds if job.alternatives else []):
        if _should_stop(job, k, outcomes):
            break
        used += 1
        uids = {
            (i, arm): branch_uid(job.episode_uid, job.frame, i, arm, seed)
            for i in job.alternatives
            for arm in ("factual", "alternative")
        }
        factual: Outcome | None = None
        factual_uids = [u for (i, arm), u in uids.items() if arm == "factual"]
        if all(u in job.known for u in factual_uids):
            factual_success = job.known[factual_uids[0]]
        else:
            factual, _ = _run_arm(env, job, start, logged, seed)
            simulated += factual.length
            factual_success = factual.success
        for intervention, fixed in job.alternatives.items():
            uid = uids[(intervention, "alternative")]
            if uid in job.known:
                alt_success = job.known[uid]
            else:
                window = fixed if fixed is not None else _noisy(logged, seed, job.noise_sigma)
                alt, _ = _run_arm(env, job, start, window, seed)
                simulated += alt.length
                alt_success = alt.success
                add(intervention, "alternative", seed, alt, None)
            if factual is not None:
                add(intervention, "factual", seed, factual, None)
            outcomes[intervention][0].append(factual_success)
            outcomes[intervention][1].append(alt_success)
    return JobResult(job.episode_uid, job.frame, rows, simulated, used, replay_exact)


def _noisy(logged: np.ndarray, seed: int, sigma: float) -> np.ndarray:
    """The `noise` intervention: the logged window plus sigma * eps, eps drawn from the seed
    (a stream of its own, so the policy's random numbers stay common to both arms)."""
    eps = np.random.default_rng([seed, 1]).standard_normal(logged.shape)
    return (logged + sigma * eps).astype(np.float32)
