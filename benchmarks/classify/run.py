"""Figure 8: seqcast (no model settings) vs 1-NN ED, 1-NN DTW and the bare Keras script on
classification archive sets with their official train/test splits.

Usage:
    python -m benchmarks.classify.run                        # every set, 3 seqcast seeds
    python -m benchmarks.classify.run --dataset italypower   # one (others' results are kept)
    python -m benchmarks.classify.run --peers-only           # no seqcast runs
    python -m benchmarks.classify.run --seqcast-only --reuse # keep the peers; resume seeds

Per set: the ``.ts`` files from the pinned sktime wheel (`datasets.py`), the peers on the
official split (1-NN from `seqcast.modeling.nearest`, the code of seqcast's own 1-NN
challenger; `bare_keras.py`), then `seqcast train` once per seed on the same split
written as one CSV with a split column (`seqcast_run.py`). The median of the seeds'
test accuracy is compared with the best peer. Results go to ``benchmarks/classify/results.json``
and the "Figure 8" table of ``benchmarks/README.md`` (`report.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.classify import report
from benchmarks.classify.bare_keras import bare_classify
from benchmarks.classify.datasets import SETS, ArchiveSet, as_array, load, write_csv
from benchmarks.classify.seqcast_run import run_seed
from benchmarks.common import load_average
from seqcast.modeling.nearest import BAND, dtw_distances, euclidean_distances, nearest_labels

HERE = Path(__file__).parent
RESULTS = HERE / "results.json"
WORK = Path(".seqcast/bench-classify")
RESAMPLE = 256
"""Length the 1-NN peers resample unequal-length sets to (PLAID: 100-1,344 steps)."""
SEEDS = (0, 1, 2)
PEERS = ("ed_1nn", "dtw_1nn", "bare_lstm", "bare_gru")


def _accuracy(predicted: list[str], actual: list[str]) -> float:
    return float(np.mean(np.asarray(predicted) == np.asarray(actual)))


def run_peers(archive: ArchiveSet, work: Path) -> dict[str, Any]:
    """Every peer's test accuracy on the official split, with its wall time."""
    train, test = load(archive, work)
    lengths = np.concatenate([train.lengths, test.lengths])
    resample_to = None if lengths.min() == lengths.max() else RESAMPLE
    x_train, x_test = as_array(train, resample_to), as_array(test, resample_to)
    peers: dict[str, Any] = {}
    for name, distance in (("ed_1nn", euclidean_distances), ("dtw_1nn", dtw_distances)):
        started = time.perf_counter()
        predicted = nearest_labels(distance(x_test, x_train), train.labels)
        peers[name] = {
            "accuracy": _accuracy(predicted, test.labels),
            "wall_s": time.perf_counter() - started,
        }
        print(f"  {archive.name} {name}: {peers[name]['accuracy']:.4f}", flush=True)
    for cell in ("lstm", "gru"):
        started = time.perf_counter()
        out = bare_classify(train, test, cell)
        peers[f"bare_{cell}"] = {
            "accuracy": _accuracy(out["predicted"], test.labels),  # type: ignore[arg-type]
            "epochs": out["epochs"],
            "masked": out["masked"],
            "wall_s": time.perf_counter() - started,
        }
        print(f"  {archive.name} bare_{cell}: {peers[f'bare_{cell}']['accuracy']:.4f}", flush=True)
    counts = {label: train.labels.count(label) for label in sorted(set(train.labels))}
    return {
        "dataset": archive.name,
        "folder": archive.folder,
        "kind": archive.kind,
        "stands_in_for": archive.stands_in_for,
        "train": len(train.values),
        "test": len(test.values),
        "dims": train.dims,
        "length_min": int(lengths.min()),
        "length_max": int(lengths.max()),
        "classes": len(counts),
        "majority_share": max(sum(label == m for label in test.labels) for m in counts)
        / len(test.labels),
        "peers_resampled_to": resample_to,
        "dtw_band": BAND,
        "peers": peers,
    }


def run_seqcast(
    archive: ArchiveSet, work: Path, dims: int, seeds: tuple[int, ...], reuse: bool = False
) -> dict[str, Any]:
    """`seqcast train` once per seed; the median test accuracy and every seed's run.

    Each seed's run is also kept as ``{work}/runs/{name}-seed{seed}.json``; ``reuse`` takes a
    kept run instead of training again (to resume an interrupted benchmark).
    """
    csv = write_csv(archive, work)
    runs = []
    for seed in seeds:
        kept = work / "runs" / f"{archive.name}-seed{seed}.json"
        if reuse and kept.exists():
            runs.append(json.loads(kept.read_text()))
        else:
            runs.append(run_seed(archive, csv, dims, work, seed))
            kept.parent.mkdir(parents=True, exist_ok=True)
            kept.write_text(json.dumps(runs[-1], indent=2, default=str))
        print(f"  {archive.name} seqcast seed {seed}: {runs[-1]['accuracy']}", flush=True)
    accuracies = [r["accuracy"] for r in runs]
    return {
        "accuracy": statistics.median(accuracies),
        "accuracies": accuracies,
        "balanced_accuracy": statistics.median(r["balanced_accuracy"] or 0.0 for r in runs),
        "macro_f1": statistics.median(r["macro_f1"] or 0.0 for r in runs),
        "wall_s": statistics.median(r["wall_s"] for r in runs),
        "runs": runs,
    }


def verdict(result: dict[str, Any]) -> None:
    """Best peer and whether seqcast's median is at or above it (in place)."""
    best = max(PEERS, key=lambda p: result["peers"][p]["accuracy"])
    result["best_peer"] = best
    result["best_peer_accuracy"] = result["peers"][best]["accuracy"]
    if "seqcast" in result:
        result["at_or_above_best"] = (
            result["seqcast"]["accuracy"] >= result["best_peer_accuracy"] - 1e-9
        )


def run_datasets(
    names: list[str],
    work: Path,
    seeds: tuple[int, ...],
    peers: bool = True,
    seqcast: bool = True,
    reuse: bool = False,
) -> dict[str, Any]:
    """Peers then seqcast on each set; results.json and the README table updated per set.

    ``peers=False`` keeps the peers' recorded results, ``seqcast=False`` seqcast's (either
    may be absent). results.json is read again before each write, so two runs of different
    sets do not undo each other.
    """
    for name in names:
        archive = SETS[name]
        print(f"== {name}", flush=True)
        load_before = load_average()
        recorded = _read_results()["datasets"].get(name, {})
        if peers or "peers" not in recorded:
            result = run_peers(archive, work)
            result["peers_wall_s"] = sum(p["wall_s"] for p in result["peers"].values())
        else:
            result = {k: v for k, v in recorded.items() if k != "seqcast"}
            result.setdefault("peers_wall_s", sum(p["wall_s"] for p in result["peers"].values()))
        if seqcast:
            result["seqcast"] = run_seqcast(archive, work, result["dims"], seeds, reuse)
        elif "seqcast" in recorded:
            result["seqcast"] = recorded["seqcast"]
        verdict(result)
        spent = sum(r["wall_s"] for r in result.get("seqcast", {}).get("runs", []))
        result["wall_s"] = result["peers_wall_s"] + spent
        result["load_before"], result["load_after"] = load_before, load_average()
        results = _read_results()
        results["datasets"][name] = result
        results["datasets"] = {n: results["datasets"][n] for n in SETS if n in results["datasets"]}
        results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
        results["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
        report.write_readme(results)
        print(report.line(result), flush=True)
    return _read_results()


def _read_results() -> dict[str, Any]:
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.setdefault("datasets", {})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", action="append", choices=list(SETS), help="repeatable")
    parser.add_argument("--seeds", type=int, default=len(SEEDS), help="seqcast seeds (0..N-1)")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--peers-only", action="store_true", help="keep seqcast's recorded runs")
    only.add_argument("--seqcast-only", action="store_true", help="keep the peers' results")
    parser.add_argument("--reuse", action="store_true", help="reuse seed runs kept in --work")
    parser.add_argument("--work", default=str(WORK), help="downloads, CSVs and data roots")
    args = parser.parse_args()
    run_datasets(
        args.dataset or list(SETS),
        Path(args.work),
        tuple(range(args.seeds)),
        peers=not args.seqcast_only,
        seqcast=not args.peers_only,
        reuse=args.reuse,
    )


if __name__ == "__main__":
    main()
