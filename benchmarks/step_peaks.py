"""Peak RSS of the process tree within each task run of one `seqcast train`.

The tree (CLI, its temporary Prefect server) is sampled every 0.5 s with psutil; afterwards
each task run's [start, end] is read from the command's own Prefect database, and the
largest sample inside it printed. Used for the nightly-flow row of "Validate memory" in
benchmarks/README.md, to see which step holds the most:

    PYTHONPATH=$PWD/src:$PWD nice -n 19 .venv/bin/python benchmarks/step_peaks.py \
        CONFIG.yaml FRESH_PREFECT_HOME
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime

import psutil


def main(config: str, home: str) -> None:
    env = {**os.environ, "PREFECT_HOME": home, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)  # the command's own temporary server, in ``home``
    command = [sys.executable, "-m", "flows.cli.main", "train", "--config", config]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = psutil.Process(proc.pid)
    samples: list[tuple[float, int]] = []
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            samples.append((time.time(), sum(q.memory_info().rss for q in tree) >> 20))
        except psutil.Error:
            pass
        time.sleep(0.5)
    print("rc", proc.returncode, "peak MiB", max(m for _, m in samples))
    db = sqlite3.connect(os.path.join(home, "prefect.db"))
    runs = db.execute("select name, start_time, end_time from task_run order by start_time")
    for name, start, end in runs.fetchall():
        if not start or not end:
            continue
        a, b = (datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() for t in (start, end))
        inside = [m for t, m in samples if a <= t <= b]
        print(f"{name:40s} {b - a:7.1f} s   peak {max(inside) if inside else '-'} MiB")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
