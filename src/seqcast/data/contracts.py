"""Data contracts: what a source table must look like, as data in ``schemas/``.

A contract lists the columns (type, nullability, range or categories), the key that must
be unique, the time grid (frequency, largest gap), the minimum rows per series, how fresh
the newest row must be, and for every rule its severity: ``fail`` stops the run,
``quarantine`` sets the failing rows aside and goes on, ``warn`` only reports. A pipeline
names its contract file; without one, the contract is derived from the config's column
roles. `seqcast.data.validation` checks a table against it with Great Expectations.

Three more ways to get a contract: `draft_contract` infers one from a data sample for a
person to review (``seqcast contract init``), and `derive_prediction_contract` derives the
contract a model's prediction inputs must meet from the data it was trained on.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from seqcast.config import PipelineConfig, format_validation_error
from seqcast.data.parsing import null_text, parse_numbers, parse_timestamps
from seqcast.errors import ConfigError
from seqcast.frequency import NS_PER_SECOND, Frequency, infer_frequency, parse_frequency

if TYPE_CHECKING:
    from seqcast.data.training_facts import TrainingFacts

ColumnType = Literal["float", "int", "string", "label", "timestamp"]
Severity = Literal["fail", "quarantine", "warn"]
PREDICTION_CONTRACT = "prediction_contract"
"""Key of a model version's prediction contract in its registry manifest."""
ROW = "_row"
"""Column with each row's position in the raw frame, so GX reports rows we can map back
(here, not in `gx_suite`, so that validation imports GX only when it runs the suite)."""
ROW_RULES = ("type", "timestamp", "not_null", "finite", "range", "categories")
"""Rules judged row by row; a column's ``severity`` overrides the contract's for these."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ColumnRule(_Frozen):
    """The rules one column must meet."""

    type: ColumnType
    required: bool = Field(default=True, description="A missing column fails the run.")
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = Field(
        default=None, description="string/label: the allowed values (none = any)."
    )
    format: str | None = Field(
        default=None, description="timestamp: strftime format; none = ISO 8601 only."
    )
    severity: Severity | None = Field(
        default=None,
        description="Overrides the contract's severity of this column's row rules "
        "(type, timestamp, not_null, finite, range, categories); `warn` applies to range and "
        "categories only, since an unparsed, null or infinite value cannot go on.",
    )

    @model_validator(mode="after")
    def _fits_type(self) -> ColumnRule:
        numeric = self.type in ("float", "int")
        if not numeric and (self.min is not None or self.max is not None):
            raise ValueError(f"min/max apply to float and int columns, not {self.type}")
        if self.categories is not None and self.type not in ("string", "label"):
            raise ValueError(f"categories apply to string and label columns, not {self.type}")
        if self.format is not None and self.type != "timestamp":
            raise ValueError("format applies to timestamp columns only")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min must not exceed max. Received: min={self.min}, max={self.max}")
        return self


class Severities(_Frozen):
    """The outcome of each rule when it fails. Some rules cannot set rows aside, so their
    choices are narrower (a missing column cannot be quarantined)."""

    row_count: Literal["fail"] = "fail"
    empty_file: Literal["warn", "fail"] = "warn"
    required_columns: Literal["fail"] = "fail"
    extra_columns: Literal["warn", "fail"] = "warn"
    timezone: Literal["fail"] = "fail"
    type: Literal["fail", "quarantine"] = "quarantine"
    timestamp: Literal["fail", "quarantine"] = "quarantine"
    not_null: Literal["fail", "quarantine"] = "quarantine"
    finite: Literal["fail", "quarantine"] = "quarantine"
    range: Severity = "quarantine"
    categories: Severity = "quarantine"
    unique_key: Literal["fail", "quarantine"] = "fail"
    order: Literal["warn", "fail"] = "warn"
    frequency: Literal["warn", "fail"] = "fail"
    gaps: Literal["warn", "fail"] = "warn"
    series_length: Severity = "quarantine"
    recent_gap: Literal["fail", "quarantine"] = "quarantine"
    """Prediction: a gap inside the rows a forecast starts from (its series is set aside)."""
    future_rows: Literal["fail"] = "fail"
    """Prediction: a series lacks one of its forecast steps' known-future rows."""
    freshness: Literal["warn", "fail"] = "warn"
    quarantine_share: Literal["fail"] = "fail"


def duration_seconds(text: str) -> float:
    """Seconds in a duration such as ``1h``, ``15min``, ``2d`` or ``1 day``."""
    # pandas deprecates the lower-case day unit; contracts may still write "2d".
    return float(pd.Timedelta(re.sub(r"(\d)\s*d\b", r"\1D", text.strip())).total_seconds())


def contract_step(frequency: str) -> Frequency:
    """The step a contract's ``frequency`` names: a duration (`duration_seconds`, which
    also takes ``2d``) or an alias as `seqcast.frequency.parse_frequency` reads it
    (``MS``, ``QE``, ``W-SUN``, ``B``), so validation and the window step agree.

    Raises:
        ValueError: ``frequency`` is neither; the message names the alias to use.
    """
    try:
        seconds = duration_seconds(frequency)
    except (ValueError, TypeError):
        pass
    else:
        if seconds > 0:
            return Frequency(frequency, int(round(seconds * NS_PER_SECOND)))
    try:
        return parse_frequency(frequency)
    except ValueError as exc:
        raise ValueError(
            f"`frequency` must be a duration such as 1h, 15min or 2d, or a calendar step "
            f"(MS, ME, QS, QE, YS, YE, W-SUN, B): {exc}"
        ) from None


def _duration(value: str | None, key: str) -> str | None:
    if value is None:
        return None
    try:
        seconds = duration_seconds(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"`{key}` must be a duration such as 1h, 15min or 2d. Received: {value!r}"
        ) from exc
    if not seconds > 0:
        raise ValueError(f"`{key}` must be positive. Received: {value!r}")
    return value


class Contract(_Frozen):
    """A table's contract: columns, unique key, time grid, size, freshness, severities."""

    name: str
    columns: dict[str, ColumnRule] = Field(min_length=1)
    key: list[str] = Field(default_factory=list, description="Columns that are unique together.")
    min_rows: int = Field(
        default=1, ge=1, description="Rows each series needs (at least lookback + horizon)."
    )
    frequency: str | None = Field(
        default=None,
        description="Expected step: a duration (1h, 15min) or a calendar step (MS, ME, QS, "
        "QE, YS, YE, W-SUN, B), read as source.frequency is.",
    )
    max_gap: str | None = Field(default=None, description="Largest allowed step, e.g. 6h.")
    freshness: str | None = Field(
        default=None, description="How old the newest timestamp of a series may be, e.g. 2d."
    )
    severity: Severities = Field(default_factory=Severities)
    quarantine_limit: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="Largest share of rows that may be quarantined before the run fails.",
    )
    series_quarantine_limit: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="Prediction: largest share of series that may be set aside (their rows "
        "read for the forecast break a rule) before the run fails.",
    )

    @field_validator("max_gap", "freshness")
    @classmethod
    def _durations(cls, value: str | None, info: Any) -> str | None:
        return _duration(value, info.field_name)

    @field_validator("frequency")
    @classmethod
    def _frequency(cls, value: str | None) -> str | None:
        if value is not None:
            contract_step(value)
        return value

    @model_validator(mode="after")
    def _key_declared(self) -> Contract:
        unknown = [k for k in self.key if k not in self.columns]
        if unknown:
            raise ValueError(f"key columns {unknown} are not declared under `columns`")
        return self

    def severity_of(self, rule: str, column: str | None = None) -> Severity:
        """The severity of ``rule``; a column's own ``severity`` wins for row rules."""
        if column is not None and rule in ROW_RULES:
            own = self.columns[column].severity if column in self.columns else None
            # A value that cannot be used (unparsed, null, infinite) never goes on: `warn`
            # applies to the range and categories only.
            if own is not None and (own != "warn" or rule in ("range", "categories")):
                return own
        return getattr(self.severity, rule)


def derive_contract(config: PipelineConfig, predicting: bool = False) -> Contract:
    """The contract implied by the config's column roles.

    Every named column must exist; timestamps must parse; targets and features must be
    numeric (a classify label may be any value) and not null; (series, timestamp) is unique;
    each series has at least a window's worth of rows. For prediction a classify label is
    optional, and one lookback of rows is enough.
    """
    source = config.source
    value_type: ColumnType = "label" if config.task == "classify" else "float"
    columns = {source.timestamp: ColumnRule(type="timestamp")}
    if source.series_id:
        columns[source.series_id] = ColumnRule(type="string")
    if predicting and config.task == "classify":
        # the label is not a model input: prediction data may carry it or not
        columns[source.target[0]] = ColumnRule(type="label", required=False, nullable=True)
    elif config.per_sequence:
        # one label per sequence: constant, or given on some of its rows only
        columns[source.target[0]] = ColumnRule(type="label", nullable=True)
    else:
        columns.update({t: ColumnRule(type=value_type) for t in source.target})
    columns.update(
        {f: ColumnRule(type="float") for f in [*source.features, *source.covariate_columns]}
    )
    if config.split.column is not None:
        # train/val/test per series, checked by the window step (naming the series)
        columns[config.split.column] = ColumnRule(type="string", required=not predicting)
    key = [c for c in (source.series_id, source.timestamp) if c]
    return Contract(
        name=f"{config.name}-derived",
        columns=columns,
        key=key,
        min_rows=rows_needed(config, predicting),
        # the grid the window step will place rows on: validate checks it first
        frequency=source.frequency,
    )


def rows_needed(config: PipelineConfig, predicting: bool = False) -> int:
    """Rows one series needs: a whole window to train, one lookback to predict; a whole
    sequence (window.per=sequence) is padded, so one row is enough."""
    if config.per_sequence:
        return 1
    return config.window.lookback + (0 if predicting else max(config.window.horizon, 1))


def load_contract(path: str | Path) -> Contract:
    """Read a contract YAML or JSON file, with errors that name the bad key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"contract file not found: {path} (paths are relative to the cwd)")
    try:
        return contract_from_dict(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))
    except yaml.YAMLError as exc:
        raise ConfigError(f"contract {path} is not valid YAML: {exc}") from exc


def contract_from_dict(data: Any, origin: str = "contract") -> Contract:
    """Validate a contract mapping (from a file or a model's manifest)."""
    try:
        return Contract.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"contract {origin} is invalid:\n{format_validation_error(exc)}") from exc


def save_contract(contract: Contract, path: str | Path, header: str = "") -> Path:
    """Write ``contract`` as YAML (or JSON for a ``.json`` path), leaving out defaults."""
    path = Path(path)
    data = contract.model_dump(mode="json", exclude_defaults=True)
    data["columns"] = {
        name: rule.model_dump(mode="json", exclude_defaults=True)
        for name, rule in contract.columns.items()
    }
    if path.suffix == ".json":
        text = json.dumps(data, indent=2) + "\n"
    else:
        comment = "".join(f"# {line}\n" for line in header.splitlines())
        text = comment + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def contract_for(config: PipelineConfig, predicting: bool = False) -> Contract:
    """The pipeline's contract: the named file, checked against the config's columns.

    The minimum rows per series is raised to what the window needs, so a contract written
    for a shorter window cannot let a series through that yields no window.
    """
    derived = derive_contract(config, predicting)
    if config.contract is None:
        return derived
    contract = load_contract(config.contract)
    if predicting and config.task == "classify":
        label = config.source.target[0]
        columns = dict(contract.columns)
        if label in columns:
            columns[label] = columns[label].model_copy(update={"required": False, "nullable": True})
        contract = contract.model_copy(update={"columns": columns})
    missing = sorted(set(derived.columns) - set(contract.columns))
    if missing:
        raise ConfigError(
            f"contract {config.contract} does not declare the columns the config uses: {missing}"
        )
    model_inputs = [c for c in config.source.value_columns if c in derived.columns]
    nullable = [c for c in model_inputs if contract.columns[c].nullable]
    if nullable:
        raise ConfigError(
            f"contract {config.contract}: columns {nullable} feed the model and cannot be "
            "nullable (a null would reach training as NaN); set `nullable: false`"
        )
    return contract.model_copy(update={"min_rows": max(contract.min_rows, derived.min_rows)})


def _round_out(value: float, up: bool) -> float:
    """Round away from the data to 3 significant digits (a readable bound that still holds)."""
    if value == 0 or not math.isfinite(value):
        return float(value)
    scale = 10 ** (math.floor(math.log10(abs(value))) - 2)
    return float((math.ceil if up else math.floor)(value / scale) * scale)


def widened_range(values: pd.Series, margin: float) -> tuple[float | None, float | None]:
    """Observed (min, max) widened by ``margin`` of their span; a min >= 0 stays >= 0."""
    finite = values[np.isfinite(values)]
    if finite.empty:
        return None, None
    low, high = float(finite.min()), float(finite.max())
    pad = margin * ((high - low) or abs(high) or 1.0)
    widened_low = low - pad if low < 0 else max(0.0, low - pad)
    return _round_out(widened_low, up=False), _round_out(high + pad, up=True)


def duration_text(seconds: float) -> str:
    """``3600`` -> ``1h``: the short form contracts use."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def step_seconds(stamps: pd.Series, series: pd.Series) -> tuple[float | None, float | None]:
    """The most common and the largest step between consecutive timestamps of a series."""
    frame = pd.DataFrame({"s": series.to_numpy(), "t": stamps.to_numpy()}).dropna()
    frame = frame.sort_values(["s", "t"], kind="stable")
    steps = frame.groupby("s", sort=False)["t"].diff().dt.total_seconds().dropna()
    steps = steps[steps > 0]
    if steps.empty:
        return None, None
    return float(steps.mode().iloc[0]), float(steps.max())


def usual_frequency(stamps: pd.Series, series: pd.Series, timezone: str) -> str | None:
    """The most common step as a contract writes it, calendar-aware: ``1h``, or ``MS`` for
    month starts (`seqcast.frequency.infer_frequency`, as the window step infers it)."""
    usual, _ = step_seconds(stamps, series)
    if not usual:
        return None
    frame = pd.DataFrame({"s": series.to_numpy(), "t": pd.to_datetime(stamps, utc=True)})
    frame = frame.dropna().sort_values(["s", "t"], kind="stable")
    ns = pd.DatetimeIndex(frame["t"]).as_unit("ns").asi8
    codes = pd.factorize(frame["s"])[0]
    sample = [
        ns[codes == code] for code in range(min(int(codes.max()) + 1, FREQUENCY_SAMPLE_SERIES))
    ]
    return frequency_text(usual, sample, timezone)


FREQUENCY_SAMPLE_SERIES = 50
"""Series (the first by name) whose timestamps tell a calendar step from a fixed one."""


def frequency_text(usual: float, sample: list[np.ndarray], timezone: str) -> str:
    """The usual step (seconds) as a contract writes it: a calendar alias when ``sample``'s
    series (int64 ns timestamps each) lie on one, else a duration (``1h``)."""
    found = infer_frequency(int(round(usual * NS_PER_SECOND)), sample, timezone)
    return found.alias if found is not None and found.calendar else duration_text(usual)


def draft_contract(raw: pd.DataFrame, config: PipelineConfig, margin: float = 0.1) -> Contract:
    """A contract inferred from a sample of the source, for a person to review.

    Column roles come from the config; other columns are typed by what their values parse
    as. Numeric ranges are the observed ones widened by ``margin`` of their span, a classify
    label's categories are the labels seen, the frequency is the most common step and the
    largest gap allowed is twice the largest step seen (at least two steps).
    """
    source = config.source
    columns: dict[str, ColumnRule] = {}
    role_types: dict[str, ColumnType] = {source.timestamp: "timestamp"}
    if source.series_id:
        role_types[source.series_id] = "string"
    for column in source.value_columns:
        role_types[column] = "float"
    if config.task == "classify":
        role_types[source.target[0]] = "label"
    stamps = parse_timestamps(raw[source.timestamp], source.timezone).values
    for column in [c for c in raw.columns if not c.startswith("_source_")]:
        kind = role_types.get(column) or _infer_type(raw[column], source.timezone)
        used = column in role_types
        nullable = bool(null_text(raw[column]).any()) and not used
        rule: dict[str, Any] = {"type": kind, "nullable": nullable}
        if not used:
            rule["required"] = False
        if kind == "float":
            rule["min"], rule["max"] = widened_range(parse_numbers(raw[column]).values, margin)
        if kind == "label":
            rule["categories"] = sorted(raw[column].dropna().astype(str).unique().tolist())
        columns[column] = ColumnRule(**rule)
    series = raw[source.series_id] if source.series_id else pd.Series("series", index=raw.index)
    usual, largest = step_seconds(stamps, series)
    frequency = usual_frequency(stamps, series, source.timezone)
    return Contract(
        name=config.name,
        columns=columns,
        key=[c for c in (source.series_id, source.timestamp) if c],
        min_rows=rows_needed(config),
        frequency=frequency,
        max_gap=duration_text(max(2 * largest, 2 * usual)) if usual and largest else None,
    )


def _infer_type(raw: pd.Series, timezone: str) -> ColumnType:
    present = raw[~null_text(raw)]
    if present.empty:
        return "string"
    if not parse_numbers(present).invalid.any():
        return "float"
    if not parse_timestamps(present, timezone).invalid.any():
        return "timestamp"
    return "string"


def derive_prediction_contract(
    frame: pd.DataFrame | TrainingFacts,
    config: PipelineConfig,
    base: Contract,
    classes: list[str] | None = None,
    margin: float = 0.1,
) -> Contract:
    """The contract a model's prediction inputs must meet, from the data it was trained on.

    Stored with the model version, it lets the prediction flow reject a skewed or
    incomplete input before loading the model. Numeric columns get the training range
    widened by ``margin`` of its span (within the base contract's bounds); with per-series
    scaling the series must be ones seen in training (the model has no statistics for
    others); a classify label, if present, must be a class the model knows (warning only:
    the label is not a model input). A value outside the range only warns (drift is
    expected; a column's own ``severity: fail`` in the base contract still refuses it).
    Row rules fail rather than quarantine rows: dropping an input row would put a gap into
    the window a forecast starts from. The prediction check applies them per series
    (`seqcast.data.prediction_scope`): a series whose rows read break one is set aside for
    the run and the others are predicted, up to the base's ``series_quarantine_limit``.

    Args:
        frame: the validated training table (typed, as the window step reads it), or its
            facts (`seqcast.data.training_facts.read_training_facts`, which streams it).
        config: the pipeline config the model was trained with.
        base: the pipeline's prediction contract (`contract_for(config, predicting=True)`).
        classes: the model's classes (classify).
        margin: share of the observed span added on each side of a numeric range.
    """
    from seqcast.data.training_facts import TrainingFacts  # it reads this module's helpers

    facts = (
        frame if isinstance(frame, TrainingFacts) else TrainingFacts.of_frame(frame, config, base)
    )
    source = config.source
    columns = dict(base.columns)
    for column in source.value_columns:
        rule = columns.get(column)
        if rule is None or rule.type not in ("float", "int") or column not in facts.columns:
            continue
        observed = facts.ranges.get(column)
        low, high = widened_range(pd.Series(observed or [], dtype=np.float64), margin)
        if low is not None and rule.min is not None:
            low = max(low, rule.min)
        if high is not None and rule.max is not None:
            high = min(high, rule.max)
        columns[column] = rule.model_copy(update={"min": low, "max": high})
    if source.series_id and config.normalize == "series":
        columns[source.series_id] = columns[source.series_id].model_copy(
            update={"categories": facts.series, "severity": "fail"}
        )
    if config.task == "classify" and classes:
        label = source.target[0]
        columns[label] = ColumnRule(
            type="label", required=False, nullable=True, categories=list(classes), severity="warn"
        )
    frequency = base.frequency if base.frequency is not None else facts.frequency
    # Drift is expected: a value outside the training range is a warning (a sequence
    # classifier flags the sequence in its output), not a reason to refuse the series,
    # let alone every other series of the batch.
    severity = base.severity.model_copy(
        update={
            "type": "fail",
            "timestamp": "fail",
            "not_null": "fail",
            "finite": "fail",
            "range": "warn",
            "categories": "fail",
            "unique_key": "fail",
            "series_length": "fail",
        }
    )
    return base.model_copy(
        update={
            "name": f"{config.name}-prediction",
            "columns": columns,
            "min_rows": rows_needed(config, predicting=True),
            "frequency": frequency,
            "severity": severity,
            "quarantine_limit": 0.0,
        }
    )
