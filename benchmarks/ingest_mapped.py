"""Wall time of ingesting many source files: serial, mapped on threads, mapped on Dask (issue 18).

Usage (from the repository root)::

    PYTHONPATH=$PWD/src:$PWD nice -n 19 .venv/bin/python -m benchmarks.ingest_mapped \\
        --files 8 --rows 250000 --repeats 3 --work /tmp/ingest-mapped

Generated hourly data (`benchmarks.ingest_memory.block`: columns sensor, ts, load,
temperature, humidity, price) is written once as ``--files`` CSV files of ``--rows`` rows.
Each run ingests all of them into a fresh data root, fingerprint included:

- ``serial``: `snapshot_source` (one file after another, in this process);
- ``threads-1`` / ``threads-2``: the ingest subflow (`flows.sharded.ingest_files`, one task
  per file) on the thread runner with 1 / 2 workers;
- ``dask-2``: the same subflow on a local Dask cluster of 2 worker processes (1 thread
  each) that the run starts and stops, as a run without ``runner.address`` does;
- ``dask-2-running``: the same on such a cluster started once beforehand (untimed), as a
  run with ``runner.address`` finds it.

``phases`` times the three steps of `seqcast.data.snapshot_parts` one after another in this
process (plan: fingerprint and headers; the file tasks; combine): what mapping can spread
over workers is the file tasks only.

The modes run in turn, ``--repeats`` times, in one process under a temporary Prefect API
(its start is not timed). Prints and writes one JSON document (``--out``, default
``benchmarks/results_ingest_mapped.json``) with every wall time, the medians and whether
every run wrote the same snapshot bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv

from benchmarks.common import RUNNERS, running_cluster
from benchmarks.ingest_memory import STEPS, block
from seqcast.config import PipelineConfig, config_from_dict
from seqcast.data.ingest import snapshot_source
from seqcast.data.snapshot_parts import combine_parts, plan_parts, write_part
from seqcast.io.storage import sha256_of
from seqcast.records import SnapshotRef

REPO = Path(__file__).resolve().parents[1]


def write_files(files: int, rows: int, directory: Path) -> Path:
    """``files`` CSV files of ``rows`` rows each (whole series of `STEPS` steps)."""
    if rows % STEPS:
        raise ValueError(f"`rows` must be a multiple of {STEPS}. Received: rows={rows}")
    directory.mkdir(parents=True, exist_ok=True)
    per_file = rows // STEPS
    width = len(str(files * per_file))
    options = pacsv.WriteOptions(quoting_style="none")
    for i in range(files):
        path = directory / f"part-{i:03d}.csv"
        if not path.exists():
            pacsv.write_csv(block(i * per_file, per_file, width, False), path, options)
    return directory


def config(source: Path, root: Path, runner: dict[str, Any]) -> PipelineConfig:
    return config_from_dict(
        {
            "name": "bench",
            "data_root": str(root),
            "source": {
                "path": f"{source}/*.csv",
                "timestamp": "ts",
                "series_id": "sensor",
                "target": ["load"],
            },
            "window": {"lookback": 24, "horizon": 6},
            "runner": runner,
        }
    )


PHASES = ["phase-plan", "phase-files", "phase-combine"]


def phases(spec: PipelineConfig) -> list[tuple[str, float]]:
    """The wall time of each step of `snapshot_parts`, run in turn into a fresh data root."""
    shutil.rmtree(spec.data_root, ignore_errors=True)
    started = time.perf_counter()
    plan = plan_parts(spec.source, spec.pipeline_root)
    planned = time.perf_counter()
    parts = [write_part(spec.source, plan, i) for i in range(len(plan.files))]
    written = time.perf_counter()
    combine_parts(spec.source, plan, parts)
    done = time.perf_counter()
    return list(zip(PHASES, [planned - started, written - planned, done - written], strict=True))


def timed(run: Callable[[], SnapshotRef], root: Path) -> tuple[float, SnapshotRef]:
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    ref = run()
    return time.perf_counter() - started, ref


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--rows", type=int, default=250_000, help="rows per file")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/seqcast-ingest-mapped"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results_ingest_mapped.json")
    args = parser.parse_args()
    from prefect.testing.utilities import prefect_test_harness

    from flows.runners import run_sharded
    from flows.sharded import ingest_files

    source = write_files(args.files, args.rows, args.work / "source")
    size = sum(p.stat().st_size for p in source.glob("*.csv"))
    modes = ["serial", *RUNNERS, "dask-2-running"]
    seconds: dict[str, list[float]] = {mode: [] for mode in [*modes, *PHASES]}
    digests: set[str] = set()
    with prefect_test_harness(server_startup_timeout=120), running_cluster() as address:
        runners = {**RUNNERS, "dask-2-running": {**RUNNERS["dask-2"], "address": address}}
        for repeat in range(args.repeats):
            for phase, wall in phases(config(source, args.work / "roots" / "phases", {})):
                seconds[phase].append(wall)
            for mode in modes:
                root = args.work / "roots" / mode
                spec = config(source, root, runners.get(mode, RUNNERS["threads-1"]))
                if mode == "serial":
                    run = partial(snapshot_source, spec.source, spec.pipeline_root)
                else:
                    run = partial(run_sharded, ingest_files, spec)
                wall, ref = timed(run, root)
                seconds[mode].append(wall)
                digests.add(sha256_of(ref.uri))
                print(f"{mode} #{repeat + 1}: {wall:.2f} s ({ref.rows:,} rows)", flush=True)
    results: dict[str, Any] = {
        "files": args.files,
        "rows_per_file": args.rows,
        "source_mib": size / 2**20,
        "cpus": os.cpu_count(),
        "seconds": seconds,
        "median_seconds": {mode: statistics.median(s) for mode, s in seconds.items()},
        "same_snapshot_bytes": len(digests) == 1,
        "load_average_after": os.getloadavg(),
    }
    serial = results["median_seconds"]["serial"]
    results["speedup_vs_serial"] = {
        mode: serial / results["median_seconds"][mode] for mode in modes
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
