"""Run seqcast's nightly training flow through its CLI and read what it registered.

The flow runs as a user would run it (`seqcast train --config ...`, its own process, a fresh
``data_root``), so the wall time includes Prefect's start-up, ingest, validation and every
trial the search runs. The registry is then read through `seqcast models list --json` and
`seqcast models show VERSION`; keys that other branches add (the champion's kind, the
search's trial count, the test forecasts' path) are looked up tolerantly and reported as
missing rather than guessed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

FORECASTS_FILE = "test_forecasts.parquet"


@dataclass(frozen=True)
class FlowResult:
    """What one nightly run registered.

    Attributes:
        wall_s: wall time of `seqcast train` (process start to exit).
        version: the version this run registered.
        promoted: whether it is the champion now.
        kind: the champion's kind (``model`` unless the registry names another, e.g. ``ets``).
        mae: the champion's test MAE as seqcast scored it (None when nothing is champion).
        model_mae: the trained network's test MAE, promoted or not.
        scores: every predictor's test metrics from ``metrics.json``.
        trials: models the search trained (None when the manifest does not say).
        forecasts: path of the version's test forecasts, when it wrote them.
        log: the CLI's last output lines (its metric table and verdict).
    """

    wall_s: float
    version: str
    promoted: bool
    kind: str
    mae: float | None
    model_mae: float
    scores: dict[str, dict[str, float]]
    trials: int | None
    forecasts: Path | None
    log: str


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "flows.cli.main", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


def _checked(done: subprocess.CompletedProcess[str], what: str) -> str:
    if done.returncode != 0:
        raise RuntimeError(
            f"`seqcast {what}` exited {done.returncode}:\n"
            f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    return done.stdout


def _find(document: Any, names: tuple[str, ...]) -> Any:
    """The first value under any of ``names``, searched depth-first through dicts."""
    if isinstance(document, dict):
        for name in names:
            if name in document:
                return document[name]
        for value in document.values():
            found = _find(value, names)
            if found is not None:
                return found
    return None


def write_config(config: dict[str, Any], path: Path) -> Path:
    """The run's config file (the committed one with the benchmark's paths filled in)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def run_nightly(config_path: Path, data_root: Path, overrides: list[str]) -> FlowResult:
    """`seqcast train` on ``config_path`` then the registry's view of the new version."""
    env = {**os.environ, "PREFECT_HOME": str(data_root / "prefect")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    config = ["--config", str(config_path)]
    sets = [a for o in overrides for a in ("--set", o)]
    started = time.perf_counter()
    trained = _checked(_cli(["train", *config, *sets], env), "train")
    wall_s = time.perf_counter() - started
    rows = json.loads(_checked(_cli(["models", "list", *config, "--json"], env), "models list"))
    mine = max(rows, key=lambda r: r["created"])  # a fresh data_root: this run's version
    shown = _cli(["models", "show", mine["version"], *config, "--json"], env)
    if shown.returncode != 0:  # before `show --json` exists: it prints JSON anyway
        shown = _cli(["models", "show", mine["version"], *config], env)
    detail = json.loads(_checked(shown, "models show"))
    scores: dict[str, dict[str, float]] = mine["metrics"]["scores"]
    primary = mine["metrics"].get("primary_metric", "mae")
    champion = next((r for r in rows if r["champion"]), None)
    kind = str(_find(champion, ("champion_kind", "kind")) or "model") if champion else "model"
    trials = _find(detail.get("manifest"), ("trials", "n_trials"))
    path = _find(detail, ("test_forecasts", "test_forecasts_path", "forecasts_path"))
    root = config_root(config_path) / "registry" / "versions" / mine["version"]
    forecasts = Path(path) if path else root / FORECASTS_FILE
    mae = None
    if champion is not None:
        mae = float(champion["metrics"]["scores"].get(kind, scores["model"])[primary])
    return FlowResult(
        wall_s=wall_s,
        version=mine["version"],
        promoted=bool(mine["champion"]),
        kind=kind,
        mae=mae,
        model_mae=float(scores["model"][primary]),
        scores=scores,
        trials=len(trials) if isinstance(trials, list) else trials,
        forecasts=forecasts if forecasts.exists() else None,
        log="\n".join(trained.strip().splitlines()[-12:]),
    )


def config_root(config_path: Path) -> Path:
    """``data_root/name`` of a written config (a local path in the benchmark)."""
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    return Path(config["data_root"]) / config["name"]


def read_forecasts(path: Path) -> pd.DataFrame:
    """A version's test forecasts (series, origin, step, target, actual, one column each)."""
    return pd.read_parquet(path)
