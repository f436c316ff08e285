"""The sharded validate step as flows run it (issue 18): a validation killed midway
leaves the published table as it was and its leftovers go on the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from prefect.settings import PREFECT_API_URL

from flows.validation import validate_source
from seqcast.data.contracts import contract_for, save_contract
from seqcast.errors import DataContractError
from tasks.validate import WORK
from tests.conftest import tiny_config

pytestmark = pytest.mark.flow
REPO = Path(__file__).resolve().parents[2]

# Runs the validation flow with a shard check that kills its own process (SIGKILL: no
# clean-up code runs) when it reaches the shard of sensor-3, after sensor-1's and
# sensor-2's shards have written their parts.
KILLED_RUN = """
import os, signal, sys
import seqcast.data.shard_check as steps
from flows.validation import validate_source
from seqcast.data.contracts import contract_for, save_contract
from seqcast.errors import DataContractError
from seqcast.config import PipelineConfig

checked = steps.validate_shard
def check_or_die(raw, *args, **kwargs):
    if (raw["sensor"] == "sensor-3").any():
        os.kill(os.getpid(), signal.SIGKILL)
    return checked(raw, *args, **kwargs)
steps.validate_shard = check_or_die
validate_source(PipelineConfig.model_validate_json(open(sys.argv[1]).read()))
"""


def test_a_killed_validation_leaves_the_old_table_and_is_cleaned_up_next_run(
    tiny_load_csv: Path, tmp_path: Path
) -> None:
    # 240 rows per series, one series per shard, one shard task at a time
    runner = {"validation_rows": 240, "n_workers": 1}
    config = tiny_config(tiny_load_csv, tmp_path / "root", runner=runner)
    first = validate_source(config)
    published = Path(first.uri).read_bytes()
    validated = Path(config.pipeline_root) / "validated"
    work = Path(config.pipeline_root) / WORK
    assert not list(work.iterdir()), "a finished validation removes its work folder"

    # New data (a new fingerprint), then a run killed at its third shard.
    csv = tiny_load_csv / "sensor-1.csv"
    lines = csv.read_text().splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0] + ",99.5"
    csv.write_text("\n".join(lines) + "\n")
    path = tmp_path / "config.json"
    path.write_text(config.model_dump_json())
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(path)], cwd=REPO, env=env, timeout=600
    )
    assert killed.returncode == -signal.SIGKILL
    (leftover,) = work.iterdir()
    assert sorted(p.name for p in leftover.glob("clean-*")) == [
        "clean-00000.parquet",
        "clean-00001.parquet",
    ]
    assert Path(first.uri).read_bytes() == published  # the published table is untouched
    assert [p.parent.name for p in validated.glob("*/data.parquet")] == [
        Path(first.uri).parent.name
    ]

    # The next run removes the dead writer's folder and publishes the new table.
    second = validate_source(config)
    assert not list(work.iterdir())
    assert second.uri != first.uri and Path(first.uri).read_bytes() == published
    table = pd.read_parquet(second.uri)
    assert table["sensor"].tolist() == sorted(table["sensor"]) and second.series == 3
    assert table.loc[table["sensor"] == "sensor-1", "temperature"].iloc[4] == 99.5


def test_a_key_without_the_series_id_is_checked_in_one_shard(
    tiny_load_csv: Path, tmp_path: Path
) -> None:
    # The three series share their timestamps: under a key of `ts` alone every row after
    # the first series' repeats a key, which one shard per series would never see.
    config = tiny_config(tiny_load_csv, tmp_path / "root", runner={"validation_rows": 240})
    contract = contract_for(config).model_copy(update={"key": ["ts"]})
    path = save_contract(contract, tmp_path / "contract.yaml")
    keyed = config.model_copy(update={"contract": str(path)})
    with pytest.raises(
        DataContractError, match=r"unique_key on column 'ts' \(fail\): 480 row\(s\)"
    ):
        validate_source(keyed)
