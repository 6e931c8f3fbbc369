"""Publishing a papo dataset in the Hugging Face Hub dataset layout, and pushing it to the Hub.

The published folder is the dataset itself, file for file (the LeRobot v3 layout plus the
`papo/` sidecar, so LeRobot and papo_data still read it), with a dataset card at `README.md`:
a YAML header that declares one `datasets` configuration per non-empty table, and a body
generated from the schemas (every column's type and meaning) and from the data (provenance).
"""

from __future__ import annotations

import json
import re
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import pyarrow.parquet as pq
import yaml
from huggingface_hub import DatasetCardData, HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError, HFValidationError
from huggingface_hub.repocard import metadata_load
from huggingface_hub.utils import validate_repo_id

import papo_data
from papo_data import schema
from papo_data.data import commit, lerobot
from papo_data.data.dataset import Dataset, check_root, open_dataset
from papo_data.data.sqlfiles import sql_text
from papo_data.data.validate import validate
from papo_data.errors import BadInput
from papo_data.interop import DEFAULT_LICENSE

CARD = "README.md"
TEMPLATE = Path(__file__).resolve().parent / "templates" / "dataset_card.md"
TAGS = ("LeRobot", "papo", "robotics", "papo-vla")
PRODUCED_BY = {
    "snapshots": "papo collect",
    "planning_actions": "papo segment",
    "branches": "papo branch",
    "causal": "papo estimate",
    "weights": "papo export-weights",
}
"""The verb that fills each sidecar table: the card says what to run to fill an empty one."""
_LICENSE_ID = re.compile(r"[a-z0-9][a-z0-9.+-]*")  # Hub license ids: apache-2.0, cc-by-4.0, ...
_NAMES = ("state_names", "action_names")  # long lists already in info.json features


@dataclass(frozen=True)
class PublishConfig:
    """What `papo publish` does; every field has a CLI flag of the same name."""

    out: Path
    """Folder to create (built beside it under a hidden name, then renamed into place)."""
    repo_id: str | None = None
    """Hub dataset id (`user/name`): named in the card, and the target of `push`."""
    license: str = DEFAULT_LICENSE
    """Hub license id written to the card."""
    push: bool = False
    """Upload the folder to `repo_id` once it is built."""
    overwrite: bool = False
    """Replace `out` if it holds an earlier publish (anything else is never touched)."""


@dataclass(frozen=True)
class Facts:
    """What the card says about a dataset, read once from its tables."""

    info: dict[str, Any]
    dims: schema.Dims
    rows: dict[str, int]
    provenance: dict[str, Any]
    tasks: list[dict[str, Any]]


@dataclass
class Published:
    out: Path
    rows: dict[str, int]
    configs: list[str]
    left_out: dict[str, str]
    """table -> why it has no configuration"""
    files: int
    url: str | None = None


def publish(dataset: Path, cfg: PublishConfig) -> Published:
    """Build `cfg.out` from `dataset` atomically; push it if asked. BadInput on bad input."""
    token = _check_request(cfg)
    _check_dataset(dataset)
    _check_out(dataset, cfg.out, cfg.overwrite)
    with open_dataset(dataset) as ds:
        facts = read_facts(ds)
        if facts.rows["episodes"] == 0:
            raise BadInput(f"{dataset}: the dataset has no episodes; nothing to publish")
        files = published_files(ds)
    card = dataset_card(facts, cfg, files)
    staging = _build(cfg.out, files, card)
    try:
        commit.replace_folder(staging, cfg.out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    configs = [t for t in schema.TABLES if facts.rows[t]]
    result = Published(cfg.out, facts.rows, configs, left_out(facts.rows), len(files) + 1)
    if cfg.push:
        assert cfg.repo_id is not None and token is not None  # checked by _check_request
        result.url = push_folder(cfg.out, cfg.repo_id, token, facts.info["codebase_version"])
    return result


# --- checks, before any work -------------------------------------------------------------------


def _check_request(cfg: PublishConfig) -> str | None:
    """Check the flags (and, for --push, that a token exists); the token to push with."""
    if not _LICENSE_ID.fullmatch(cfg.license):
        raise BadInput(
            f"--license {cfg.license!r}: expected a Hub license id such as apache-2.0, "
            "cc-by-4.0, mit or other"
        )
    if cfg.repo_id is not None:
        try:
            validate_repo_id(cfg.repo_id)
        except HFValidationError as e:
            raise BadInput(f"--repo-id {cfg.repo_id!r}: {_first_line(e)}") from None
    if not cfg.push:
        return None
    if not cfg.repo_id:
        raise BadInput("--push needs --repo-id (the Hub dataset to push to, e.g. you/papo-reach)")
    token = get_token()
    if token is None:
        raise BadInput(
            "--push: no Hugging Face token found; log in with `hf auth login` "
            "(or set HF_TOKEN to a token with write access) and retry"
        )
    return token


def _check_dataset(dataset: Path) -> None:
    check_root(dataset)
    problems = validate(dataset)
    if problems:
        raise BadInput(
            f"{dataset}/{problems[0]} ({len(problems)} problem(s) in all; "
            f"see papo validate {dataset})"
        )


def _check_out(dataset: Path, out: Path, overwrite: bool) -> None:
    """`out` is outside the dataset, and absent, empty, or (with --overwrite) an earlier
    publish: nothing else is ever replaced."""
    src, dst = dataset.resolve(), out.resolve()
    if src == dst or src in dst.parents or dst in src.parents:
        raise BadInput(f"{out}: --out must be outside the dataset {dataset} (and not contain it)")
    if not out.exists():
        return
    if not out.is_dir():
        raise BadInput(f"{out}: exists and is not a folder")
    if not any(out.iterdir()):
        return
    if not overwrite:
        raise BadInput(
            f"{out}: exists and is not empty (pass --overwrite to replace an earlier papo publish)"
        )
    if not looks_published(out):
        raise BadInput(
            f"{out}: not an earlier papo publish (no {CARD} tagged 'papo' beside "
            f"{lerobot.INFO_PATH}); refusing to overwrite it"
        )


def looks_published(folder: Path) -> bool:
    """`folder` holds a dataset card tagged `papo` beside a LeRobot `meta/info.json`."""
    if not (folder / CARD).is_file() or not (folder / lerobot.INFO_PATH).is_file():
        return False
    try:
        meta = metadata_load(folder / CARD) or {}
    except (yaml.YAMLError, ValueError, UnicodeDecodeError):
        return False
    tags = meta.get("tags") if isinstance(meta, dict) else None
    return isinstance(tags, list) and "papo" in tags


# --- what to publish ---------------------------------------------------------------------------


def read_facts(ds: Dataset) -> Facts:
    rows = {t: int(ds.sql(f"SELECT count(*) AS n FROM {t}")["n"][0]) for t in schema.TABLES}
    return Facts(
        info=ds.info,
        dims=ds.dims,
        rows=rows,
        provenance=ds.sql(sql_text(__file__, "publish_provenance.sql")).row(0, named=True),
        tasks=ds.sql(sql_text(__file__, "publish_tasks.sql")).to_dicts(),
    )


def published_files(ds: Dataset) -> dict[str, Path]:
    """Relative path in the published folder -> the file holding its current content.

    Everything committed is published (tables, policy checkpoints, reports) as of one commit:
    staged files of a pending journal count, hidden files (locks, temps, the journal) do not.
    Zero-row sidecar files are left out: `datasets` cannot read a Parquet file whose only row
    group is empty, and papo_data reads an absent file as no rows anyway."""
    root = ds.root
    finals = {
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }
    finals = (finals | set(ds.view.pending)) - ds.view.deleted
    finals.discard(root / CARD)  # the card is written anew
    for table in schema.SIDECAR_TABLES:
        finals -= {
            p for p in ds.files[table] if pq.read_metadata(ds.view.readable(p)).num_rows == 0
        }
    return {p.relative_to(root).as_posix(): ds.view.readable(p) for p in sorted(finals)}


def left_out(rows: dict[str, int]) -> dict[str, str]:
    return {
        t: f"empty (run `{PRODUCED_BY.get(t, 'papo')}` to fill it)"
        for t in schema.TABLES
        if not rows[t]
    }


# --- the dataset card --------------------------------------------------------------------------


def card_configs(rows: dict[str, int]) -> list[dict[str, Any]]:
    """One `datasets` configuration per non-empty table, over that table's files; `steps` is
    the default. Empty tables get none: `datasets` refuses a split without rows."""
    configs: list[dict[str, Any]] = []
    for table in schema.TABLES:
        if rows[table]:
            config: dict[str, Any] = {
                "config_name": table,
                "data_files": [{"split": "train", "path": schema.load(table).file_glob}],
            }
            if table == "steps":
                config["default"] = True
            configs.append(config)
    return configs


def card_tags(facts: Facts) -> list[str]:
    env = facts.info.get("papo", {}).get("env")
    env_ids = facts.provenance["env_ids"] or []
    tasks = [e.rsplit("/", 1)[-1] for e in env_ids]
    return list(dict.fromkeys(t for t in (*TAGS, env, *tasks) if t))


def dataset_card(facts: Facts, cfg: PublishConfig, files: dict[str, Path]) -> str:
    """The text of README.md: YAML metadata for the Hub, then the body from the template."""
    title = (cfg.repo_id or str(cfg.out.resolve())).rstrip("/").rsplit("/", 1)[-1]
    header = DatasetCardData(
        license=cfg.license,
        task_categories=["robotics"],
        tags=card_tags(facts),
        pretty_name=title,
        configs=card_configs(facts.rows),
    ).to_yaml()
    configs = [t for t in schema.TABLES if facts.rows[t]]
    body = Template(TEMPLATE.read_text()).substitute(
        title=title,
        summary=_summary(facts),
        repo=cfg.repo_id or f"you/{title}",
        configs=", ".join(f"`{t}`" for t in configs),
        left_out=_left_out_list(facts.rows),
        provenance=_rows(_provenance(facts)),
        task_rows=_rows(_task_row(t) for t in facts.tasks),
        stages=json.dumps(
            {k: v for k, v in facts.info.get("papo", {}).items() if k not in _NAMES}, indent=2
        ),
        dims=_dims_line(facts),
        tables="".join(_table_section(t, facts) for t in schema.TABLES),
        layout=_layout(files, facts.rows),
        license=cfg.license,
    )
    return f"---\n{header}\n---\n\n{body}"


def _summary(facts: Facts) -> str:
    p, r = facts.provenance, facts.rows
    return (
        f"{p['episodes']} episodes ({p['frames']} frames) in {p['groups']} GRPO groups on "
        f"{_list(p['env_ids'])}; episode success rate {_percent(p['success_rate'])}. "
        f"{r['planning_actions']} planning actions, {r['branches']} branch rollouts, "
        f"{r['causal']} causal estimates and {r['weights']} step weights."
    )


def _left_out_list(rows: dict[str, int]) -> str:
    missing = left_out(rows)
    if not missing:
        return ""
    items = "".join(f"- `{t}`: {why}\n" for t, why in missing.items())
    return f"\nTables without a configuration (`datasets` cannot load an empty table):\n\n{items}"


def _provenance(facts: Facts) -> list[tuple[str, str]]:
    p, info = facts.provenance, facts.info
    papo = info.get("papo", {})
    horizon = f", horizon {papo['horizon']} steps" if "horizon" in papo else ""

    def stage(key: str, table: str) -> str:
        return _list(p[key]) if p[key] else f"none yet (run `{PRODUCED_BY[table]}`)"

    replay = (
        f"{p['replay_exact']} of {p['replay_arms']} reproduced the log bit for bit"
        if p["replay_arms"]
        else "none yet"
    )
    return [
        ("Simulator", f"`{papo.get('env', 'unknown')}`, robot `{info.get('robot_type')}`"),
        ("Environments", _list(p["env_ids"])),
        ("Tasks", "; ".join(f"{t['task_index']}: {t['task']}" for t in facts.tasks)),
        ("Policies", _list(p["policy_ids"])),
        ("Episodes", f"{p['episodes']} in {p['groups']} GRPO groups (same task and start)"),
        ("Frames", f"{p['frames']} at {info['fps']} fps"),
        ("Success rate", f"{_percent(p['success_rate'])} of episodes (any step succeeded)"),
        ("Episode end", f"{papo.get('episode_end', 'unknown')}{horizon}"),
        ("Planning-action detectors", stage("detectors", "planning_actions")),
        ("Branch interventions", stage("interventions", "branches")),
        ("Replay arms", replay),
        ("Causal methods", stage("methods", "causal")),
        ("Weight runs", stage("run_ids", "weights")),
        ("Schema version", str(papo.get("schema_version", schema.schema_version()))),
        ("Published with", f"papo_data {papo_data.__version__}"),
    ]


def _task_row(t: dict[str, Any]) -> tuple[Any, ...]:
    return (
        t["task_index"],
        t["task"],
        t["episodes"],
        t["frames"],
        t["groups"],
        _percent(t["success_rate"]),
    )


def _dims_line(facts: Facts) -> str:
    names = facts.info.get("papo", {}).get("action_names") or []
    action = f" ({', '.join(names)})" if names else ""
    return (
        f"here `state_dim` = {facts.dims['state_dim']} and `action_dim` = "
        f"{facts.dims['action_dim']}{action}; every dimension's name is in `meta/info.json` "
        "features"
    )


def _table_section(table: str, facts: Facts) -> str:
    ts = schema.load(table)
    n = facts.rows[table]
    where = f"configuration `{table}`" if n else f"no configuration: {left_out(facts.rows)[table]}"
    columns = _rows((f"`{c.name}`", _type(c, facts.dims), c.meaning) for c in ts.columns)
    return (
        f"### {table}\n\n{ts.description} {_count(n, 'row')}, {where}; files `{ts.file_glob}`.\n\n"
        f"| column | type | meaning |\n|---|---|---|\n{columns}\n\n"
    )


def _type(column: schema.Column, dims: schema.Dims) -> str:
    text = column.type
    if column.dim:
        text = text.replace(f"[{column.dim}]", f"[{dims[column.dim]}]")
    return f"`{text}`" + (", nullable" if column.nullable else "")


def _layout(files: dict[str, Path], rows: dict[str, int]) -> str:
    """Each folder with its file count and size, the card first."""
    folders: dict[str, list[Path]] = defaultdict(list)
    for rel, src in files.items():
        folders[str(Path(rel).parent) + "/" if "/" in rel else rel].append(src)
    lines = [f"{CARD:<40} this card"]
    for name, srcs in sorted(folders.items()):
        size = sum(s.stat().st_size for s in srcs) / 1e6
        lines.append(f"{name:<40} {_count(len(srcs), 'file')}, {size:.2f} MB")
    return "\n".join(lines)


def _rows(cells: Any) -> str:
    """Markdown table rows; `|` inside a cell is escaped."""
    return "\n".join(
        "| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in cells
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _list(values: list[str] | None) -> str:
    return ", ".join(f"`{v}`" for v in values) if values else "none"


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{100 * rate:.1f} %"


# --- writing and pushing -----------------------------------------------------------------------


def _build(out: Path, files: dict[str, Path], card: str) -> Path:
    """The whole folder under a hidden name beside `out` (same file system: renames are atomic)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    commit.remove_stale_siblings(out)  # of publishes killed midway
    staging = commit.temp_name(out)
    try:
        for rel, src in files.items():
            dst = staging / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
        (staging / CARD).write_text(card)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def _hub_errors() -> tuple[type[BaseException], ...]:
    """What talking to the Hub raises when the network, the token or the server says no.

    HfHubHTTPError derives from the HTTP client's base error (requests, httpx or httpx2,
    depending on the huggingface_hub version), and so do that client's transport errors
    (connection refused, timeouts); offline mode and socket errors are OSError."""
    return (OSError, HfHubHTTPError, *HfHubHTTPError.__bases__)


def push_folder(folder: Path, repo_id: str, token: str, version_tag: str) -> str:
    """Create the Hub dataset repo if needed, upload `folder`, and point the codebase-version
    tag at the new commit (LeRobot loads the revision tagged with its codebase version)."""
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
        api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            repo_type="dataset",
            commit_message="papo publish",
        )
        refs = api.list_repo_refs(repo_id, repo_type="dataset")
        if any(t.name == version_tag for t in refs.tags):
            api.delete_tag(repo_id, tag=version_tag, repo_type="dataset")
        api.create_tag(repo_id, tag=version_tag, repo_type="dataset")
    except _hub_errors() as e:
        raise BadInput(
            f"--push: pushing to the Hub dataset {repo_id} failed ({_first_line(e)}); "
            f"{folder} is complete, rerun with --overwrite --push to retry"
        ) from None
    return str(url)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
