"""Wall time of the ETS challenger fit: serial, mapped on threads, mapped on Dask.

Usage (from the repository root)::

    PYTHONPATH=$PWD/src:$PWD nice -n 19 .venv/bin/python -m benchmarks.challengers_mapped \\
        --series 200 --steps 1000 --repeats 2 --work /tmp/ets-mapped

Generated hourly data (`benchmarks.common.make_frame`) is windowed once into a store with the
flow's block size (65,536 rows: blocks of 66 series of 1,000 steps). Each run fits ETS to
every series of that store and writes ``challengers.json``:

- ``serial``: `seqcast.modeling.challengers.fit_challengers` and the document written, in
  this process (what the one serial `fit-challengers` task did, without its task run);
- ``threads-1`` / ``threads-2``: the `fit-challengers` subflow
  (`flows.sharded.fit_challenger_groups`: plan, one task per block, merge) on the thread
  runner with 1 / 2 workers;
- ``dask-2``: the subflow on a local Dask cluster of 2 worker processes (1 thread each)
  that the run starts and stops, as a run without ``runner.address`` does;
- ``dask-2-running``: the same on such a cluster started once beforehand (untimed).

``gil`` answers whether ETS fits overlap in threads at all, without Prefect: the first two
blocks fitted one after the other, then in two plain threads at once (wall and this
process's CPU seconds; CPU about equal to wall means one core was busy at a time).

The modes run in turn, ``--repeats`` times, under a temporary Prefect API (its start is not
timed, nor is this process's first import of statsmodels; a Dask worker's first fit
includes its own). Prints and writes one JSON document (``--out``, default
``benchmarks/results_challengers_mapped.json``) with every wall time, the medians and
whether every run wrote the same ``challengers.json`` bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RUNNERS, bench_config, make_frame, running_cluster, write_validated
from seqcast.config import PipelineConfig
from seqcast.io import storage
from seqcast.modeling.challenger_parts import challengers_document
from seqcast.modeling.challengers import effective_season, fit_challenger_blocks, fit_challengers
from seqcast.modeling.statistical import fit_ets
from seqcast.records import WindowsRef
from seqcast.windows import store as window_store
from seqcast.windows.step import build_or_reuse

REPO = Path(__file__).resolve().parents[1]


def window_store_of(series: int, steps: int, work: Path) -> WindowsRef:
    """The store the runs fit (built once; reused while the data and settings are the same)."""
    spec = bench_config(work / "store-root")
    validated = write_validated(make_frame(series, steps), str(work / "validated.parquet"))
    built = build_or_reuse(spec, validated, f"bench-{series}x{steps}", "sensor")
    layout = window_store.read_layout(built.uri)
    return WindowsRef(
        uri=built.uri,
        fingerprint=built.key,
        rows_by_split=built.counts,
        n_inputs=len(layout.input_columns),
        n_outputs=len(layout.target_columns),
    )


def serial(spec: PipelineConfig, windows: WindowsRef, uri: str) -> str:
    layout = window_store.read_layout(windows.uri)
    scaler = window_store.read_scaler(windows.uri)
    season = effective_season(spec.evaluate.season, layout)
    fits = fit_challengers(windows.uri, layout, scaler, season)
    storage.write_json(uri, challengers_document(season, fits))
    return uri


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def gil(windows: WindowsRef, season: int | None) -> dict[str, float]:
    """Two blocks fitted in turn, then in two threads at once: wall and CPU seconds."""
    layout = window_store.read_layout(windows.uri)
    scaler = window_store.read_scaler(windows.uri)

    def fit(block: int) -> None:
        fit_challenger_blocks(windows.uri, layout, scaler, season, [block])

    out: dict[str, float] = {}
    for name, run in (("in_turn", _in_turn), ("two_threads", _two_threads)):
        cpu, started = cpu_seconds(), time.perf_counter()
        run(fit)
        out[f"{name}_wall"] = time.perf_counter() - started
        out[f"{name}_cpu"] = cpu_seconds() - cpu
    return out


def _in_turn(fit: Callable[[int], None]) -> None:
    fit(0)
    fit(1)


def _two_threads(fit: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=fit, args=(b,)) for b in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/seqcast-ets-mapped"))
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks/results_challengers_mapped.json"
    )
    args = parser.parse_args()
    # Read now: a local Dask cluster's nannies set it to 1 in this process too, after
    # numpy's OpenBLAS has read it.
    blas_threads = os.environ.get("OPENBLAS_NUM_THREADS")
    from prefect.testing.utilities import prefect_test_harness

    from flows.runners import run_sharded
    from flows.sharded import fit_challenger_groups

    windows = window_store_of(args.series, args.steps, args.work)
    fit_ets(np.sin(np.arange(200.0)), 24)  # imports statsmodels here, untimed
    manifest = window_store.read_manifest(windows.uri)
    blocks = [int(b["series"]) for b in manifest["blocks"]]
    print(f"store: {len(blocks)} blocks of {blocks} series", flush=True)
    modes = ["serial", *RUNNERS, "dask-2-running"]
    seconds: dict[str, list[float]] = {mode: [] for mode in modes}
    fit_seconds: dict[str, list[float]] = {mode: [] for mode in modes[1:]}
    # This process's CPU seconds over each run: about the wall time where one core was busy
    # at a time (Dask workers are other processes: not counted, a small figure there).
    cpu: dict[str, list[float]] = {mode: [] for mode in modes}
    digests: set[str] = set()
    gil_runs = []
    with prefect_test_harness(server_startup_timeout=120), running_cluster() as address:
        runners = {**RUNNERS, "dask-2-running": {**RUNNERS["dask-2"], "address": address}}
        for repeat in range(args.repeats):
            spec = bench_config(args.work / "root")
            layout = window_store.read_layout(windows.uri)
            gil_runs.append(gil(windows, effective_season(spec.evaluate.season, layout)))
            print(f"gil #{repeat + 1}: {gil_runs[-1]}", flush=True)
            for mode in modes:
                run_id = f"{mode}-{repeat}"
                spec = bench_config(args.work / "root", runner=runners.get(mode, {}))
                started, cpu_started = time.perf_counter(), cpu_seconds()
                if mode == "serial":
                    uri = serial(spec, windows, str(args.work / f"{run_id}.json"))
                else:
                    ref = run_sharded(fit_challenger_groups, spec, windows, run_id)
                    assert ref.uri is not None
                    uri = ref.uri
                    fit_seconds[mode].append(ref.seconds)
                wall = time.perf_counter() - started
                seconds[mode].append(wall)
                cpu[mode].append(cpu_seconds() - cpu_started)
                digests.add(storage.sha256_of(uri))
                print(f"{mode} #{repeat + 1}: {wall:.2f} s", flush=True)
    median = {mode: statistics.median(s) for mode, s in seconds.items()}
    results: dict[str, Any] = {
        "series": args.series,
        "steps": args.steps,
        "series_per_block": blocks,
        "cpus": os.cpu_count(),
        "seconds": seconds,
        "median_seconds": median,
        "speedup_vs_serial": {mode: median["serial"] / median[mode] for mode in modes},
        "fit_seconds_summed_over_tasks": fit_seconds,
        "cpu_seconds_this_process": cpu,
        "openblas_num_threads": blas_threads,
        "gil": gil_runs,
        "same_challengers_bytes": len(digests) == 1,
        "load_average_after": os.getloadavg(),
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
