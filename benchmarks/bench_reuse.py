"""What checking a window build's sha256 costs on a cache hit (issue 13 #4, docs/faults.md).

Builds the figure 4 data's windows once (1x: 200 series x 2,000 steps; and 10x), then times
the cache lookup with sizes only (the check before the fix) and with every file's sha256
(now), the median of five lookups each, against the build itself.

Usage: python -m benchmarks.bench_reuse [--series 200,2000] [--out PATH]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_window import directory_bytes
from benchmarks.common import bench_config, load_average, make_frame, save, timed, write_validated
from seqcast.windows import publish
from seqcast.windows.step import build_or_reuse


def _median_seconds(call: Any, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(n_series: int, work: Path) -> dict[str, Any]:
    """Build once, then time lookups with and without checksums."""
    validated = write_validated(make_frame(n_series), str(work / f"validated-{n_series}.parquet"))
    config = bench_config(work / f"root-{n_series}")
    with timed() as build_time:
        built = build_or_reuse(config, validated, f"fp-{n_series}", "sensor")
    with timed() as hit_time:
        hit = build_or_reuse(config, validated, f"fp-{n_series}", "sensor")
    assert hit.reused
    sizes_only = _median_seconds(lambda: publish.verify(built.uri, checksums=False))
    checksums = _median_seconds(lambda: publish.verify(built.uri))
    size = directory_bytes(Path(built.uri))
    return {
        "series": n_series,
        "windows": sum(built.counts.values()),
        "build_bytes": size,
        "build_s": build_time["seconds"],
        "cache_hit_s": hit_time["seconds"],
        "verify_sizes_only_s": sizes_only,
        "verify_sha256_s": checksums,
        "sha256_mb_per_s": size / 1e6 / max(checksums - sizes_only, 1e-9),
        "cache_hit_ratio": hit_time["seconds"] / build_time["seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", default="200,2000")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    results: dict[str, Any] = {"load_before": load_average(), "runs": []}
    with tempfile.TemporaryDirectory(prefix="seqcast-reuse-") as work:
        for n in (int(s) for s in args.series.split(",")):
            row = measure(n, Path(work))
            results["runs"].append(row)
            print(
                f"{n} series: build {row['build_bytes'] / 1e6:.1f} MB in {row['build_s']:.3f} s; "
                f"cache hit {row['cache_hit_s'] * 1000:.1f} ms "
                f"({row['cache_hit_ratio']:.3f}x the build); verify sizes only "
                f"{row['verify_sizes_only_s'] * 1000:.1f} ms, with sha256 "
                f"{row['verify_sha256_s'] * 1000:.1f} ms",
                flush=True,
            )
    results["load_after"] = load_average()
    if args.out:
        save(results, Path(args.out))


if __name__ == "__main__":
    main()
