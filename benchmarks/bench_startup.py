"""Start-up: `seqcast train` against a bare Keras script doing the same fit (issue 14 #5).

Both sides fit an LSTM(64), batch 32, a fixed number of epochs (no early stopping, no model
search) on statsmodels' yearly sunspots (309 rows, lookback 22, horizon 5) and forecast its
test windows. Each side is a fresh process, timed wall-clock from outside: interpreter,
imports, Prefect and everything `seqcast train` does besides the fit (snapshot, contract
checks, windows, ETS challengers, evaluation report, registry), as a user sees it.

Two ways of running seqcast:
  * server: a `seqcast server start` server is running (found through its state file);
  * cold: none is, so the command starts its own temporary Prefect server.
Each seqcast run gets a fresh data root (no snapshot, window or checkpoint reuse). One
untimed run of each kind warms the page cache and creates the Prefect databases first;
then the three are interleaved ``--runs`` times, and the medians are reported.

    python -m benchmarks.bench_startup --runs 3 --epochs 20
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.real.datasets import DATASETS, write_csv

ROOT = Path(__file__).resolve().parents[1]
SEQCAST = Path(sys.executable).parent / "seqcast"


def config_file(work: Path, csv: Path, epochs: int) -> Path:
    """The sunspots benchmark config with a fixed model: the bare script's."""
    config = yaml.safe_load((ROOT / "benchmarks/real/configs/sunspots.yaml").read_text())
    config["source"]["path"] = str(csv)
    config["window"]["normalize"] = "series"  # one fit, as the bare script (auto: two)
    config["model"] = {
        "cell": "lstm",
        "units": [64],
        "epochs": epochs,
        "batch_size": 32,
        "patience": epochs,  # never stops early: the same epochs as the bare script
        "search": {"enabled": False},
    }
    path = work / "sunspots.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def timed(command: list[str], env: dict[str, str], log: Path) -> float:
    """Wall seconds of ``command``; its output goes to ``log``; a failure stops the run."""
    started = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}); see {log}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--work", type=Path, default=ROOT / ".seqcast/bench-startup")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results_startup.json")
    parser.add_argument(
        "--kinds",
        default="bare,server,cold",
        help="Sides to time; bare,cold also runs on a checkout without `seqcast server`.",
    )
    args = parser.parse_args()
    work = args.work.resolve()
    base = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    base["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    envs = {
        "server": {**base, "PREFECT_HOME": str(work / "prefect-server")},
        "cold": {**base, "PREFECT_HOME": str(work / "prefect-cold")},
    }
    stop = [str(SEQCAST), "server", "stop"]
    if "server" in args.kinds:
        subprocess.run(stop, env=envs["server"], cwd=ROOT, check=False)  # a previous run's
    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    csv = write_csv(DATASETS["sunspots"], work)
    config = config_file(work, csv, args.epochs)
    counter = iter(range(1000))

    def run(kind: str) -> float:
        n = next(counter)
        log = work / "logs" / f"{n:02d}-{kind}.log"
        if kind == "bare":
            command = [sys.executable, "-m", "benchmarks.startup_bare", str(csv), str(args.epochs)]
            return timed(command, base, log)
        root = f"data_root={work / 'roots' / str(n)}"
        command = [str(SEQCAST), "train", "--config", str(config), "--set", root]
        return timed(command, envs[kind], log)

    times: dict[str, list[float]] = {kind: [] for kind in args.kinds.split(",")}
    if "server" in times:
        server = [str(SEQCAST), "server", "start", "--port", "4291"]
        subprocess.run(server, env=envs["server"], cwd=ROOT, check=True)
    loads: list[float] = []
    try:
        for kind in times:  # warm-up, untimed
            run(kind)
        for _ in range(args.runs):
            for kind in times:
                loads.append(os.getloadavg()[0])
                times[kind].append(run(kind))
                print(f"{kind:>6}: {times[kind][-1]:.1f} s (load {loads[-1]:.2f})", flush=True)
    finally:
        if "server" in times:
            subprocess.run(stop, env=envs["server"], cwd=ROOT, check=False)
    medians = {kind: statistics.median(values) for kind, values in times.items()}
    result: dict[str, Any] = {
        "dataset": "statsmodels sunspots (309 yearly rows)",
        "epochs": args.epochs,
        "runs": args.runs,
        "seconds": times,
        "median_s": medians,
        **{f"ratio_{kind}": medians[kind] / medians["bare"] for kind in medians if kind != "bare"},
        "load_1min": {"min": min(loads), "max": max(loads)},
        "cpus": os.cpu_count(),
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k.startswith(("median", "ratio"))}))


if __name__ == "__main__":
    main()
