"""Figure 7: seqcast (no model settings) vs its peers on real, package-bundled series.

Usage:
    python -m benchmarks.real.run                      # every dataset, seeds 0-2; writes results
    python -m benchmarks.real.run --dataset airline    # one (others' results are kept)
    python -m benchmarks.real.run --seeds 1            # seed 0 only (a third of the time)
    python -m benchmarks.real.run --dataset shampoo --smoke --set model.epochs=1

Per dataset: the CSV from the package (`datasets.py`), the committed config
(`configs/{name}.yaml`) with this run's paths, `seqcast train` timed end to end on a fresh
``data_root``, then every peer on exactly seqcast's test targets (`windows.py`): the bare
Keras script and a Darts-style block RNN (LSTM and GRU each; `bare_keras.py`), ETS,
seasonal naive and last value; once per seed
(`seeds.py`: ``model.seed`` for seqcast, the same seed for the network peers), each entry
published as its median over the seeds. Results go to
``benchmarks/real/results.json`` and the "Figure 7: real data" table of
``benchmarks/README.md``. ``--smoke`` runs on a fixed-duration stand-in for the calendar
(today's main cannot read monthly or yearly stamps) and publishes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from benchmarks.real import report
from benchmarks.real.datasets import DATASETS, SERIES, TIME, Dataset, write_csv
from benchmarks.real.seeds import SEEDS, combine
from benchmarks.real.windows import (
    KEYS,
    Panel,
    at_or_below,
    last_value,
    mae,
    make_panel,
    reconstructed_windows,
    rows_from_forecasts,
    seasonal_naive,
)
from seqcast.windows.windowing import split_bounds

HERE = Path(__file__).parent
CONFIGS = HERE / "configs"
RESULTS = HERE / "results.json"
WORK = Path(".seqcast/bench-real")
BARE_CELLS = ("lstm", "gru")


def run_config(dataset: Dataset, csv: Path, work: Path, smoke: bool) -> dict[str, Any]:
    """The committed config with this run's CSV and a fresh data_root."""
    config: dict[str, Any] = yaml.safe_load((CONFIGS / f"{dataset.name}.yaml").read_text())
    data_root = work / "data-root" / dataset.name
    shutil.rmtree(data_root, ignore_errors=True)
    config["data_root"] = str(data_root)
    config["source"]["path"] = str(csv)
    if smoke:  # a fixed-duration stand-in for the calendar frequency
        config["source"]["frequency"] = dataset.smoke_step
        config["source"].pop("time_unit", None)
    return config


def _scaling(train_rows: np.ndarray, scale: str) -> tuple[np.ndarray, np.ndarray]:
    """(offset, factor) per column from a series' training rows: ``zscore`` (mean, std) or
    ``minmax`` (min, max - min, to [0, 1]); a constant column gets a factor of 1."""
    if scale == "zscore":
        offset, factor = train_rows.mean(0), train_rows.std(0)
    else:
        offset, factor = train_rows.min(0), np.ptp(train_rows, axis=0)
    return offset, np.where(factor > 0, factor, 1.0)


def network_peers(
    panel: Panel,
    rows: pd.DataFrame,
    lookback: int,
    horizon: int,
    val: float,
    test: float,
    seed: int,
) -> dict[str, np.ndarray]:
    """The network peers' forecasts for ``rows`` (`bare_keras.py`): each scales per series on
    the training rows, trains on the windows whose targets are all training rows and
    forecasts the test origins, in original units."""
    from benchmarks.real.bare_keras import bare_forecast, darts_forecast

    out = {}
    for style, scale, forecast in (
        ("bare", "zscore", bare_forecast),
        ("darts", "minmax", darts_forecast),
    ):
        train_x, train_y, test_x, unscale = peer_windows(
            panel, rows, lookback, horizon, val, test, scale
        )
        for cell in BARE_CELLS:
            scaled = forecast(train_x, train_y, test_x, cell, seed)
            out[f"{style}_{cell}"] = unscale(scaled)
    return out


def peer_windows(
    panel: Panel,
    rows: pd.DataFrame,
    lookback: int,
    horizon: int,
    val: float,
    test: float,
    scale: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """Scaled (train_x, train_y, test_x) windows and the function that turns a scaled
    (test windows, horizon, targets) forecast into ``rows``' values in original units."""
    n_targets = panel.n_targets
    train_x, train_y, test_x, stats = [], [], [], {}
    origins = rows[["series", "origin"]].drop_duplicates().to_numpy().tolist()
    for s in panel.series:
        val_start, _ = split_bounds(len(s.values), val, test)
        offset, factor = _scaling(s.values[:val_start], scale)
        stats[s.name] = (offset[:n_targets], factor[:n_targets])
        z = (s.values - offset) / factor
        for o in range(lookback - 1, val_start - horizon):
            train_x.append(z[o - lookback + 1 : o + 1])  # (lookback, columns)
            train_y.append(z[o + 1 : o + horizon + 1, :n_targets])  # (horizon, targets)
        test_x += [z[o - lookback + 1 : o + 1] for name, o in origins if name == s.name]
    order = [(name, o) for s in panel.series for name, o in origins if name == s.name]
    at = {key: i for i, key in enumerate(order)}
    column = {t: j for j, t in enumerate(panel.targets)}
    pairs = list(zip(rows["series"], rows["target"], strict=True))
    index = np.array([at[(s, o)] for s, o in zip(rows["series"], rows["origin"], strict=True)])
    step = rows["step"].to_numpy() - 1
    target = np.array([column[t] for t in rows["target"]])
    offset = np.array([stats[s][0][column[t]] for s, t in pairs])
    factor = np.array([stats[s][1][column[t]] for s, t in pairs])

    def unscale(scaled: np.ndarray) -> np.ndarray:
        return scaled[index, step, target] * factor + offset

    return np.stack(train_x), np.stack(train_y), np.stack(test_x), unscale


def score(
    dataset: Dataset, config: dict[str, Any], csv: Path, flow: Any, seed: int
) -> dict[str, Any]:
    """Every peer's MAE on seqcast's test targets, with seqcast's champion beside them
    (one seed: the network peers run with ``seed``, as the flow ran with ``model.seed``)."""
    from benchmarks.real.ets import ets_forecasts
    from benchmarks.real.nightly import read_forecasts

    source, window = config["source"], config["window"]
    split = config.get("split", {})
    val, test = float(split.get("val", 0.1)), float(split.get("test", 0.2))
    lookback, horizon = int(window["lookback"]), int(window["horizon"])
    season = config.get("evaluate", {}).get("season")
    frame = pd.read_csv(csv)
    panel = make_panel(frame, SERIES, TIME, source["target"], source.get("features", []))
    if flow.forecasts is not None:
        rows = rows_from_forecasts(panel, read_forecasts(flow.forecasts))
        # the champion's own column when the file has one; nothing when nothing is champion
        seqcast_mae = (
            mae(rows, flow.kind) if flow.mae is not None and flow.kind in rows else flow.mae
        )
        windows_from = "test_forecasts.parquet"
    else:
        rows = reconstructed_windows(panel, lookback, horizon, val, test)
        seqcast_mae = flow.mae
        windows_from = "split rule (no test_forecasts.parquet)"
    rows = rows.sort_values(KEYS, kind="stable").reset_index(drop=True)
    peers = {"last_value": last_value(panel, rows)}
    if season:
        peers[f"seasonal_naive_{season}"] = seasonal_naive(panel, rows, int(season))
    peers["ets"] = ets_forecasts(panel, rows, season, val, test)
    peers.update(network_peers(panel, rows, lookback, horizon, val, test, seed))
    peer_mae = {name: mae(rows.assign(**{name: values}), name) for name, values in peers.items()}
    best = min(peer_mae, key=lambda k: peer_mae[k])
    # the harness and the flow must see the same windows: their naive MAEs must agree
    check = {
        name: {"harness": peer_mae[name], "seqcast": flow.scores[name]["mae"]}
        for name in peer_mae
        if name in flow.scores and (name == "last_value" or name.startswith("seasonal_naive"))
    }
    aligned = all(np.isclose(c["harness"], c["seqcast"], rtol=1e-4) for c in check.values())
    if not aligned:
        print(f"WARNING {dataset.name}: naive MAEs differ from seqcast's: {check}", flush=True)
    return {
        "dataset": dataset.name,
        "origin": dataset.origin,
        "kind": dataset.kind,
        "series": len(panel.series),
        "rows": int(sum(len(s.values) for s in panel.series)),
        "lookback": lookback,
        "horizon": horizon,
        "season": season,
        "test_windows": int(len(rows[["series", "origin"]].drop_duplicates())),
        "test_targets": len(rows),
        "windows_from": windows_from,
        "seqcast": {
            "mae": seqcast_mae,
            "kind": flow.kind,
            "promoted": flow.promoted,
            "model_mae": flow.model_mae,
            "trials": flow.trials,
            "wall_s": flow.wall_s,
            "version": flow.version,
        },
        "peers": peer_mae,
        "best_peer": best,
        "best_peer_mae": peer_mae[best],
        "at_or_below_best": at_or_below(seqcast_mae, peer_mae[best]),
        "baseline_check": check,
        "aligned": bool(aligned),
    }


def run_dataset(
    dataset: Dataset, work: Path, smoke: bool, overrides: list[str], seeds: tuple[int, ...]
) -> dict[str, Any]:
    """One dataset end to end, once per seed (CSV, nightly flow on a fresh data_root,
    peers), combined into medians (`seeds.combine`)."""
    from benchmarks.real.nightly import run_nightly, write_config

    csv = write_csv(dataset, work, smoke=smoke).resolve()
    per_seed = {}
    for seed in seeds:
        config = run_config(dataset, csv, work.resolve(), smoke)
        path = write_config(config, work / "configs" / f"{dataset.name}.yaml")
        seed_set = [f"model.seed={seed}"] if seed else []  # seed 0 is the config's default
        flow = run_nightly(path, Path(config["data_root"]), [*overrides, *seed_set])
        print(flow.log, flush=True)
        per_seed[seed] = score(dataset, config, csv, flow, seed)
        print(f"  seed {seed}: {report.line(per_seed[seed])}", flush=True)
    result = combine(per_seed)
    result["overrides"] = overrides
    return result


def run_datasets(
    names: list[str],
    work: Path = WORK,
    smoke: bool = False,
    overrides: list[str] | None = None,
    seeds: tuple[int, ...] = SEEDS,
) -> dict[str, Any]:
    """Run ``names`` and write their results (published ones to results.json and the README).

    Results of datasets not run this time are kept. Returns the whole results document.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    overrides = overrides or []
    out = work / "results-smoke.json" if smoke else RESULTS
    results = json.loads(out.read_text()) if out.exists() else {"datasets": {}}
    started = time.perf_counter()
    for name in names:
        print(f"== {name}", flush=True)
        result = run_dataset(DATASETS[name], work, smoke, overrides, seeds)
        results["datasets"][name] = result
        results["seeds"] = list(seeds)
        print(report.line(result), flush=True)
        results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
        results["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"{len(names)} dataset(s) in {time.perf_counter() - started:.0f} s; results in {out}")
    if not smoke:
        report.write_readme(results)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dataset",
        action="append",
        choices=sorted(DATASETS),
        help="run only this dataset (repeatable; default: all)",
    )
    parser.add_argument("--work", type=Path, default=WORK, help="scratch folder (not committed)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="fixed-duration stand-in timestamps; results are not published",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        help="a `seqcast train --set` override (smoke runs only, e.g. "
        "model.epochs=1): published results use no model settings",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=len(SEEDS),
        help=f"run seeds 0..N-1 and publish each entry's median (default {len(SEEDS)})",
    )
    args = parser.parse_args()
    if args.overrides and not args.smoke:
        parser.error("--set changes the model: use it only with --smoke")
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    seeds = tuple(range(args.seeds))
    run_datasets(args.dataset or list(DATASETS), args.work, args.smoke, args.overrides, seeds)


if __name__ == "__main__":
    main()
