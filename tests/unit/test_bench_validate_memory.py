"""Issue 18's validate benchmark: its config is one seqcast accepts, and it measures the tree."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from benchmarks.validate_memory import run_tree, write_config
from seqcast.config import load_config
from seqcast.data.contracts import contract_for

# A parent holding ~150 MiB that starts a child holding ~100 MiB; both live about 1 s.
TREE = """
import subprocess, sys, time
held = b"x" * (150 * 2**20)
child = subprocess.Popen([sys.executable, "-c",
    "import time; held = b'x' * (100 * 2**20); time.sleep(1.0)"])
child.wait()
print('{"done": true}')
"""


def test_config_is_valid_for_seqcast(tmp_path: Path) -> None:
    config_path = write_config(tmp_path, tmp_path / "source.csv", "dask", "case")
    config = load_config(config_path)
    assert (config.runner.kind, config.runner.n_workers) == ("dask", 2)
    assert config.model.search.enabled is False
    assert (config.model.epochs, config.model.units) == (1, [4])
    assert config.data_root == str(tmp_path / "roots" / "case")
    contract = contract_for(config)
    assert set(contract.columns) == {"ts", "sensor", "load", "temperature", "humidity", "price"}


def test_peak_counts_the_whole_process_tree(tmp_path: Path) -> None:
    run = run_tree([sys.executable, "-c", TREE], tmp_path, dict(os.environ), 0.05, tmp_path / "t")
    assert run["processes"] == 2
    assert run["stdout"].strip() == '{"done": true}'
    assert run["cli_vmhwm_mib"] >= 150
    assert run["cli_vmhwm_mib"] < 250  # the child's memory is not the parent's
    assert run["tree_peak_rss_mib"] >= 250  # but it is the tree's
    assert run["sum_vmhwm_mib"] >= run["tree_peak_rss_mib"]
