"""Run the window step alone in a fresh process and report its peak memory (figure 2).

Usage: python -m benchmarks.window_peak VALIDATED_URI DATA_ROOT
Prints one JSON line: seconds, windows, peak RSS after imports and at the end (MiB).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from benchmarks.common import bench_config, peak_rss_mib
from seqcast.windows.step import build_or_reuse


def main(validated_uri: str, data_root: str) -> None:
    config = bench_config(Path(data_root))
    after_imports = peak_rss_mib()
    started = time.perf_counter()
    built = build_or_reuse(config, validated_uri, f"bench-{validated_uri}", "sensor")
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": seconds,
                "windows": sum(built.counts.values()),
                "rss_after_imports_mib": after_imports,
                "peak_rss_mib": peak_rss_mib(),
                "reused": built.reused,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
