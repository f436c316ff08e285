"""Figure 9: forecast intervals on the real-data series of figure 7.

Usage:
    nice -n 10 python -m benchmarks.real.intervals --dataset macrodata --dataset sunspots

Per dataset: the committed config (`configs/{name}.yaml`, no model settings) on a fresh
``data_root``, `seqcast train` end to end, then the run's metrics.json: test coverage of the
central 80% interval and the weighted quantile loss (wQL, `seqcast.modeling.intervals`) of
the night's champion, of the network's quantile head, and of seasonal naive with its
empirical validation-residual interval (last value where the config has no season).
``--calibrate`` runs with ``evaluate.calibrate: true`` (kept as ``NAME+calibrated``).
Results go to ``benchmarks/real/results_intervals.json`` (datasets not run are kept) and the
"Figure 9" table of ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.real.datasets import DATASETS, write_csv
from benchmarks.real.nightly import run_nightly, write_config
from benchmarks.real.run import WORK, run_config

HERE = Path(__file__).parent
RESULTS = HERE / "results_intervals.json"
README = HERE.parent / "README.md"
START, END = "<!-- figure-9:start -->", "<!-- figure-9:end -->"
COMMAND = "nice -n 10 python -m benchmarks.real.intervals --dataset NAME [--dataset NAME ...]"


def _predictor(kind: str, season: int | None) -> str:
    """The metrics table's row of a champion kind."""
    if kind in ("network", "model"):
        return "model"
    return f"seasonal_naive_{season}" if kind == "seasonal_naive" else kind


def run_one(name: str, work: Path, calibrate: bool = False) -> dict[str, Any]:
    """One dataset's nightly run and its interval scores (``calibrate``: with
    ``evaluate.calibrate: true``)."""
    dataset = DATASETS[name]
    csv = write_csv(dataset, work, smoke=False).resolve()
    config = run_config(dataset, csv, work.resolve(), smoke=False)
    if calibrate:
        config.setdefault("evaluate", {})["calibrate"] = True
    path = write_config(config, work / "configs" / f"{name}.yaml")
    flow = run_nightly(path, Path(config["data_root"]), [])
    season = yaml.safe_load(path.read_text()).get("evaluate", {}).get("season")
    naive = f"seasonal_naive_{season}" if season else "last_value"
    champion = _predictor(flow.kind, season)
    pick = ("mae", "coverage_80", "wql")
    return {
        "dataset": name,
        "calibrate": calibrate,
        "season": season,
        "champion": champion,
        "scores": {
            row: {k: flow.scores[row].get(k) for k in pick}
            for row in dict.fromkeys([champion, "model", naive])
            if row in flow.scores
        },
        "naive": naive,
        "wall_s": round(flow.wall_s, 1),
    }


def _cell(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}%" if percent else f"{value:.4g}"


def table(results: dict[str, Any]) -> str:
    """The README's table: one row per dataset."""
    lines = [
        "| dataset | champion | champion coverage 80% | champion wQL | network head coverage "
        "80% | network head wQL | naive (empirical) | naive coverage 80% | naive wQL |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["datasets"].values():
        champ, model, naive = (r["scores"].get(k, {}) for k in (r["champion"], "model", r["naive"]))
        name = f"{r['dataset']} (calibrated)" if r.get("calibrate") else r["dataset"]
        lines.append(
            f"| {name} | {r['champion']} | {_cell(champ.get('coverage_80'), True)} | "
            f"{_cell(champ.get('wql'))} | {_cell(model.get('coverage_80'), True)} | "
            f"{_cell(model.get('wql'))} | {r['naive']} | "
            f"{_cell(naive.get('coverage_80'), True)} | {_cell(naive.get('wql'))} |"
        )
    return "\n".join(lines)


def write_readme(results: dict[str, Any], readme: Path = README) -> None:
    """Replace the table between the markers (the prose around it is written by hand)."""
    text = readme.read_text(encoding="utf-8")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    readme.write_text(f"{head}{START}\n{table(results)}\n{END}{tail}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", action="append", choices=sorted(DATASETS), required=True)
    parser.add_argument("--work", type=Path, default=WORK, help="scratch folder (not committed)")
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="evaluate.calibrate: true (results kept as NAME+calibrated)",
    )
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"datasets": {}}
    for name in args.dataset:
        started = time.perf_counter()
        result = run_one(name, args.work, args.calibrate)
        results["datasets"][f"{name}+calibrated" if args.calibrate else name] = result
        results["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        print(f"{name}: {json.dumps(result['scores'])} ({time.perf_counter() - started:.0f} s)")
    if START in README.read_text(encoding="utf-8"):
        write_readme(results)


if __name__ == "__main__":
    main()
