"""Load papo datasets with the real `lerobot` library and do what a LeRobot user does first.

papo's own tests check the LeRobot v3.0 layout with an independent checker (tests/lerobot_v3.py);
this script asks lerobot itself. It needs a virtual environment of its own, because lerobot pins
torch, numpy and datasets versions that papo's environment does not have (see
`analyses/lerobot_compat_install.sh`). Datasets are made with papo's CLI beforehand, e.g.:

    papo collect /tmp/lr/collect --tasks pick-place-v3,drawer-open-v3 --groups 2 --group-size 3
    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 /tmp/lerobot-venv/bin/python \\
        analyses/lerobot_compat.py /tmp/lr/collect [more datasets ...]

Per dataset it runs: LeRobotDatasetMetadata (tasks, episodes, stats), LeRobotDataset (len,
items, the task text), a torch DataLoader batch, `episodes=[...]`, `delta_timestamps` with a
batch, the normaliser's statistics (NormalizerProcessorStep: a dataset without meta/stats.json is
left unnormalised without a word), and dataset_tools' delete_episodes, split_dataset and
merge_datasets. Prints one line per check; exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any


def checks(root: Path, work: Path) -> list[tuple[str, Callable[[], Any]]]:
    import torch
    from lerobot.datasets import dataset_tools
    from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata

    def batch(ds: Any, size: int = 4) -> dict[str, Any]:
        loader = torch.utils.data.DataLoader(ds, batch_size=size)
        return {k: tuple(v.shape) for k, v in next(iter(loader)).items() if hasattr(v, "shape")}

    def metadata() -> str:
        meta = LeRobotDatasetMetadata("local/x", root=root)
        task = meta.episodes[0]["tasks"][0]
        assert meta.get_task_index(task) is not None, task
        assert meta.stats is not None, "meta.stats is None (no meta/stats.json)"
        return (
            f"{meta.total_episodes} episodes, {meta.total_frames} frames, stats {len(meta.stats)}"
        )

    def items() -> str:
        ds = LeRobotDataset("local/x", root=root)
        first, last = ds[0], ds[len(ds) - 1]
        assert isinstance(first["task"], str), first["task"]
        return f"{len(ds)} items; task {first['task']!r}; last index {int(last['index'])}"

    def one_episode() -> str:
        ds = LeRobotDataset("local/x", root=root, episodes=[1])
        assert int(ds[0]["episode_index"]) == 1
        return f"{len(ds)} frames of episode 1"

    def delta() -> dict[str, Any]:
        fps = LeRobotDatasetMetadata("local/x", root=root).fps
        shifts = {"action": [0, 1 / fps], "observation.state": [-1 / fps, 0]}
        return batch(LeRobotDataset("local/x", root=root, delta_timestamps=shifts))

    def normaliser() -> str:
        from lerobot.configs.types import FeatureType, NormalizationMode, PolicyFeature
        from lerobot.processor.normalize_processor import NormalizerProcessorStep

        ds = LeRobotDataset("local/x", root=root)
        feats = {
            "observation.state": PolicyFeature(
                FeatureType.STATE, tuple(ds.meta.shapes["observation.state"])
            ),
            "action": PolicyFeature(FeatureType.ACTION, tuple(ds.meta.shapes["action"])),
        }
        modes = {FeatureType.STATE: NormalizationMode.MEAN_STD}
        modes[FeatureType.ACTION] = NormalizationMode.MEAN_STD
        step = NormalizerProcessorStep.from_lerobot_dataset(ds, feats, modes)
        actions = torch.stack([ds[i]["action"] for i in range(min(32, len(ds)))])
        normalised = step._normalize_action(actions, inverse=False)
        assert not torch.equal(actions, normalised), "actions left unnormalised"
        return f"action mean {actions.mean():.3f} -> {normalised.mean():.3f}"

    def reload(path: Path) -> str:
        ds = LeRobotDataset("local/y", root=path)
        return f"{ds.num_episodes} episodes, {len(ds)} frames"

    def delete() -> str:
        ds = LeRobotDataset("local/x", root=root)
        out = dataset_tools.delete_episodes(ds, [0], output_dir=work / "deleted")
        return reload(out.root)

    def split() -> list[str]:
        ds = LeRobotDataset("local/x", root=root)
        parts = dataset_tools.split_dataset(ds, {"a": 0.5, "b": 0.5}, output_dir=work / "split")
        return [reload(p.root) for p in parts.values()]

    def merge() -> str:
        shutil.copytree(root, work / "copy")
        both = [LeRobotDataset("local/x", root=root), LeRobotDataset("local/c", root=work / "copy")]
        out = dataset_tools.merge_datasets(
            both, output_repo_id="local/merged", output_dir=work / "merged"
        )
        return reload(out.root)

    return [
        ("LeRobotDatasetMetadata: tasks, episodes, stats", metadata),
        ("LeRobotDataset: items and task text", items),
        ("DataLoader batch", lambda: batch(LeRobotDataset("local/x", root=root))),
        ("LeRobotDataset(episodes=[1])", one_episode),
        ("delta_timestamps batch", delta),
        ("NormalizerProcessorStep (MEAN_STD)", normaliser),
        ("dataset_tools.delete_episodes", delete),
        ("dataset_tools.split_dataset", split),
        ("dataset_tools.merge_datasets", merge),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+", type=Path, help="papo dataset folders")
    parser.add_argument(
        "--torchvision-shim",
        action="store_true",
        help="define torchvision's two C++ op schemas first (only where the one torchvision "
        "wheel reachable is a CUDA build beside a CPU torch; see the install script)",
    )
    args = parser.parse_args()
    if args.torchvision_shim:
        import torch

        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import lerobot

    print(f"lerobot {lerobot.__version__}")
    failed = 0
    for root in args.datasets:
        with tempfile.TemporaryDirectory() as work:
            for name, check in checks(root, Path(work)):
                try:
                    print(f"ok    {root}: {name}: {check()}")
                except Exception as e:  # report every check, then the traceback of each
                    failed += 1
                    print(f"FAIL  {root}: {name}: {type(e).__name__}: {e}")
                    traceback.print_exc(file=sys.stderr)
    print(f"{failed} checks failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
