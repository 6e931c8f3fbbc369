"""Write random episodes, read them back through DuckDB: same values, same Arrow types."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from papo_data import DatasetWriter, Episode, open_dataset
from papo_data.schema import load

floats = st.floats(width=32, allow_nan=False, allow_infinity=False)


@st.composite
def datasets(draw: st.DrawFn) -> tuple[int, int, list[Episode], int]:
    s = draw(st.integers(1, 6))
    a = draw(st.integers(1, 5))
    n = draw(st.integers(1, 6))
    eps = []
    for i in range(n):
        t = draw(st.integers(1, 12))
        with_log_prob = draw(st.booleans())
        eps.append(
            Episode(
                episode_uid=f"uid-{i}",
                task=draw(st.sampled_from(["pick", "place", "push ünïcode"])),
                observation_state=draw(hnp.arrays(np.float32, (t, s), elements=floats)),
                action=draw(hnp.arrays(np.float32, (t, a), elements=floats)),
                reward=draw(
                    hnp.arrays(np.float32, (t,), elements=floats.filter(lambda x: abs(x) < 1e30))
                ),
                success=draw(hnp.arrays(np.bool_, (t,))),
                log_prob=draw(hnp.arrays(np.float32, (t, a), elements=floats))
                if with_log_prob
                else None,
                group_id=f"g{i % 2}",
                group_member=i,
                init_seed=draw(st.integers(0, 2**40)),
                policy_seed=draw(st.integers(0, 2**40)),
            )
        )
    flush_every = draw(st.integers(1, 4))
    return s, a, eps, flush_every


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
def test_write_then_read_back_identical(case: tuple[int, int, list[Episode], int]) -> None:
    s, a, eps, flush_every = case
    root = Path(tempfile.mkdtemp()) / "ds"
    try:
        with DatasetWriter.create(
            root,
            fps=20,
            state_names=[f"s{i}" for i in range(s)],
            action_names=[f"a{i}" for i in range(a)],
            env="test",
            flush_every=flush_every,
            log_probs=True,  # episodes with and without: the column stays, null where unknown
        ) as w:
            for ep in eps:
                w.add_episode(ep)
        with open_dataset(root) as ds:
            steps = ds.arrow("select * from steps order by index")
            episodes = ds.arrow("select * from episodes order by episode_index")
        expected = load("steps").arrow_schema({"state_dim": s, "action_dim": a})
        assert steps.schema.names == expected.names
        assert steps.schema.types == expected.types  # vectors stay fixed_size_list<float32>
        assert pa.types.is_fixed_size_list(steps.schema.field("action").type)
        assert steps.column("index").to_pylist() == list(range(sum(len(e.action) for e in eps)))
        offset = 0
        for i, ep in enumerate(eps):
            rows = steps.slice(offset, len(ep.action))
            offset += len(ep.action)
            np.testing.assert_array_equal(
                np.stack(rows.column("observation.state").to_numpy(zero_copy_only=False)),
                ep.observation_state,
            )
            np.testing.assert_array_equal(
                np.stack(rows.column("action").to_numpy(zero_copy_only=False)), ep.action
            )
            np.testing.assert_array_equal(rows.column("next.reward").to_numpy(), ep.reward)
            assert rows.column("next.success").to_pylist() == ep.success.tolist()
            log_prob = rows.column("policy.log_prob").to_pylist()
            if ep.log_prob is None:
                assert log_prob == [None] * len(ep.action)
            else:
                np.testing.assert_array_equal(np.array(log_prob, dtype=np.float32), ep.log_prob)
            assert set(rows.column("episode_index").to_pylist()) == {i}
            row = episodes.slice(i, 1).to_pylist()[0]
            assert row["episode_uid"] == ep.episode_uid
            assert row["tasks"] == [ep.task]
            assert row["length"] == len(ep.action)
            assert row["init_seed"] == ep.init_seed and row["policy_seed"] == ep.policy_seed
            assert row["success"] == bool(ep.success.any())
            first = int(np.argmax(ep.success)) if ep.success.any() else None
            assert row["first_success_frame"] == first
    finally:
        shutil.rmtree(root.parent)
