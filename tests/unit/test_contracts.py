"""Contracts as data: their rules, files, drafts, the prediction contract and the GX suite."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from seqcast.config import config_from_dict, load_config
from seqcast.data.contracts import (
    Contract,
    contract_for,
    derive_prediction_contract,
    draft_contract,
    duration_seconds,
    load_contract,
    save_contract,
)
from seqcast.data.gx_suite import build_suite
from seqcast.data.ingest import read_sample, read_source_file, resolve_source_files
from seqcast.data.sample import write_samples
from seqcast.data.validation import validate_table
from seqcast.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def sample_config(tmp_path: Path, **update: object):
    """configs/sample-load.yaml over freshly written sample data in ``tmp_path``."""
    write_samples(tmp_path / "sample")
    config = load_config(ROOT / "configs/sample-load.yaml")
    data = config.model_dump()
    data["source"]["path"] = str(tmp_path / "sample/load/*.csv")
    data["data_root"] = str(tmp_path / "data")
    data["contract"] = str(ROOT / "schemas/sample-load.yaml")
    data.update(update)
    return config_from_dict(data)


MINIMAL = {"name": "c", "columns": {"ts": {"type": "timestamp"}, "v": {"type": "float"}}}


@pytest.mark.parametrize(
    ("update", "named"),
    [
        ({"severity": {"order": "quarantine"}}, "severity.order"),
        ({"severity": {"rnage": "warn"}}, "severity.rnage: unknown key"),
        ({"frequency": "hourly"}, "must be a duration such as 1h"),
        ({"max_gap": "-1h"}, "must be positive"),
        ({"key": ["series"]}, "key columns ['series'] are not declared"),
        ({"quarantine_limit": 1.5}, "quarantine_limit"),
        ({"columns": {"ts": {"type": "timestamp", "min": 0}}}, "min/max apply to float"),
    ],
)
def test_invalid_contract_names_the_key(tmp_path: Path, update: dict, named: str) -> None:
    path = write_yaml(tmp_path / "c.yaml", {**MINIMAL, **update})
    with pytest.raises(ConfigError, match="is invalid") as info:
        load_contract(path)
    assert named in str(info.value)


def test_contract_round_trips_through_yaml_and_json(tmp_path: Path) -> None:
    contract = Contract.model_validate(
        {**MINIMAL, "frequency": "15min", "severity": {"gaps": "fail"}, "quarantine_limit": 0.01}
    )
    for name in ("c.yaml", "c.json"):
        path = save_contract(contract, tmp_path / name, header="drafted")
        assert load_contract(path) == contract
    assert json.loads((tmp_path / "c.json").read_text())["severity"] == {"gaps": "fail"}
    assert (tmp_path / "c.yaml").read_text().startswith("# drafted\n")


def test_durations_accept_the_usual_spellings() -> None:
    assert [duration_seconds(t) for t in ("1h", "15min", "2d", "1 day", "90s")] == [
        3600,
        900,
        172800,
        86400,
        90,
    ]


def test_column_severity_overrides_but_never_lets_unusable_values_through() -> None:
    contract = Contract.model_validate(
        {**MINIMAL, "columns": {"v": {"type": "float", "min": 0, "severity": "warn"}}}
    )
    assert contract.severity_of("range", "v") == "warn"
    assert contract.severity_of("not_null", "v") == "quarantine"  # the contract's default
    assert contract.severity_of("unique_key") == "fail"


def test_contract_for_raises_min_rows_to_the_window(tmp_path: Path) -> None:
    config = sample_config(tmp_path, window={"lookback": 100, "horizon": 10})
    assert load_contract(config.contract).min_rows == 72
    assert contract_for(config).min_rows == 110
    assert contract_for(config, predicting=True).min_rows == 100


def test_contract_for_rejects_nullable_model_inputs(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "schemas/sample-load.yaml").read_text())
    data["columns"]["temperature"]["nullable"] = True
    path = write_yaml(tmp_path / "c.yaml", data)
    config = sample_config(tmp_path, contract=str(path))
    with pytest.raises(ConfigError, match=r"\['temperature'\] feed the model and cannot be null"):
        contract_for(config)


def test_contract_for_rejects_a_contract_missing_config_columns(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", MINIMAL | {"columns": {"ts": {"type": "timestamp"}}})
    config = sample_config(tmp_path, contract=str(path))
    with pytest.raises(
        ConfigError, match=r"does not declare .*\['load', 'sensor', 'temperature'\]"
    ):
        contract_for(config)


def test_sample_contract_passes_on_the_sample_data(tmp_path: Path) -> None:
    config = sample_config(tmp_path)
    files = resolve_source_files(config.source.path)
    raw = pd.concat([read_source_file(f) for f in files], ignore_index=True)
    report = validate_table(raw, contract_for(config), config.source, files, str(tmp_path / "docs"))
    assert report.outcome == "pass", [r for r in report.results if not r.success]
    assert len(report.clean) == len(raw) == 4 * 24 * 7 * 8
    assert report.docs_url.startswith(f"file://{tmp_path}/docs/validations/sample-load/")
    assert Path(report.docs_url.removeprefix("file://")).is_file()


def test_draft_contract_infers_types_ranges_and_frequency(tmp_path: Path) -> None:
    config = sample_config(tmp_path)
    raw, files = read_sample(config.source, max_rows=2000)
    assert len(raw) == 2000 and len(files) == 2
    draft = draft_contract(raw, config, margin=0.1)
    assert {c: r.type for c, r in draft.columns.items()} == {
        "ts": "timestamp",
        "sensor": "string",
        "load": "float",
        "temperature": "float",
    }
    load = pd.to_numeric(raw["load"])
    span = load.max() - load.min()
    assert draft.columns["load"].min <= load.min() - 0.1 * span + 1
    assert draft.columns["load"].max >= load.max() + 0.1 * span
    assert draft.columns["load"].min >= 0  # a non-negative column stays non-negative
    assert (draft.frequency, draft.max_gap, draft.min_rows) == ("1h", "2h", 72)
    assert draft.key == ["sensor", "ts"]
    report = validate_table(raw, draft, config.source, files)
    assert report.outcome == "pass"  # a draft accepts the data it was drafted from


def test_draft_contract_lists_classify_labels(tmp_path: Path) -> None:
    write_samples(tmp_path / "sample")
    config = load_config(
        ROOT / "configs/sample-activity.yaml", [f"source.path={tmp_path}/sample/activity/*.csv"]
    )
    raw, _ = read_sample(config.source, 3000)
    draft = draft_contract(raw, config)
    assert draft.columns["activity"].type == "label"
    assert draft.columns["activity"].categories == ["idle", "run", "walk"]
    assert draft.frequency == "10s"


def test_prediction_contract_from_training_data(tmp_path: Path) -> None:
    config = sample_config(tmp_path)
    files = resolve_source_files(config.source.path)
    raw = pd.concat([read_source_file(f) for f in files], ignore_index=True)
    clean = validate_table(raw, contract_for(config), config.source, files).clean
    contract = derive_prediction_contract(clean, config, contract_for(config, predicting=True))
    temperature = contract.columns["temperature"]
    observed = clean["temperature"]
    assert -60 <= temperature.min < observed.min() and observed.max() < temperature.max <= 60
    assert contract.columns["sensor"].categories == [f"sensor-{i}" for i in range(1, 5)]
    assert contract.severity_of("categories", "sensor") == "fail"
    assert contract.severity.range == "warn" and contract.quarantine_limit == 0.0
    assert (contract.min_rows, contract.frequency) == (48, "1h")
    # stored as JSON in the model's manifest, read back the same
    assert Contract.model_validate(json.loads(contract.model_dump_json())) == contract
    assert validate_table(raw, contract, config.source, files).outcome == "pass"


def test_gx_suite_carries_rules_and_severities() -> None:
    contract = load_contract(ROOT / "schemas/sample-load.yaml")
    frame = pd.DataFrame(columns=["ts", "sensor", "load", "temperature"])
    suite = build_suite(contract, frame)
    found = {
        (e.meta["rule"], getattr(e, "column", None)): e.severity.value for e in suite.expectations
    }
    assert found[("row_count", None)] == "critical"
    assert found[("range", "load")] == "warning"  # quarantine
    assert found[("unique_key", None)] == "critical"
    assert ("finite", "temperature") in found and ("not_null", "ts") in found
