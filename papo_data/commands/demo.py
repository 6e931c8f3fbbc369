"""`papo demo`: build a small dataset through the public writer, validate it, query it.

Until rollout collection lands, the rollouts come from a toy reaching task (a noisy scripted
reacher in numpy), grouped like GRPO groups so that queries have something to show.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from papo_data import DatasetWriter, Episode, open_dataset
from papo_data.data.validate import validate
from papo_data.errors import BadInput

STATE_NAMES = ["hand_x", "hand_y", "hand_z", "goal_x", "goal_y", "goal_z"]
ACTION_NAMES = ["dx", "dy", "dz", "gripper"]
TASK = "reach the goal and close the gripper"
HORIZON = 60


def add_parser(verbs: Any) -> None:
    p = verbs.add_parser(
        "demo",
        help="build a small demo dataset, validate it and query it",
        description="Write a small grouped dataset through the public writer (a toy reaching "
        "task until 'papo collect' lands), run 'validate' on it and a few 'sql' queries.",
    )
    p.add_argument(
        "--out", type=Path, default=Path("papo-demo"), help="dataset folder (default papo-demo)"
    )
    p.add_argument("--groups", type=int, default=4, help="initial states (default 4)")
    p.add_argument(
        "--group-size", type=int, default=8, help="rollouts per initial state (default 8)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it is a papo dataset")
    p.set_defaults(handler=run)


def toy_episode(group: int, member: int, seed: int) -> Episode:
    """A noisy proportional reacher: success when the hand is within 2 cm of the goal."""
    init = np.random.default_rng([seed, group])
    noise = np.random.default_rng([seed, group, member])
    hand = init.uniform(-0.2, 0.2, 3)
    goal = init.uniform(-0.2, 0.2, 3)
    states, actions, rewards, successes = [], [], [], []
    for _ in range(HORIZON):
        states.append(np.concatenate([hand, goal]))
        move = np.clip(8.0 * (goal - hand) + noise.normal(0, 0.6, 3), -1, 1)
        distance = float(np.linalg.norm(goal - hand))
        actions.append(np.append(move, 1.0 if distance < 0.05 else -1.0))
        hand = hand + 0.01 * move
        distance = float(np.linalg.norm(goal - hand))
        rewards.append(-distance)
        successes.append(distance < 0.02)
        if successes[-1]:
            break
    return Episode(
        episode_uid=f"toy-s{seed}-g{group}-m{member}",
        task=TASK,
        observation_state=np.array(states),
        action=np.array(actions),
        reward=np.array(rewards),
        success=np.array(successes),
        group_id=f"toy-s{seed}-g{group}",
        group_member=member,
        env_id="toy/reach",
        policy_id="scripted-noisy",
        init_seed=group,
        policy_seed=member,
    )


def run(args: argparse.Namespace) -> int:
    if args.groups < 1 or args.group_size < 1:
        raise BadInput("--groups and --group-size must be at least 1")
    out: Path = args.out
    if out.exists() and args.overwrite:
        if not (out / "meta" / "info.json").exists():
            raise BadInput(f"{out}: --overwrite only replaces a papo dataset, and this is not one")
        shutil.rmtree(out)
    with DatasetWriter.create(
        out, fps=80, state_names=STATE_NAMES, action_names=ACTION_NAMES, env="toy"
    ) as writer:
        for group in range(args.groups):
            for member in range(args.group_size):
                writer.add_episode(toy_episode(group, member, args.seed))
    print(f"wrote {args.groups * args.group_size} episodes to {out}")
    problems = validate(out)
    for p in problems:
        print(p)
    if problems:
        return 1  # our own writer produced an invalid dataset: a bug
    print(f"papo validate {out}: valid")
    with open_dataset(out) as ds, pl.Config(tbl_rows=20, tbl_cols=-1):
        print(f'\npapo sql {out} "select count(*) as frames from steps"')
        print(ds.sql("select count(*) as frames from steps"))
        query = (
            "select group_id, count(*) as rollouts, avg(success::int) as success_rate, "
            "avg(length) as mean_length from episodes group by group_id order by group_id"
        )
        print(f'\npapo sql {out} "{query}"')
        print(ds.sql(query))
    return 0
