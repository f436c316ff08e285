"""Data contracts: what a source table must look like, as data in ``schemas/``.

A contract lists the columns (type, nullability, range), the key that must be unique and
the minimum row count. A pipeline names its contract file; without one, the contract is
derived from the config's column roles. `seqcast.validation` turns it into a Great
Expectations suite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from seqcast.config import PipelineConfig, format_validation_error
from seqcast.errors import ConfigError

ColumnType = Literal["float", "int", "string", "label", "timestamp"]


class ColumnRule(BaseModel):
    """The rules one column must meet."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: ColumnType
    nullable: bool = False
    min: float | None = None
    max: float | None = None


class Contract(BaseModel):
    """A table's contract: columns, unique key and minimum size."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    columns: dict[str, ColumnRule] = Field(min_length=1)
    key: list[str] = Field(default_factory=list, description="Columns that are unique together.")
    min_rows: int = Field(default=1, ge=1)


def derive_contract(config: PipelineConfig, predicting: bool = False) -> Contract:
    """The contract implied by the config's column roles.

    Every named column must exist; timestamps must parse; targets and features must be
    numeric (a classify label may be any value) and not null; (series, timestamp) is unique;
    there are at least a window's worth of rows. For prediction a classify label is not
    needed, and one lookback of rows is enough.
    """
    source = config.source
    value_type: ColumnType = "label" if config.task == "classify" else "float"
    columns = {source.timestamp: ColumnRule(type="timestamp")}
    if source.series_id:
        columns[source.series_id] = ColumnRule(type="string")
    if not (predicting and config.task == "classify"):
        columns.update({t: ColumnRule(type=value_type) for t in source.target})
    columns.update(
        {f: ColumnRule(type="float") for f in [*source.features, *source.covariate_columns]}
    )
    key = [c for c in (source.series_id, source.timestamp) if c]
    steps_needed = config.window.lookback + (0 if predicting else max(config.window.horizon, 1))
    return Contract(name=f"{config.name}-derived", columns=columns, key=key, min_rows=steps_needed)


def load_contract(path: str | Path) -> Contract:
    """Read a contract YAML file, with errors that name the bad key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"contract file not found: {path} (paths are relative to the cwd)")
    try:
        return Contract.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as exc:
        raise ConfigError(f"contract {path} is not valid YAML: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(f"contract {path} is invalid:\n{format_validation_error(exc)}") from exc


def contract_for(config: PipelineConfig, predicting: bool = False) -> Contract:
    """The pipeline's contract: the named file, checked against the config's columns."""
    derived = derive_contract(config, predicting)
    if config.contract is None:
        return derived
    contract = load_contract(config.contract)
    if predicting and config.task == "classify":
        label = config.source.target[0]
        columns = {k: v for k, v in contract.columns.items() if k != label}
        contract = contract.model_copy(update={"columns": columns})
    needed = set(derived.columns)
    missing = sorted(needed - set(contract.columns))
    if missing:
        raise ConfigError(
            f"contract {config.contract} does not declare the columns the config uses: {missing}"
        )
    return contract
