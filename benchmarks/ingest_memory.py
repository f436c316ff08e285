"""Peak memory of the ingest step at 1x and 10x rows, before and after streaming (issue 18).

Usage (from the repository root)::

    PYTHONPATH=$PWD/src:$PWD nice -n 19 .venv/bin/python -m benchmarks.ingest_memory \\
        --rows 1000000 --before 740fb45 --work /tmp/ingest-bench

Generated hourly data (series x 1,000 hourly steps; columns sensor, ts, load, temperature,
humidity, price) is written once per size as one CSV file and one Parquet file (row groups of
1,048,576 rows, pandas' and pyarrow's default). Each ingest (`snapshot_source` of one file
into a fresh data root, fingerprint included) runs in a fresh process, which reports its own
peak RSS (Linux VmHWM, `benchmarks.common.peak_rss_mib`). "before" runs the library of the
``--before`` commit (its ``src/``, exported with ``git archive``); "after" this checkout's.
Prints and writes one JSON document (``--out``, default ``benchmarks/results_ingest.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from seqcast.io.storage import sha256_of

REPO = Path(__file__).resolve().parents[1]
STEPS = 1000
SERIES_PER_BLOCK = 1000  # rows per block: SERIES_PER_BLOCK * STEPS = 1,000,000

CHILD = """
import json, sys, time
from benchmarks.common import peak_rss_mib
from seqcast.config import SourceSpec
from seqcast.data.ingest import snapshot_source

after_imports = peak_rss_mib()
started = time.perf_counter()
source = SourceSpec(path=sys.argv[1], series_id="sensor", timestamp="ts", target=["load"])
ref = snapshot_source(source, sys.argv[2], with_test=False)
print(json.dumps({"seconds": time.perf_counter() - started, "rows": ref.rows,
                  "rss_after_imports_mib": after_imports, "peak_rss_mib": peak_rss_mib()}))
"""


def block(
    first_series: int, n_series: int, width: int, typed: bool, steps: int = STEPS
) -> pa.Table:
    """``n_series`` x ``steps`` hourly rows, sorted by (sensor, ts); values to 3 decimals.

    ``typed``: ``ts`` as a UTC timestamp (for Parquet), else as ISO 8601 text (for CSV).
    """
    rng = np.random.default_rng(first_series)
    hours = np.arange(steps)
    stamps = np.datetime64("2024-01-01T00:00:00") + hours.astype("timedelta64[h]")
    iso = np.char.add(np.datetime_as_string(stamps, unit="s"), "+00:00")
    daily = np.sin(2 * np.pi * (hours % 24) / 24)[None, :]
    level = rng.uniform(50.0, 500.0, (n_series, 1))
    names = [f"sensor-{i:0{width}d}" for i in range(first_series, first_series + n_series)]
    shape = (n_series, steps)
    utc = pa.array(np.tile(stamps, n_series)).cast(pa.timestamp("s", tz="UTC"))
    return pa.table(
        {
            "sensor": np.repeat(names, steps),
            "ts": utc if typed else np.tile(iso, n_series),
            "load": (level * (1 + 0.3 * daily) + rng.normal(0, 5, shape)).reshape(-1).round(3),
            "temperature": (10 + 4 * daily + rng.normal(0, 1, shape)).reshape(-1).round(3),
            "humidity": (60 + rng.normal(0, 3, shape)).reshape(-1).round(3),
            "price": (30 + 5 * daily + rng.normal(0, 1, shape)).reshape(-1).round(3),
        }
    )


def write_sources(rows: int, directory: Path, steps: int = STEPS) -> dict[str, Path]:
    """One CSV and one Parquet file of ``rows`` rows: series of ``steps`` hourly rows each
    (``rows`` a multiple of ``steps``), written about 1,000,000 rows at a time."""
    csv, parquet = directory / "source.csv", directory / "source.parquet"
    if csv.exists() and parquet.exists():
        return {"csv": csv, "parquet": parquet}
    directory.mkdir(parents=True, exist_ok=True)
    n_series = rows // steps
    per_block = max(1, SERIES_PER_BLOCK * STEPS // steps)
    width = len(str(n_series))
    options = pacsv.WriteOptions(quoting_style="none")
    with (
        pacsv.CSVWriter(csv, block(0, 1, width, False).schema, write_options=options) as to_csv,
        pq.ParquetWriter(parquet, block(0, 1, width, True).schema, compression="zstd") as to_pq,
    ):
        for first in range(0, n_series, per_block):
            count = min(per_block, n_series - first)
            to_csv.write_table(block(first, count, width, False, steps))
            to_pq.write_table(block(first, count, width, True, steps), row_group_size=1 << 20)
    return {"csv": csv, "parquet": parquet}


def export_src(commit: str, work: Path) -> Path:
    """``commit``'s ``src/`` under ``work`` (its library as it was)."""
    target = work / f"src-{commit}"
    if not target.exists():
        archive = work / f"src-{commit}.tar"
        subprocess.run(
            ["git", "archive", "--output", str(archive), commit, "src"], cwd=REPO, check=True
        )
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
        archive.unlink()
    return target / "src"


def ingest(source: Path, root: Path, src: Path) -> dict[str, Any]:
    """One ingest in a fresh process running the library under ``src``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(REPO)])}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(source), str(root)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ingest of {source} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def snapshot_digest(root: Path) -> str:
    """sha256 of the raw snapshot's data file under the data root ``root``."""
    (data,) = root.glob("raw/*/data.parquet")
    return sha256_of(str(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="the 1x size")
    parser.add_argument("--before", default="740fb45", help="commit of the 'before' library")
    parser.add_argument("--work", type=Path, default=Path("/tmp/seqcast-ingest-bench"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results_ingest.json")
    parser.add_argument("--sides", default="before,after")
    args = parser.parse_args()
    if args.rows % 1_000_000:
        parser.error(f"--rows must be a multiple of 1,000,000. Received: --rows={args.rows}")
    sides = {"after": REPO / "src"}
    if "before" in args.sides.split(","):
        sides = {"before": export_src(args.before, args.work), **sides}
    results: dict[str, Any] = {"before_commit": args.before, "rows_1x": args.rows}
    started = time.time()
    for scale in (1, 10):
        sources = write_sources(args.rows * scale, args.work / f"{scale}x")
        for kind, path in sources.items():
            for side, src in sides.items():
                root = args.work / "roots" / f"{side}-{kind}-{scale}x"
                subprocess.run(["rm", "-rf", str(root)], check=True)
                run = ingest(path, root, src)
                run["source_mib"] = path.stat().st_size / 2**20
                run["rows_per_s"] = run["rows"] / run["seconds"]
                results[f"{side}/{kind}/{scale}x"] = run
                print(f"{side} {kind} {scale}x: {json.dumps(run)}", flush=True)
            if len(sides) == 2:  # the same snapshot, byte for byte?
                roots = [args.work / "roots" / f"{side}-{kind}-{scale}x" for side in sides]
                same = len({snapshot_digest(root) for root in roots}) == 1
                results[f"same_snapshot_bytes/{kind}/{scale}x"] = same
    for side in sides:
        for kind in ("csv", "parquet"):
            ratio = (
                results[f"{side}/{kind}/10x"]["peak_rss_mib"]
                / results[f"{side}/{kind}/1x"]["peak_rss_mib"]
            )
            results[f"{side}/{kind}/ratio_10x_to_1x"] = ratio
    results["seconds"] = time.time() - started
    results["load_average_after"] = os.getloadavg()
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
