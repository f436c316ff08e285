"""Peak RSS and wall time of `seqcast validate` and `seqcast train`, 1x and 10x rows (issue 18).

Usage (from the repository root)::

    PYTHONPATH=$PWD/src:$PWD nice -n 19 .venv/bin/python -m benchmarks.validate_memory \\
        --rows 1000000 --before <git rev> --work /tmp/validate-bench

Why: issue 18 asks that validation (and so the nightly flow) stop growing with the data: at
most 1.2x the 1x peak RSS at 10x rows, and that it use the configured runner. So each case
runs the real CLI command, not a library call, in a fresh process tree, and measures what
an operator would see: the peak RSS of the whole tree (the CLI, its temporary Prefect
server, Dask workers) and the wall time.

Data: `benchmarks.ingest_memory`'s generator (series x 1,000 hourly steps; columns sensor,
ts, load, temperature, humidity, price), one CSV file per size, 1x = ``--rows``. The
config is a forecast of load from the other three columns, lookback 24 -> horizon 6, with a
contract covering all six columns, ``runner.kind`` thread or dask with 2 workers; train
cases use the cheapest model the config allows (1 epoch, GRU of 4 units, search off, no
quantiles, no backtest).

Memory: the tree is polled with psutil every ``--poll`` seconds; ``tree_peak_rss_mib`` is
the largest sum of the sampled RSS of all live processes of the tree (a spike shorter than
the interval can be missed), ``sum_vmhwm_mib`` the sum of every process's own peak
(Linux VmHWM, read at each poll: an upper bound, the peaks need not coincide) and
``cli_vmhwm_mib`` the CLI process's own peak. (`/usr/bin/time -v` is not used: its
"maximum resident set size" is the largest single process of the tree, not the tree.)
Time: the command's wall time, plus each flow and task run's duration read from the
Prefect database of the case's own fresh ``PREFECT_HOME`` (so ingest and validate are
timed apart). ``--before REV`` runs the same cases on REV's ``src/``, ``tasks/`` and
``flows/`` (exported with ``git archive``), recorded as "before"; this checkout is "after".
Results are merged into ``--out`` (default ``benchmarks/results_validate.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import yaml

from benchmarks.ingest_memory import STEPS, write_sources

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CASES = "validate:thread:1,validate:thread:10,validate:dask:1,train:thread:1"
CONTRACT = {
    "name": "bench-validate",
    "columns": {
        "ts": {"type": "timestamp"},
        "sensor": {"type": "string"},
        "load": {"type": "float", "min": 0, "max": 10000},
        "temperature": {"type": "float", "min": -60, "max": 60},
        "humidity": {"type": "float", "min": 0, "max": 100},
        "price": {"type": "float", "min": -1000, "max": 1000},
    },
    "key": ["sensor", "ts"],
    "min_rows": 30,
    "frequency": "1h",
    "max_gap": "6h",
    "quarantine_limit": 0.05,
}


def write_config(work: Path, source: Path, runner: str, case: str) -> Path:
    """A forecast config over ``source`` with a fresh data root for ``case``."""
    contract = work / "contract.yaml"
    contract.write_text(yaml.safe_dump(CONTRACT, sort_keys=False))
    config = {
        "name": "bench-validate",
        "data_root": str(work / "roots" / case),
        "contract": str(contract),
        "source": {
            "path": str(source),
            "timestamp": "ts",
            "series_id": "sensor",
            "target": ["load"],
            "features": ["temperature", "humidity", "price"],
        },
        "task": "forecast",
        "window": {"lookback": 24, "horizon": 6, "stride": 1, "normalize": "series"},
        "split": {"by": "time", "val": 0.1, "test": 0.2},
        "model": {
            "cell": "gru",
            "units": [4],
            "epochs": 1,
            "patience": 0,
            "batch_size": 1024,
            "quantiles": [],
            "search": {"enabled": False},
        },
        "evaluate": {"season": 24, "backtest_folds": 0},
        "runner": {"kind": runner, "n_workers": 2},
    }
    path = work / "configs" / f"{case}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()


def short_rev(rev: str) -> str:
    """``rev`` as a short commit id: exports are named by it, so a moved branch misses."""
    return git("rev-parse", "--short", f"{rev}^{{commit}}") or sys.exit(f"unknown git rev: {rev}")


def export_tree(commit: str, work: Path) -> Path:
    """``commit``'s ``src/``, ``tasks/`` and ``flows/`` under ``work`` (the CLI as it was)."""
    target = work / f"tree-{commit}"
    if not target.exists():
        archive = work / f"tree-{commit}.tar"
        subprocess.run(
            ["git", "archive", "--output", str(archive), commit, "src", "tasks", "flows"],
            cwd=REPO,
            check=True,
        )
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
        archive.unlink()
    return target


def vmhwm_mib(pid: int) -> float:
    """A live process's own peak RSS (Linux VmHWM), in MiB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def run_tree(
    argv: list[str], cwd: Path, env: dict[str, str], poll: float, log: Path
) -> dict[str, Any]:
    """Run ``argv`` (stdout and stderr to ``log``.out/.err, never a pipe that could fill) and
    poll its process tree's memory until it exits."""
    out, err = log.with_suffix(".out"), log.with_suffix(".err")
    started = time.perf_counter()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=stdout, stderr=stderr)
    root = psutil.Process(child.pid)
    root_key = (root.pid, root.create_time())
    tree_peak = 0.0
    samples: list[tuple[float, float]] = []  # (epoch seconds, tree RSS MiB)
    hwm: dict[tuple[int, float], tuple[str, float]] = {}  # (pid, started) -> (command, MiB)
    while child.poll() is None:
        total = 0.0
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        for proc in procs:
            try:
                rss = proc.memory_info().rss / 2**20
                key = (proc.pid, proc.create_time())
                name = " ".join(proc.cmdline()[1:4])[:80]
            except psutil.Error:
                continue
            total += rss
            peak = max(vmhwm_mib(proc.pid), rss)  # rss: it may have exited since
            hwm[key] = (name, max(peak, hwm.get(key, ("", 0.0))[1]))
        tree_peak = max(tree_peak, total)
        samples.append((time.time(), total))
        time.sleep(poll)
    seconds = time.perf_counter() - started
    if child.wait() != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({child.returncode}); see {err}")
    return {
        "wall_seconds": seconds,
        "tree_peak_rss_mib": tree_peak,
        "sum_vmhwm_mib": sum(peak for _, peak in hwm.values()),
        "cli_vmhwm_mib": hwm.get(root_key, ("", 0.0))[1],
        "processes": len(hwm),
        "largest_processes": [
            {"cmd": n, "vmhwm_mib": round(p, 1)}
            for n, p in sorted(hwm.values(), key=lambda item: -item[1])[:4]
        ],
        "stdout": out.read_text(errors="replace"),
        "samples": samples,
    }


FLOW_RUNS = "SELECT 'flow/' || flow.name, start_time, end_time FROM flow_run JOIN flow \
ON flow_run.flow_id = flow.id WHERE end_time IS NOT NULL"
TASK_RUNS = "SELECT 'task/' || task_key, start_time, end_time FROM task_run \
WHERE end_time IS NOT NULL"


def run_durations(db: Path) -> dict[str, float]:
    """Seconds of each flow and task (summed over its runs) in a Prefect database."""
    durations: dict[str, float] = {}
    with sqlite3.connect(db) as con:
        for name, start, end in [*con.execute(FLOW_RUNS), *con.execute(TASK_RUNS)]:
            name = name if name.startswith("flow/") else name.rsplit("-", 1)[0]  # task key hash
            span = datetime.fromisoformat(end) - datetime.fromisoformat(start)
            durations[name] = durations.get(name, 0.0) + span.total_seconds()
    return durations


def task_peaks(db: Path, samples: list[tuple[float, float]]) -> dict[str, float]:
    """The tree's largest sampled RSS (MiB) while each task ran (its runs together): which
    step holds the most."""
    peaks: dict[str, float] = {}
    with sqlite3.connect(db) as con:
        for name, start, end in con.execute(TASK_RUNS):
            name = name.removeprefix("task/").rsplit("-", 1)[0]
            a, b = (datetime.fromisoformat(t).timestamp() for t in (start, end))
            inside = [mib for when, mib in samples if a <= when <= b]
            if inside:
                peaks[name] = round(max(peaks.get(name, 0.0), *inside), 1)
    return peaks


def run_case(
    case: str,
    side: str,
    tree: Path,
    work: Path,
    rows: int,
    poll: float,
    steps: int = STEPS,
    scale_by: str = "series",
) -> dict[str, Any]:
    """One ``command:runner:scale`` case in a fresh process tree, fresh data root and home.

    ``scale_by``: "series" multiplies the series (of ``steps`` rows each), "steps" the rows of
    each series (the same series, ``steps`` x scale rows long).
    """
    command, runner, scale = case.split(":")
    length = steps * int(scale) if scale_by == "steps" else steps
    suffix = "" if length == STEPS else f"-steps-{length}"
    data = work / f"rows-{rows * int(scale)}{suffix}"
    source = write_sources(rows * int(scale), data, length)["csv"]
    label = f"{side}-{case.replace(':', '-')}" + ("" if scale_by == "series" else "-by-steps")
    for folder in (work / "roots" / label, work / "prefect" / label):
        shutil.rmtree(folder, ignore_errors=True)
    (work / "logs").mkdir(parents=True, exist_ok=True)
    config = write_config(work, source, runner, label)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tree / "src"), str(tree)]),
        "PREFECT_HOME": str(work / "prefect" / label),
    }
    env.pop("PREFECT_API_URL", None)  # the command's own temporary server, in the tree
    argv = [sys.executable, "-m", "flows.cli.main", command, "--config", str(config), "--json"]
    run = run_tree(argv, tree, env, poll, work / "logs" / label)
    stdout = run.pop("stdout")
    samples = run.pop("samples")
    document = json.loads(stdout[stdout.rindex("\n{") + 1 :] if "\n{" in stdout else stdout)
    run["rows"] = rows * int(scale)
    run["steps_per_series"] = length
    run["durations"] = run_durations(work / "prefect" / label / "prefect.db")
    run["task_peak_rss_mib"] = task_peaks(work / "prefect" / label / "prefect.db", samples)
    run["rows_per_s_wall"] = run["rows"] / run["wall_seconds"]
    flow = "flow/validate" if command == "validate" else "flow/training"
    if flow in run["durations"]:
        run["rows_per_s_flow"] = run["rows"] / run["durations"][flow]
    keys = ("outcome", "rows", "series", "quarantined", "winner", "champion")
    run["outcome"] = {k: document[k] for k in keys if k in document}
    run["load_average_after"] = list(os.getloadavg())
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="the 1x size")
    parser.add_argument("--cases", default=DEFAULT_CASES, help="command:runner:scale, ...")
    parser.add_argument("--before", default=None, help="git rev of the 'before' code")
    parser.add_argument("--sides", default="before,after", help="with --before: which to run")
    parser.add_argument("--work", type=Path, default=Path("/tmp/seqcast-validate-bench"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results_validate.json")
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between samples")
    parser.add_argument("--steps", type=int, default=STEPS, help="rows per series at 1x")
    parser.add_argument(
        "--scale-by",
        choices=("series", "steps"),
        default="series",
        help="what 10x multiplies: the series, or each series' length (the same series, "
        "so the ETS fits, which cost per series, stay the same)",
    )
    args = parser.parse_args()
    if args.rows <= 0 or args.rows % args.steps:
        parser.error(
            f"--rows must be a positive multiple of --steps ({args.steps}). "
            f"Received: --rows={args.rows}"
        )
    sides = {"after": REPO}
    if args.before:
        wanted = args.sides.split(",")
        before = export_tree(short_rev(args.before), args.work)
        sides = {s: t for s, t in (("before", before), ("after", REPO)) if s in wanted}
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    for side, tree in sides.items():
        commit = short_rev(args.before if side == "before" else "HEAD")
        dirty = side == "after" and bool(git("status", "--porcelain", "src", "tasks", "flows"))
        results.setdefault(side, {})["commit"] = commit + ("+uncommitted" if dirty else "")
        results[side]["rows_1x"] = args.rows
        for case in args.cases.split(","):
            run = run_case(
                case, side, tree, args.work, args.rows, args.poll, args.steps, args.scale_by
            )
            key = case if args.scale_by == "series" else f"{case}:by-steps-{args.steps}"
            results[side][key] = run
            print(f"{side} {case}: {json.dumps(run)}", flush=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
