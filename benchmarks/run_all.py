"""`make bench`: run the benchmark figures and write benchmarks/results.json.

Usage: python -m benchmarks.run_all [--epochs N] [--stride S] [--only 1,2,3,4,6,7,8] [--series N]
(figure 4 and 5 come from the same flow runs, so ``4`` selects both; 6 is the sharded
window build + prediction on Dask vs threads; 7 is real data, `benchmarks.real.run`, with
its own results in benchmarks/real/results.json; 8 is classification archive sets,
`benchmarks.classify.run`, results in benchmarks/classify/results.json). A run of some
figures keeps the others' recorded results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_flow import configure_prefect

RESULTS = Path(__file__).parent / "results.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=8, help="figure 5 training epochs")
    parser.add_argument("--stride", type=int, default=2, help="figure 5 window stride")
    parser.add_argument("--only", default="1,2,3,4,6,7,8", help="figures to run")
    parser.add_argument("--work", default=None, help="scratch directory (default: temporary)")
    parser.add_argument("--series", type=int, default=200, help="1x series (smoke runs: fewer)")
    args = parser.parse_args()
    only = set(args.only.split(","))
    work = Path(args.work or tempfile.mkdtemp(prefix="seqcast-bench-"))
    configure_prefect(work / "prefect")

    from benchmarks import bench_flow, bench_input, bench_shards, bench_window
    from benchmarks.common import load_average, make_frame, save, write_csvs, write_validated

    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_before": load_average(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    started = time.perf_counter()
    if only & {"1", "2", "3", "4", "5"}:
        frame = make_frame(n_series=args.series, seed=1)
        validated = write_validated(frame, str(work / "validated-1x.parquet"))
    if "1" in only:
        results["figure_1"] = bench_window.figure_1(frame, validated, work)
        results["layout"] = bench_window.layout_comparison(
            frame, results["figure_1"].pop("store_uri"), work
        )
        print("figure 1:", round(results["figure_1"]["ratio"], 3), flush=True)
    if "2" in only:
        results["figure_2"] = bench_window.figure_2(validated, work, 10 * args.series)
        print("figure 2:", round(results["figure_2"]["ratio"], 3), flush=True)
    if "3" in only:
        results["figure_3"] = bench_input.figure_3(validated, work)
        print("figure 3:", round(results["figure_3"]["ratio"], 3), flush=True)
    if "4" in only or "5" in only:
        csv_dir = write_csvs(frame, work / "csv")
        flows = bench_flow.figures_4_and_5(csv_dir, work, args.epochs, args.stride)
        results["figures_4_5"] = flows
        print("figure 4:", round(flows["figure_4_ratio"], 4), flush=True)
        print("figure 5:", round(flows["figure_5_ratio"], 3), flush=True)
    if "6" in only:
        results["figure_6"] = bench_shards.figure_6(work, n_series=10 * args.series)
        print("figure 6:", round(results["figure_6"]["speedup"], 3), flush=True)
    if "7" in only:
        from benchmarks.real.datasets import DATASETS
        from benchmarks.real.run import run_datasets

        real = run_datasets(list(DATASETS), work / "real")
        results["figure_7"] = {
            name: {
                "seqcast_mae": r["seqcast"]["mae"],
                "seqcast_maes": r["seqcast"].get("maes"),
                "best_peer": r["best_peer"],
                "best_peer_mae": r["best_peer_mae"],
                "at_or_below_best": r["at_or_below_best"],
                "wall_s": r["seqcast"]["wall_s"],
            }
            for name, r in real["datasets"].items()
        }
        wins = sum(r["at_or_below_best"] for r in results["figure_7"].values())
        print(f"figure 7: {wins}/{len(results['figure_7'])} at or below the best peer", flush=True)
    if "8" in only:
        from benchmarks.classify.datasets import SETS
        from benchmarks.classify.run import SEEDS
        from benchmarks.classify.run import run_datasets as run_classify

        classify = run_classify(list(SETS), work / "classify", SEEDS)
        results["figure_8"] = {
            name: {
                "seqcast_accuracy": r["seqcast"]["accuracy"],
                "seqcast_accuracies": r["seqcast"]["accuracies"],
                "best_peer": r["best_peer"],
                "best_peer_accuracy": r["best_peer_accuracy"],
                "at_or_above_best": r["at_or_above_best"],
                "wall_s": r["wall_s"],
            }
            for name, r in classify["datasets"].items()
        }
        wins = sum(r["at_or_above_best"] for r in results["figure_8"].values())
        print(f"figure 8: {wins}/{len(results['figure_8'])} at or above the best peer", flush=True)
    results["total_s"] = time.perf_counter() - started
    results["load_after"] = load_average()
    if RESULTS.exists():  # keep the figures this run did not redo
        results = {**json.loads(RESULTS.read_text()), **results}
    save(results, RESULTS)
    print(f"results in {RESULTS} ({results['total_s']:.0f} s); load {results['load_after']}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
