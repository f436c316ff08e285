"""Validation's partition pass on one raw snapshot: copied shards against ranges of it.

Usage (from the repository root; SNAPSHOT a raw snapshot's data.parquet, e.g. one that
`benchmarks.validate_memory` left under its work folder)::

    PYTHONPATH=$PWD/src:$PWD nice -n 19 .venv/bin/python -m benchmarks.partition_pass \\
        SNAPSHOT --rows-per-shard 500000 --repeats 2

Why: before issue 18's last change, validation always copied every row of a snapshot into
its shard's file (pass 2) before any shard was checked; that serial pass took 3.2 s per
million rows. A snapshot whose series already lie together in name order (a source sorted
by series) now skips it: each shard reads its range of the snapshot. Both ways are timed
here on the same snapshot, alternated, with reading every shard back as the checks do
(the range reads replace the copy, so they are counted on both sides).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
import time

from seqcast.data.validation_shards import plan_shards, read_shard, write_shards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("snapshot")
    parser.add_argument("--series-id", default="sensor")
    parser.add_argument("--rows-per-shard", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"plan": [], "copied": [], "ranges": []}
    for _ in range(args.repeats):
        started = time.perf_counter()
        plan = plan_shards(args.snapshot, args.series_id, args.rows_per_shard)
        results["plan"].append(time.perf_counter() - started)
        if plan.first_rows is None:
            raise SystemExit("this snapshot does not hold its series together: no ranges")
        for side, shard_plan in (
            ("copied", dataclasses.replace(plan, first_rows=None)),
            ("ranges", plan),
        ):
            work = tempfile.mkdtemp(prefix="partition-")
            started = time.perf_counter()
            shards, _ = write_shards(args.snapshot, args.series_id, shard_plan, work)
            rows = sum(len(read_shard(shard)) for shard in shards)
            results[side].append(time.perf_counter() - started)
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"rows": rows, "shards": len(plan.names), "seconds": results}))


if __name__ == "__main__":
    main()
