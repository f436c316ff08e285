"""Screenshots of the Prefect UI after a few deployment runs (docs/prefect-ui-*.png).

    python tests/integration/ui_screenshot.py docs/
    python tests/integration/ui_screenshot.py docs/ --live   # the live-accuracy artifact

Brings up the integration test's stack (SQLite), runs nightly-retrain, batch-predict and
a failing batch-predict, then opens the UI pages in headless Chromium
(`apt-get install chromium`). Not a test: it makes the pictures the docs show.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from stack import Stack
from test_deployments import pipeline_config

from seqcast.data.sample import load_series, write_csv_per_series

CHROMIUM = [
    "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--hide-scrollbars", "--run-all-compositor-stages-before-draw",
    "--virtual-time-budget=30000",
]  # fmt: skip


def shoot(url: str, out: Path, height: int = 900) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                *CHROMIUM,
                f"--window-size=1400,{height}",
                f"--user-data-dir={profile}",
                f"--screenshot={out}",
                url,
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    print(f"{out}: {url}")


def live(out_dir: Path) -> None:
    """Ten nights of live accuracy (`live_nights.py`) on a server, then the chart artifact."""
    import os

    root = Path(tempfile.mkdtemp(prefix="seqcast-ui-live-"))
    stack = Stack(home=root / "prefect", database_url=f"sqlite+aiosqlite:///{root}/prefect.db")
    repo = Path(__file__).resolve().parents[2]
    try:
        stack.start_server()
        env = {**stack.env(), "PYTHONPATH": os.pathsep.join([str(repo / "src"), str(repo)])}
        script = Path(__file__).with_name("live_nights.py")
        subprocess.run([sys.executable, str(script), str(root)], env=env, check=True, cwd=repo)
        with stack.client() as api:
            found = (
                api.post(
                    "/artifacts/latest/filter",
                    json={"artifacts": {"key": {"any_": ["tiny-live-accuracy-chart"]}}},
                )
                .raise_for_status()
                .json()
            )
        base = stack.api_url.removesuffix("/api")
        shoot(
            f"{base}/artifacts/artifact/{found[0]['latest_id']}",
            out_dir / "prefect-ui-live-accuracy.png",
            1250,
        )
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="seqcast-ui-"))
    write_csv_per_series(load_series(n_series=2, n_steps=24 * 7 * 3), "sensor", root / "data")
    stack = Stack(home=root / "prefect", database_url=f"sqlite+aiosqlite:///{root}/prefect.db")
    try:
        stack.start_server()
        stack.cli("work-pool", "create", "seqcast", "--type", "process")
        stack.cli("concurrency-limit", "create", "seqcast-train", "1")
        stack.cli("deploy", "--prefect-file", "deploy/prefect.yaml", "--all")
        stack.start_worker("seqcast")
        config = pipeline_config(root, "nightly")
        train = stack.wait_for(stack.run_deployment("training/nightly-retrain", {"config": config}))
        predict = stack.wait_for(
            stack.run_deployment("batch-predict/batch-predict", {"config": config})
        )
        untrained = {"config": pipeline_config(root, "untrained")}
        stack.wait_for(stack.run_deployment("batch-predict/batch-predict", untrained))
        base = stack.api_url.removesuffix("/api")
        shoot(f"{base}/runs", out_dir / "prefect-ui-runs.png", height=1080)
        shoot(f"{base}/runs/flow-run/{train['id']}", out_dir / "prefect-ui-training-run.png")
        artifacts = stack.artifacts(train["id"])
        metrics = artifacts["nightly-metrics"]["id"]
        shoot(f"{base}/artifacts/artifact/{metrics}", out_dir / "prefect-ui-metrics.png", 600)
        report = artifacts["nightly-report"]["id"]
        shoot(f"{base}/artifacts/artifact/{report}", out_dir / "prefect-ui-report.png", 1500)
        predictions = stack.artifacts(predict["id"])["nightly-predictions"]["id"]
        shoot(
            f"{base}/artifacts/artifact/{predictions}", out_dir / "prefect-ui-predictions.png", 1500
        )
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs")
    live(target) if "--live" in sys.argv else main(target)
