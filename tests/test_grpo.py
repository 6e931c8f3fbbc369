"""GRPO/PAPO maths against hand computations, and what a few updates do to a real policy."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from papo_data.errors import BadInput
from papo_data.train.grpo import (
    Batch,
    GRPOConfig,
    ZeroVarianceGroupsWarning,
    group_advantages,
    planning_aware_advantages,
    policy_loss,
    update,
)
from papo_data.train.policy import (
    PolicyConfig,
    TokenPolicy,
    TorchPolicy,
    load_checkpoint,
    save_checkpoint,
)

REWARDS = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0])
GROUPS = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])


def test_group_scaling_matches_a_hand_computation() -> None:
    adv, zero = group_advantages(REWARDS, GROUPS, "group", 1e-4)
    r, g = REWARDS.numpy(), GROUPS.numpy()
    expected = [(r[i] - r[g == g[i]].mean()) / (r[g == g[i]].std(ddof=1) + 1e-4) for i in range(10)]
    np.testing.assert_allclose(adv.numpy(), expected, rtol=1e-6)
    assert zero.tolist() == [False, False, True]
    assert adv[GROUPS == 2].eq(0).all()  # all-equal outcomes: no signal


def test_batch_and_none_scaling() -> None:
    r, g = REWARDS.numpy(), GROUPS.numpy()
    centred = np.array([r[i] - r[g == g[i]].mean() for i in range(10)])
    batch, _ = group_advantages(REWARDS, GROUPS, "batch", 1e-4)
    np.testing.assert_allclose(batch.numpy(), centred / (REWARDS.numpy().std(ddof=1) + 1e-4))
    none, _ = group_advantages(REWARDS, GROUPS, "none", 1e-4)
    np.testing.assert_allclose(none.numpy(), centred)


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_equal_returns_give_no_signal_even_after_rounding(scale: str) -> None:
    """Seven float32 returns of 0.7 differ by rounding once centred: still no signal."""
    rewards = torch.cat([torch.full((7,), 0.7), torch.tensor([1.0, 0.0])])
    groups = torch.tensor([0] * 7 + [1, 1])
    adv, equal = group_advantages(rewards, groups, scale, 1e-4)
    assert equal.tolist() == [True, False]
    assert adv[:7].eq(0).all() and adv[7:].abs().ge(0.5).all()


def test_a_batch_of_one_episode_has_no_nan() -> None:
    adv, equal = group_advantages(torch.tensor([1.0]), torch.tensor([0]), "batch", 1e-4)
    assert adv.tolist() == [0.0] and equal.tolist() == [True]


def test_unit_weights_are_plain_grpo_bit_for_bit() -> None:
    adv, _ = group_advantages(REWARDS, GROUPS, "group", 1e-4)
    episode = torch.repeat_interleave(torch.arange(10), torch.arange(1, 11))
    step_adv = planning_aware_advantages(adv, torch.ones(len(episode)), episode)
    assert torch.equal(step_adv, adv[episode])
    g = torch.Generator().manual_seed(0)
    log_probs = torch.randn(len(episode), 4, generator=g)
    old = log_probs + 0.3 * torch.randn(len(episode), 4, generator=g)
    for loss_type in ("token-mean", "seq-mean-token-mean", "dr-grpo"):
        cfg = GRPOConfig(loss_type=loss_type)
        a, _ = policy_loss(log_probs, old, step_adv, episode, cfg, horizon=12)
        b, _ = policy_loss(log_probs, old, adv[episode], episode, cfg, horizon=12)
        assert torch.equal(a, b)


@settings(max_examples=200, deadline=None)
@given(
    rewards=st.lists(st.sampled_from([0.0, 1.0, 0.5]), min_size=4, max_size=4),
    weights=st.lists(st.floats(0.01, 10.0), min_size=12, max_size=12),
    scale=st.sampled_from(["group", "batch", "none"]),
)
def test_weights_never_flip_the_sign(
    rewards: list[float], weights: list[float], scale: str
) -> None:
    adv, _ = group_advantages(torch.tensor(rewards), torch.tensor([0, 0, 1, 1]), scale, 1e-4)
    episode = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    step = planning_aware_advantages(adv, torch.tensor(weights), episode)
    assert torch.equal(torch.sign(step), torch.sign(adv[episode]))


def _hand_loss(lp, old, adv, episode, cfg, horizon):  # type: ignore[no-untyped-def]
    """Token by token with Python floats, the way the formula reads."""
    tokens = []
    for t in range(lp.shape[0]):
        row = []
        for d in range(lp.shape[1]):
            r = float(np.exp(lp[t, d] - old[t, d]))
            a = float(adv[t])
            clipped = min(max(r, 1 - cfg.epsilon_low), 1 + cfg.epsilon_high)
            row.append(-min(r * a, clipped * a))
        tokens.append(row)
    tokens_arr = np.array(tokens)
    if cfg.loss_type == "token-mean":
        return tokens_arr.mean()
    n_seq = int(episode.max()) + 1
    if cfg.loss_type == "seq-mean-token-mean":
        return np.mean([tokens_arr[episode == e].mean() for e in range(n_seq)])
    return tokens_arr.sum() / (n_seq * horizon * lp.shape[1])


@pytest.mark.parametrize("loss_type", ["token-mean", "seq-mean-token-mean", "dr-grpo"])
def test_each_aggregation_matches_a_hand_computation(loss_type: str) -> None:
    rng = np.random.default_rng(3)
    episode = np.array([0, 0, 0, 0, 0, 1, 1, 2, 2, 2])  # unequal lengths tell the modes apart
    lp = rng.normal(-2, 0.5, size=(10, 3))
    old = lp + rng.normal(0, 0.4, size=(10, 3))  # some ratios leave the clip range
    adv = rng.normal(size=10)
    cfg = GRPOConfig(loss_type=loss_type, epsilon_low=0.2, epsilon_high=0.28)
    loss, stats = policy_loss(
        torch.tensor(lp), torch.tensor(old), torch.tensor(adv), torch.tensor(episode), cfg, 7
    )
    assert float(loss) == pytest.approx(_hand_loss(lp, old, adv, episode, cfg, 7), rel=1e-12)
    assert 0 < float(stats["clip_fraction"]) < 1


def test_aggregations_differ_when_lengths_differ() -> None:
    episode = torch.tensor([0, 0, 0, 0, 1])
    lp = torch.zeros(5, 2)
    adv = torch.tensor([1.0, 1.0, 1.0, 1.0, -3.0])
    losses = {
        t: float(policy_loss(lp, lp, adv, episode, GRPOConfig(loss_type=t), 10)[0])
        for t in ("token-mean", "seq-mean-token-mean", "dr-grpo")
    }
    assert losses["token-mean"] == pytest.approx(-(4 - 3) / 5)
    assert losses["seq-mean-token-mean"] == pytest.approx(-(1 - 3) / 2)
    assert losses["dr-grpo"] == pytest.approx(-(8 - 6) / (2 * 10 * 2))


def test_clipped_tokens_get_no_gradient() -> None:
    old = torch.zeros(3, 1)
    lp = torch.tensor([[0.5], [0.0], [-0.5]], requires_grad=True)  # ratios 1.65, 1, 0.61
    adv = torch.tensor([1.0, 1.0, -1.0])
    loss, stats = policy_loss(lp, old, adv, torch.tensor([0, 1, 2]), GRPOConfig(), 1)
    loss.backward()
    assert lp.grad is not None
    assert lp.grad[0, 0] == 0 and lp.grad[2, 0] == 0 and lp.grad[1, 0] != 0
    assert float(stats["clip_fraction"]) == pytest.approx(2 / 3)


def test_k3_kl_is_zero_at_the_reference_and_positive_elsewhere() -> None:
    lp = torch.tensor([[-1.0, -2.0]])
    adv, ep = torch.zeros(1), torch.tensor([0])
    cfg = GRPOConfig(beta=0.5)
    at_ref, _ = policy_loss(lp, lp, adv, ep, cfg, 1, ref_log_probs=lp)
    away, _ = policy_loss(lp, lp, adv, ep, cfg, 1, ref_log_probs=lp - 0.7)
    q = -0.7
    assert float(at_ref) == 0
    assert float(away) == pytest.approx(0.5 * (np.exp(q) - q - 1))


def _policy(seed: int = 0) -> TokenPolicy:
    torch.manual_seed(seed)
    return TokenPolicy(PolicyConfig(tasks=("a", "b"), state_dim=5, action_dim=3, bins=16))


def _fixed_batch(policy: TokenPolicy, weights: torch.Tensor | None = None) -> Batch:
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor([6, 4, 5, 7, 3, 6, 5, 4])
    episode = torch.repeat_interleave(torch.arange(8), lengths)
    n = len(episode)
    states = torch.randn(n, 5, generator=g)
    tasks = torch.randint(0, 2, (n,), generator=g)
    tokens = torch.randint(0, 16, (n, 3), generator=g)
    with torch.no_grad():
        old, _ = policy.token_log_probs(states, tasks, tokens, 1.0)
    return Batch(
        states=states,
        tasks=tasks,
        tokens=tokens,
        old_log_probs=old,
        weights=torch.ones(n) if weights is None else weights,
        episode=episode,
        rewards=torch.tensor([1.0, 0, 1, 0, 1, 1, 0, 0]),
        groups=torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]),
        horizon=7,
    )


def test_updates_raise_positive_and_lower_negative_advantage_actions() -> None:
    policy = _policy()
    batch = _fixed_batch(policy)
    adv, _ = group_advantages(batch.rewards, batch.groups, "group", 1e-4)
    step_adv = adv[batch.episode]
    before = batch.old_log_probs.sum(-1)
    opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
    cfg = GRPOConfig(group_size=4, epochs_per_batch=4, mini_batch_episodes=4)
    for i in range(3):
        update(policy, opt, batch, cfg, seed=i)
    with torch.no_grad():
        after, _ = policy.token_log_probs(batch.states, batch.tasks, batch.tokens, 1.0)
    change = after.sum(-1) - before
    assert change[step_adv > 0].mean() > 0.05
    assert change[step_adv < 0].mean() < -0.05


def test_planning_weights_concentrate_the_update() -> None:
    """Same batch, PAPO weights 3 on a few steps: those steps move more than under GRPO."""
    start = _policy()
    weighted = torch.ones(40)
    weighted[[0, 1, 6, 7, 10, 11]] = 3.0
    moved = {}
    for name, w in (("grpo", None), ("papo", weighted)):
        policy = copy.deepcopy(start)
        batch = _fixed_batch(policy, w)
        opt = torch.optim.SGD(policy.parameters(), lr=0.05)
        cfg = GRPOConfig(group_size=4, epochs_per_batch=1, mini_batch_episodes=8, max_grad_norm=0)
        update(policy, opt, batch, cfg, seed=0)
        with torch.no_grad():
            after, _ = policy.token_log_probs(batch.states, batch.tasks, batch.tokens, 1.0)
        moved[name] = (after - batch.old_log_probs).sum(-1).abs()
    idx = torch.tensor([0, 1, 6, 7, 10, 11])
    assert moved["papo"][idx].sum() > 1.5 * moved["grpo"][idx].sum()


def test_all_equal_groups_warn_and_train_nothing() -> None:
    policy = _policy()
    batch = _fixed_batch(policy)
    batch.rewards = torch.zeros(8)
    opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
    before = copy.deepcopy(policy.state_dict())
    with pytest.warns(ZeroVarianceGroupsWarning, match="2 of 2 groups"):
        metrics = update(policy, opt, batch, GRPOConfig(group_size=4), seed=0)
    assert metrics["zero_variance_groups"] == 2 and metrics["updates"] == 0
    assert all(torch.equal(before[k], v) for k, v in policy.state_dict().items())


def test_update_is_deterministic_given_the_seed() -> None:
    results = []
    for _ in range(2):
        policy = _policy()
        opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
        update(policy, opt, _fixed_batch(policy), GRPOConfig(group_size=4), seed=5)
        results.append(policy.state_dict())
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])


@pytest.mark.parametrize(
    "change",
    [
        {"scale_rewards": "std"},
        {"loss_type": "sum"},
        {"epsilon_low": 1.0},
        {"group_size": 1},
        {"learning_rate": 0.0},
        {"beta": -1.0},
    ],
)
def test_bad_config_is_bad_input(change: dict[str, object]) -> None:
    with pytest.raises(BadInput):
        replace(GRPOConfig(), **change).check()


def test_checkpoint_round_trip_without_pickle(tmp_path: Path) -> None:
    policy = _policy(3)
    policy.state_mean.fill_(0.5)
    save_checkpoint(tmp_path / "p.pt", policy, iteration=4, note={"a": [1, 2]})
    loaded, extra = load_checkpoint(tmp_path / "p.pt")
    assert loaded.config == policy.config
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in policy.state_dict().items())
    assert extra == {"iteration": 4, "note": {"a": [1, 2]}}
    # The loader refuses anything that needs unpickling arbitrary objects.
    torch.save({"format": "papo-policy/1", "evil": object()}, tmp_path / "bad.pt")
    with pytest.raises(BadInput, match="not a readable policy checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "p.pt").read_bytes()[:1000])
    with pytest.raises(BadInput, match=r"cut\.pt"):
        load_checkpoint(tmp_path / "cut.pt")


def test_sampling_is_seeded_and_logs_the_token_log_prob() -> None:
    model = _policy()
    obs = np.linspace(-1, 1, 5)
    for temperature in (0.5, 1.0, 2.0):
        policy = TorchPolicy(model, "b", temperature)
        a1, lp1 = policy.act(obs, np.random.default_rng(9))
        a2, lp2 = policy.act(obs, np.random.default_rng(9))
        assert np.array_equal(a1, a2) and np.array_equal(lp1, lp2)
        tokens = model.tokens(torch.from_numpy(a1).unsqueeze(0))
        assert torch.equal(model.bin_values[tokens[0]], torch.from_numpy(a1))
        with torch.no_grad():
            expected, _ = model.token_log_probs(
                torch.tensor(obs, dtype=torch.float32).unsqueeze(0),
                torch.tensor([1]),
                tokens,
                temperature,
            )
        np.testing.assert_allclose(lp1, expected[0].numpy(), rtol=1e-5)
    # The sampled tokens follow the policy's distribution.
    policy = TorchPolicy(model, "a", 1.0)
    rng = np.random.default_rng(0)
    draws = np.array([model.tokens(torch.from_numpy(policy.act(obs, rng)[0]))[0].item()
                      for _ in range(4000)])  # fmt: skip
    with torch.no_grad():
        probs = torch.softmax(model(torch.tensor(obs, dtype=torch.float32)[None],
                                    torch.tensor([0]))[0, 0], -1).numpy()  # fmt: skip
    freq = np.bincount(draws, minlength=16) / len(draws)
    assert np.abs(freq - probs).max() < 0.03


def test_a_toml_section_overrides_only_the_keys_it_names(tmp_path: Path) -> None:
    from papo_data.train.online import TrainConfig, load_config

    config = tmp_path / "run.toml"
    config.write_text('init = "bc.pt"\n[branch]\nk = 3\n[estimate]\nimportance = "pn"\n')
    cfg = load_config(config)
    default = TrainConfig(init="bc.pt")
    assert cfg.branch == replace(default.branch, k=3)  # keeps mixed_groups_only, limit, ...
    assert cfg.branch.mixed_groups_only and not cfg.estimate.dowhy
    assert cfg.estimate.importance == "pn"
    assert cfg.init == str((tmp_path / "bc.pt").resolve())
