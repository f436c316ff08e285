"""Shared fixtures: quiet third-party start-up noise and small synthetic pipelines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

# A throwaway Prefect home: tests never touch the user's runs or the repo's .seqcast/.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="seqcast-test-prefect-")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "seqcast")
# Library code also runs outside flows (unit tests, `seqcast models …`): log locally there.
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
os.environ.setdefault("TQDM_DISABLE", "1")
# The ephemeral API the CLI tests start gives up after 20 s by default; a loaded 2-core CI
# machine can take longer, and no test may depend on a start-up limit.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "600")
# Unit tests call the library outside any flow run; once a flow test has imported Prefect,
# its API log handler would warn (an error here) about every library warning logged then.
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from seqcast.config import PipelineConfig, config_from_dict  # noqa: E402
from seqcast.data.sample import load_series, write_csv_per_series  # noqa: E402
from seqcast.windows.windowing import WindowLayout  # noqa: E402

pytest_plugins = ["tests.object_store"]  # s3_root, memory_root, object_root fixtures
REPO = Path(__file__).resolve().parents[1]


def run_cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path = REPO,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """`seqcast ARGS` in a subprocess, as an operator runs it; ``output`` is stdout and
    stderr together.

    ``env`` is the whole environment (default: this process's). The repository's code is
    put first on ``PYTHONPATH`` whatever it says, so the command runs this checkout, not
    whatever an installed `seqcast` points at, from any ``cwd``.
    """
    environment = dict(os.environ if env is None else env)
    paths = [str(REPO / "src"), str(REPO), environment.get("PYTHONPATH", "")]
    environment["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli.main", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        timeout=timeout,
    )
    result.output = result.stdout + result.stderr  # type: ignore[attr-defined]
    return result


def forecast_layout(lookback: int, horizon: int, inputs: tuple[str, ...] = ("y",)) -> WindowLayout:
    """The layout of a one-target ("y") forecast over ``inputs``, hourly steps."""
    return WindowLayout(
        task="forecast",
        lookback=lookback,
        horizon=horizon,
        stride=1,
        series_column="id",
        timestamp="ts",
        input_columns=list(inputs),
        target_columns=["y"],
        classes=[],
        step_seconds=3600.0,
    )


def tiny_config(data_dir: Path, data_root: Path, **overrides: object) -> PipelineConfig:
    """A forecast pipeline over ``data_dir/*.csv`` small enough to train in seconds."""
    base: dict[str, object] = {
        "name": "tiny",
        "data_root": str(data_root),
        "source": {
            "path": f"{data_dir}/*.csv",
            "timestamp": "ts",
            "series_id": "sensor",
            "target": ["load"],
            "features": ["temperature"],
        },
        "window": {"lookback": 24, "horizon": 6, "stride": 1},
        "split": {"by": "time", "val": 0.15, "test": 0.2},
        "model": {
            "units": [16],
            "epochs": 5,
            "batch_size": 64,
            "learning_rate": 0.01,
            "patience": 2,
            "search": {"enabled": False},
            # No quantile head or interval scoring unless a test is about them (they cost
            # every training and evaluation time; tests/flows/test_pipeline.py,
            # test_champions.py and the CLI tests run the default [0.1, 0.5, 0.9]).
            "quantiles": [],
        },
        # No season unless a test sets one: hourly data would otherwise take 24 from its
        # frequency, and a seasonal ETS beats these tiny networks; nor AR, whose 20-odd lags
        # follow the daily cycle as well (tests of the network path need it to win;
        # tests/flows/test_champions.py covers the statistical ones).
        "evaluate": {"season": 0, "challengers": ["ets"]},
    }
    for key, value in overrides.items():
        section, _, field = key.partition("__")
        if field:
            base[section] = {**base.get(section, {}), field: value}  # type: ignore[dict-item]
        else:
            base[key] = value
    return config_from_dict(base)


def command_config(
    tmp_path: Path, name: str, data_root: Path, **sections: dict[str, object]
) -> Path:
    """``tmp_path/pipeline.yaml`` for the commands that read no data (`seqcast models`,
    `seqcast gc`): a pipeline ``name`` under ``data_root`` whose source matches no file,
    plus ``sections`` (e.g. ``retention={...}``). Returns the file."""
    config = tmp_path / "pipeline.yaml"
    source = {"path": f"{tmp_path}/none/*.csv", "timestamp": "ts", "target": ["y"]}
    config.write_text(
        json.dumps({"name": name, "data_root": str(data_root), "source": source, **sections})
    )
    return config


@pytest.fixture
def tiny_load_csv(tmp_path: Path) -> Path:
    """Three hourly series of 10 days as CSV files; returns their directory."""
    frame: pd.DataFrame = load_series(n_series=3, n_steps=24 * 10, seed=1)
    directory = tmp_path / "source"
    write_csv_per_series(frame, "sensor", directory)
    return directory


def arithmetic_frame(n_series: int, n_steps: int) -> pd.DataFrame:
    """Series s holds value 1000*s + t at step t: every window can be checked by eye."""
    frames = []
    for s in range(n_series):
        t = np.arange(n_steps)
        frames.append(
            pd.DataFrame(
                {
                    "id": f"s{s}",
                    "ts": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(t, unit="h"),
                    "y": (1000.0 * s + t),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def placeholder_version(root: str, tmp_path: Path, tag: str) -> str:
    """A registered version from placeholder files (promotion never loads the model)."""
    from seqcast.serving import registry

    windows = tmp_path / f"windows-{tag}"
    windows.mkdir()
    (windows / "scaler.json").write_text("{}")
    (windows / "layout.json").write_text("{}")
    model = tmp_path / f"model-{tag}.keras"
    model.write_bytes(tag.encode())
    return registry.register_version(root, str(model), str(windows), {"mae": 1.0}, {})


def kill_when_writing(script: str, tmp_path: Path, *argv: str) -> None:
    """Run ``script`` with ``argv`` in a subprocess until it prints WRITING, then SIGKILL it:
    a writer dying mid-write, as a crash or an OOM kill would."""
    import signal
    import textwrap

    path = tmp_path / "writer.py"
    path.write_text(textwrap.dedent(script))
    writer = subprocess.Popen(
        [sys.executable, str(path), *argv],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])},
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "WRITING"
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == -signal.SIGKILL


def kill_writer_midway(script: str, tmp_path: Path, config: PipelineConfig, data: str) -> None:
    """`kill_when_writing` a window writer (``script``'s argv: a config file, ``data``)."""
    config_file = tmp_path / "config.json"
    config_file.write_text(config.model_dump_json())
    kill_when_writing(script, tmp_path, str(config_file), data)
