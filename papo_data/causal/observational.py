"""The observational side, with DoWhy: from the logged siblings alone, what is the effect of
taking the planning action on success? Per task, treatment = the sibling took the planning
action (matched on its actions in the window, as for the bounds), outcome = success, common
causes = initial-state features. Backdoor estimate, three refuters, and the gap to the
interventional effect the branches measured, reported side by side (DESIGN §3).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd

from papo_data.causal.estimate import matched
from papo_data.data.dataset import Dataset
from papo_data.data.sqlfiles import sql_text

MAX_COMMON_CAUSES = 5


def _rows(ds: Dataset) -> pd.DataFrame:
    windows = ds.arrow(sql_text(__file__, "group_windows.sql")).to_pylist()
    initial = {
        r["episode_uid"]: (r["env_id"], r["state"])
        for r in ds.arrow(sql_text(__file__, "initial_states.sql")).to_pylist()
    }
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for m in windows:
        groups.setdefault((m["episode_uid"], m["frame_index"]), []).append(m)
    out = []
    for members in groups.values():
        for m, took in matched(members, "hold") or []:
            task, state = initial[m["member"]]
            out.append({"task": task, "x": int(took), "y": int(m["y"]), "state": state})
    return pd.DataFrame(out)


def dowhy_report(
    ds: Dataset, branch_effect: dict[str, float], seed: int = 0
) -> list[dict[str, Any]]:
    """One entry per task: backdoor estimate, refuters, and `gap` = observational minus the
    branch-based effect P(y_x) - P(y_x') of the `hold` intervention (`branch_effect[task]`)."""
    from dowhy import CausalModel

    logging.getLogger("dowhy").setLevel(logging.ERROR)
    data = _rows(ds)
    report = []
    for task, part in data.groupby("task", sort=True) if len(data) else []:
        entry: dict[str, Any] = {"task": task, "n": len(part), "treated": int(part["x"].sum())}
        entry["branch_effect"] = branch_effect.get(str(task))
        states = np.stack(part["state"].to_numpy())
        spread = states.std(axis=0)
        keep = [i for i in np.argsort(-spread)[:MAX_COMMON_CAUSES] if spread[i] > 1e-9]
        frame = pd.DataFrame({f"s{i}": states[:, i] for i in keep})
        frame["x"], frame["y"] = part["x"].to_numpy().astype(bool), part["y"].to_numpy()
        if frame["x"].nunique() < 2 or frame["y"].nunique() < 2:
            entry["error"] = "treatment or outcome takes one value: no observational estimate"
            report.append(entry)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = CausalModel(
                data=frame, treatment="x", outcome="y", common_causes=[f"s{i}" for i in keep]
            )
            estimand = model.identify_effect(proceed_when_unidentifiable=True)
            # DoWhy builds adjustment sets from Python sets, whose order follows the process's
            # hash seed; the regression's column order then moves the last float digits.
            for key, names in (estimand.backdoor_variables or {}).items():
                estimand.backdoor_variables[key] = sorted(names)
            est = model.estimate_effect(estimand, method_name="backdoor.linear_regression")
            entry["observational_effect"] = float(est.value)
            refuters = {}
            for name, kwargs in (
                ("placebo_treatment_refuter", {"placebo_type": "permute"}),
                ("random_common_cause", {}),
                ("data_subset_refuter", {"subset_fraction": 0.8}),
            ):
                r = model.refute_estimate(
                    estimand, est, method_name=name, num_simulations=20, random_seed=seed, **kwargs
                )
                refuters[name] = {"new_effect": float(np.mean(r.new_effect))}
            entry["refuters"] = refuters
        if entry["branch_effect"] is not None:
            entry["gap"] = entry["observational_effect"] - entry["branch_effect"]
        report.append(entry)
    return report
