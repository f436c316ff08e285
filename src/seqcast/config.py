"""The pipeline config: one frozen pydantic model per stage, composed into `PipelineConfig`.

The same models are the Prefect flows' parameters, so the UI renders them as a form and a
mistyped key fails before any work starts (``extra="forbid"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from seqcast.config_paths import DEFAULT_DATA_ROOT, anchor_paths
from seqcast.errors import ConfigError
from seqcast.frequency import parse_frequency


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


READ_TIMEOUT_SECONDS = 60.0
"""Default of ``source.read_timeout_seconds``."""
NOT_DATA = {"read_timeout_seconds"}
"""`SourceSpec` fields that change how the source is read, never what is read: left out of
the cache keys of snapshots' validations and window builds."""


class SourceSpec(_Spec):
    """Where the time-series table lives and which columns mean what."""

    path: str = Field(
        description="CSV or Parquet file, glob or directory; local path or fsspec URL."
    )
    timestamp: str = Field(default="ts", description="The time column.")
    series_id: str | None = Field(
        default=None, description="Column naming each series; omit for a single series."
    )
    target: list[str] = Field(
        description="forecast: column(s) to predict; classify: the label column.", min_length=1
    )
    features: list[str] = Field(
        default_factory=list, description="Past covariates: extra input columns (lookback only)."
    )
    future_features: list[str] = Field(
        default_factory=list,
        description="Known-future covariates (e.g. a 0/1 holiday column): their values at the "
        "forecast steps are a model input, so they must be known in advance. Numeric.",
    )
    static_features: list[str] = Field(
        default_factory=list,
        description="Static series features: numeric columns constant within each series "
        "(e.g. capacity); one value per series is a model input.",
    )
    timezone: str = Field(
        default="UTC", description="Timezone of naive timestamps and of calendar features."
    )
    frequency: str | None = Field(
        default=None,
        description="The series' step as a pandas alias, read as pandas reads it: a fixed "
        "duration ('15min', '1h', '1D') or a calendar step ('MS'/'ME' month start/end, "
        "'QS'/'QE', 'YS'/'YE', 'W-SUN' and other anchored weeks, 'B' business days). Rows "
        "are placed on this grid and a missing step is a gap. Omitted: the most common step, "
        "calendar-aware (28-31 days is a month).",
    )
    time_unit: Literal["year", "step"] | None = Field(
        default=None,
        description="For a time column of integers: 'year' (1700, 1701, ...: Jan 1 of each "
        "year, a YS grid) or 'step' (step numbers on a fixed grid); predictions report time "
        "back the same way. Omitted: inferred when every value is an integer of up to 7 "
        "digits (years if all lie in 1678-2261, else steps).",
    )

    test_path: str | None = Field(
        default=None,
        description="A second file (CSV or Parquet, same columns) holding the test sequences "
        "or series: all of it is the test split and `split.test` is not used; validation is "
        "carved from `path` (split.by=series or column). Relative paths as for `path`.",
    )

    future_path: str | None = Field(
        default=None,
        description="A CSV or Parquet file (glob, directory; local or fsspec URL) with the "
        "series id, timestamp and `future_features` columns for the forecast steps after each "
        "series' last observation; read by prediction only, parsed like `path`. Without it, "
        "prediction takes them from `path`: the rows after a series' last target value.",
    )

    read_timeout_seconds: float = Field(
        default=READ_TIMEOUT_SECONDS,
        gt=0,
        description="Longest wait for the source to answer one request (listing, opening, "
        "reading a 1 MiB chunk) before the read fails as stalled (a FIFO with no writer, a "
        "hung network mount or object store); the ingest step retries it. A slow source "
        "that keeps answering is never cut off.",
    )

    @field_validator("frequency")
    @classmethod
    def _known_frequency(cls, frequency: str | None) -> str | None:
        if frequency is not None:
            parse_frequency(frequency)  # raises ValueError naming the alias to use
        return frequency

    @model_validator(mode="after")
    def _columns_distinct(self) -> SourceSpec:
        columns = [
            self.timestamp,
            *self.target,
            *self.features,
            *self.future_features,
            *self.static_features,
        ]
        if self.series_id:
            columns.append(self.series_id)
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise ValueError(f"each column may have one role only; repeated: {repeated}")
        if self.future_path is not None and not self.future_features:
            raise ValueError(
                "`future_path` gives the known-future columns of the forecast steps: list "
                "them in `future_features`, or remove `future_path`"
            )
        return self

    def data_settings(self) -> dict[str, Any]:
        """Every field but how long to wait for the source: what cache keys of the data read
        from it may depend on (a longer timeout reads the same data)."""
        return self.model_dump(exclude=NOT_DATA)

    @property
    def value_columns(self) -> list[str]:
        """Targets then features: the numeric columns a forecast model reads."""
        return [*self.target, *self.features]

    @property
    def covariate_columns(self) -> list[str]:
        """Known-future then static columns: numeric inputs beside the lookback window."""
        return [*self.future_features, *self.static_features]


SINGLE_SERIES = "__series__"
"""Series column added when the source has a single series and no series_id column."""


def series_column(source: SourceSpec) -> str:
    """The validated table's series column (light to import: shard tasks on workers use it)."""
    return source.series_id or SINGLE_SERIES


class WindowSpec(_Spec):
    """How series are cut into (lookback -> horizon) windows and scaled."""

    per: Literal["step", "sequence"] = Field(
        default="step",
        description="classify: step labels windows cut from each series (lookback, "
        "horizon, stride); sequence makes each whole series one window labelled by the "
        "series' label (a sequence classifier: lookback, horizon and stride do not apply). "
        "Unequal lengths are padded on the right to `max_length` and masked.",
    )
    max_length: int | None = Field(
        default=None,
        gt=0,
        description="per=sequence: steps a sequence is padded to; longer sequences keep "
        "their last `max_length` steps (one warning says how many). Omitted: the longest "
        "training sequence.",
    )
    max_steps: int | None = Field(
        default=256,
        gt=0,
        description="per=sequence: most steps the network's recurrence reads. When the padded "
        "length (the longest training sequence, or `max_length`) is longer, the network "
        "averages each block of k = ceil(length / max_steps) consecutive steps into one "
        "(a mean over a sequence's own steps, never its padding; a sequence shorter than k "
        "keeps one step), at training and prediction alike; k is in the window layout "
        "(`pool`). Bounds the cost of a GRU/LSTM over long sequences (1,344 steps: k=6, "
        "224 steps). The 1-NN challenger reads the steps unpooled (it resamples to at most "
        "256 itself). null: never pool.",
    )

    lookback: int = Field(default=48, gt=0, description="Input steps per window.")
    horizon: int = Field(
        default=24,
        ge=0,
        description="forecast: steps ahead to predict (>= 1); classify: the label is read this "
        "many steps after the window's last step (0 = at its last step).",
    )
    stride: int = Field(default=1, gt=0, description="Steps between window starts.")
    normalize: Literal["auto", "series", "window", "global", "none"] = Field(
        default="auto",
        description="series: z-score per series (fitted on train rows only; over all series "
        "for a split by series); window: that, plus each forecast window's targets relative "
        "to its last value (handles trend and level shifts); global: one z-score for all "
        "series; auto: forecast trains both series and window and keeps the lower "
        "validation loss, classify uses series.",
    )
    calendar: list[Literal["hour_of_day", "day_of_week", "day_of_year"]] = Field(
        default_factory=list,
        description="Known-future covariates generated from the timestamp (in source.timezone), "
        "each as a sin/cos pair, given to the model for the forecast steps.",
    )
    fill_gaps: int = Field(
        default=0,
        ge=0,
        description="Fill gaps of at most this many missing steps with `fill_method`; longer "
        "gaps are kept and no window spans them (0 = never fill).",
    )
    fill_method: Literal["linear", "ffill"] = Field(
        default="linear",
        description="How a filled step gets its values: linear interpolation between the "
        "neighbours, or the last value carried forward (labels are always carried forward).",
    )

    @field_validator("calendar")
    @classmethod
    def _calendar_once(cls, calendar: list[str]) -> list[str]:
        if len(set(calendar)) != len(calendar):
            raise ValueError(f"each calendar feature may be listed once. Received: {calendar}")
        return calendar


class SplitSpec(_Spec):
    """How windows are assigned to train, validation and test."""

    by: Literal["time", "series", "column"] = Field(
        default="time",
        description="time: each series split by time (train | val | test); series: whole "
        "series go to one split, drawn at random with `seed` (stratified by class for "
        "classify); column: whole series go to the split named in `split.column`.",
    )
    column: str | None = Field(
        default=None,
        description="split.by=column: the column holding train, val or test, constant within "
        "each series. With no val series, validation is a stratified seeded draw of `val` "
        "of the train series.",
    )
    seed: int = Field(
        default=0, description="Seed of the random split of series (split.by=series or column)."
    )
    val: float = Field(default=0.1, ge=0.0, lt=1.0)
    test: float = Field(default=0.2, gt=0.0, lt=1.0)
    test_from: AwareDatetime | None = Field(
        default=None,
        description="time split: the test part starts at this instant in every series "
        "(instead of the last `test` fraction); validation is the `val` fraction before it. "
        "Backtest folds set it.",
    )
    until: AwareDatetime | None = Field(
        default=None,
        description="Ignore rows at or after this instant (a backtest fold's end).",
    )

    @model_validator(mode="after")
    def _train_left(self) -> SplitSpec:
        if (self.by == "column") != (self.column is not None):
            raise ValueError(
                "split.by=column and split.column go together: name the column that holds "
                f"train/val/test. Received: by={self.by!r}, column={self.column!r}"
            )
        # A share of the series is taken only when no column says where test lies.
        if self.by != "column" and self.val + self.test >= 0.9:
            raise ValueError(
                f"`val` + `test` must leave at least 10% for training. "
                f"Received: val={self.val}, test={self.test}"
            )
        if self.test_from is not None and self.by != "time":
            raise ValueError("`test_from` needs split.by=time")
        if self.test_from and self.until and self.until <= self.test_from:
            raise ValueError(
                f"`until` must be after `test_from`. Received: test_from={self.test_from}, "
                f"until={self.until}"
            )
        return self


class SearchSpec(_Spec):
    """A budgeted search for the model settings with the lowest validation loss."""

    enabled: bool = Field(
        default=True,
        description="Search cell, units and layers, dropout, learning rate, batch size, "
        "normalize (when window.normalize=auto) and residual; false: train exactly the "
        "configured model.",
    )
    trials: int = Field(
        default=4, gt=0, description="Most trials (models trained), the configured one first."
    )
    minutes: float = Field(
        default=30.0,
        gt=0.0,
        description="No new trials start after this many minutes, and running ones stop at "
        "their next batch end, keeping their best finished epoch (none finished: the trial "
        "is dropped).",
    )
    ensemble_top_k: int = Field(
        default=1,
        gt=0,
        description="1: the best trial is the model; k > 1: one model giving the mean of the "
        "k best trials' forecasts (classify: class probabilities).",
    )


class ModelSpec(_Spec):
    """The recurrent network and how it is trained."""

    cell: Literal["lstm", "gru"] = Field(
        default="gru",
        description="The recurrent cell. GRU by default: the bare GRU script beat the bare "
        "LSTM one on all 8 real series of benchmarks/real (figure 7), with fewer weights.",
    )
    units: list[int] = Field(default_factory=lambda: [64], min_length=1)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="Between layers.")
    recurrent_dropout: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="Inside the recurrence; disables the fused cuDNN kernel on GPUs.",
    )
    bidirectional: bool = Field(default=False, description="classify: bidirectional layers.")
    residual: bool = Field(
        default=False,
        description="forecast: learn a correction to the seasonal-naive (evaluate.season) "
        "or last-value forecast, starting from it.",
    )
    epochs: int | None = Field(
        default=None,
        gt=0,
        description="Most epochs of a fit. Omitted: sized to the data (about 2,000 gradient "
        "steps in all, 20 to 100 epochs; see the log and the version manifest).",
    )
    batch_size: int | None = Field(
        default=None,
        gt=0,
        description="Windows per batch on each device; with N GPUs a step takes N x this. "
        "Omitted: sized to the data (at least 32 steps per epoch where possible, 8 to 256).",
    )
    learning_rate: float = Field(default=1e-3, gt=0.0)
    patience: int | None = Field(
        default=None,
        ge=0,
        description="Early stopping on validation loss: epochs without improvement. "
        "Omitted: an eighth of the epochs, 3 to 10.",
    )
    seed: int = 0
    deterministic: bool = Field(
        default=False, description="TensorFlow op determinism: reproducible, slower."
    )
    shuffle_buffer: int = Field(
        default=65_536,
        gt=0,
        description="Training windows held in the input pipeline's shuffle buffer: bounds its "
        "memory; windows are shuffled within it (and block order is shuffled every epoch).",
    )
    quantiles: list[float] = Field(
        default_factory=lambda: [0.1, 0.5, 0.9],
        description="forecast: quantiles of a second head trained with the pinball loss on "
        "the trunk's features (the point forecast and its loss are unchanged); prediction "
        "files get one column per quantile. Sorted, unique, each in (0, 1); [] turns it off.",
    )
    search: SearchSpec = Field(
        default_factory=SearchSpec,
        description="Budgeted model search (Optuna) around these settings; the first trial "
        "is exactly these settings. enabled=false trains only them.",
    )

    @field_validator("units")
    @classmethod
    def _positive_units(cls, units: list[int]) -> list[int]:
        if any(u <= 0 for u in units):
            raise ValueError(f"every entry of `units` must be positive. Received: {units}")
        return units

    @field_validator("quantiles")
    @classmethod
    def _valid_quantiles(cls, quantiles: list[float]) -> list[float]:
        if any(not 0.0 < q < 1.0 for q in quantiles):
            raise ValueError(
                f"every entry of `quantiles` must lie strictly between 0 and 1. "
                f"Received: {quantiles}"
            )
        if quantiles != sorted(set(quantiles)):
            raise ValueError(
                f"`quantiles` must be sorted and unique, e.g. [0.1, 0.5, 0.9]. "
                f"Received: {quantiles}"
            )
        return quantiles


class EvaluateSpec(_Spec):
    """What the challenger is compared with before it may become champion."""

    season: int | None = Field(
        default=None,
        ge=0,
        description="Season length in steps for the seasonal-naive and ETS challengers (may "
        "exceed window.lookback: they read each series' history). Unset: the one the "
        "frequency implies (12 monthly, 4 quarterly, 24 hourly, 7 daily); 0: no season.",
    )
    challengers: list[Literal["ets", "ar"]] = Field(
        default=["ets", "ar"],
        description="forecast: the fitted statistical challengers scored beside the network "
        "(seasonal naive and last value always are): ets (exponential smoothing, AICc over "
        "trend and season variants) and ar (an autoregression, order by AICc), each per "
        "series on the training rows. Drop one to save its fitting time on many series.",
    )

    @field_validator("challengers")
    @classmethod
    def _distinct_challengers(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"evaluate.challengers lists a kind twice. Received: {value}")
        return value

    @property
    def season_steps(self) -> int | None:
        """The configured season, None when unset or 0 (no seasonal baseline there)."""
        return self.season or None

    promotion_margin: float = Field(
        default=0.01,
        ge=0.0,
        description="Relative improvement the challenger needs over the champion and baseline.",
    )
    calibrate: bool = Field(
        default=False,
        description="forecast: conformal calibration of the network's quantiles on the "
        "validation windows (each shifted by the empirical quantile of the validation "
        "actuals' distance from it), stored with the version and applied at prediction.",
    )
    nearest_neighbour: Literal["auto", "dtw", "euclidean", "none"] = Field(
        default="auto",
        description="Whole-sequence classifiers (window.per: sequence): the 1-NN challenger "
        "scored beside the network on the test sequences and registered when it wins: auto "
        "(DTW or Euclidean, whichever has the higher leave-one-out accuracy on the training "
        "sequences; DTW on a tie), DTW (Sakoe-Chiba band 10% of the length), Euclidean, or "
        "none. Its cost grows with (test + training) x training sequences x length x band "
        "(sequences resampled to at most 256 steps).",
    )
    backtest_folds: int = Field(
        default=0,
        ge=0,
        description="Rolling-origin backtest: this many successive test periods, each "
        "scored by a model trained only on data before it (0: off). Finished folds are "
        "cached, so the next night computes only the new one.",
    )
    backtest_steps: int | None = Field(
        default=None,
        gt=0,
        description="Length of one backtest period in steps (default: window.horizon, at "
        "least 1). Periods are aligned to multiples of it since 1970-01-01 UTC.",
    )


class RunnerSpec(_Spec):
    """Where the sharded steps (validation, window build, batch prediction, backtest folds;
    ingest of many files on Dask) run: threads or Dask.

    The shards come from the data (`series_per_shard`), never from the runner, so every
    runner writes the same windows and predictions.
    """

    kind: Literal["thread", "dask"] = Field(
        default="thread",
        description="thread: shard tasks run in threads of the flow's process; dask: on a Dask "
        "cluster (a local one of `n_workers` processes unless `address` is set).",
    )
    address: str | None = Field(
        default=None,
        description="dask: scheduler of a running cluster (e.g. tcp://host:8786); omitted: a "
        "local cluster is started for the run and stopped after it.",
    )
    n_workers: int = Field(
        default=2,
        gt=0,
        description="Shard tasks at once: threads (thread) or local worker processes (dask).",
    )
    threads_per_worker: int = Field(
        default=1, gt=0, description="dask local cluster: threads in each worker process."
    )
    series_per_shard: int = Field(
        default=500,
        gt=0,
        description="Series per shard task; a shard's rows are read, windowed and predicted "
        "by one task, so this bounds a task's memory and sets the parallel grain.",
    )

    validation_rows: int = Field(
        default=500_000,
        gt=0,
        description="Rows per validation shard task, in whole series (a longer series is a "
        "shard of its own): a shard's rows are checked in memory by one task, so this bounds "
        "validation's memory per task, whatever the size of the source.",
    )

    @model_validator(mode="after")
    def _address_for_dask(self) -> RunnerSpec:
        if self.address is not None and self.kind != "dask":
            raise ValueError(
                f"`address` is a Dask scheduler address; it needs kind=dask. "
                f"Received: kind={self.kind!r}, address={self.address!r}"
            )
        return self


class RetentionSpec(_Spec):
    """What garbage collection keeps under the pipeline root (`seqcast.serving.retention`).

    Whatever these say, GC never deletes a version that was ever champion (the champion
    pointer's history and the audit log's promotions), what a kept version refers to (its
    window build, that build's validated table and validation report, the run folder),
    the target of a current pointer (``windows/current.json``, the newest raw snapshot and
    validated table, published predictions), nor anything younger than ``grace_hours``.
    """

    enabled: bool = Field(
        default=True,
        description="Run GC at the end of each training run (`seqcast gc` runs it by hand "
        "either way).",
    )
    keep_versions: int = Field(
        default=10,
        ge=1,
        description="Registry versions kept, newest first, besides every one that was ever "
        "champion.",
    )
    keep_days: float = Field(
        default=14.0,
        ge=0.0,
        description="Window builds, raw and validated snapshots, validation reports, run "
        "folders, checkpoints and Data Docs pages newer than this many days are kept.",
    )
    grace_hours: float = Field(
        default=1.0,
        ge=0.0,
        description="Nothing younger than this is deleted, whatever else says so: a build, "
        "version or snapshot being written or published right now.",
    )


class MonitorSpec(_Spec):
    """Watching the champion after it is published (`seqcast.monitoring`): live accuracy of
    the published forecasts against the actuals that arrive later, and drift of prediction
    inputs from the training data. Both run in the prediction flow, each as its own task;
    a breach emits a Prefect event that the shipped automations (deploy/automations.yaml)
    turn into a notification and, when asked, a forced retraining run."""

    enabled: bool = Field(
        default=True,
        description="Score live accuracy and check input drift in every prediction run.",
    )
    degradation: float = Field(
        default=1.3,
        gt=1.0,
        description="Live MAE above this multiple of the champion's test MAE is a degraded night.",
    )
    nights: int = Field(
        default=3,
        ge=1,
        description="Degraded nights in a row that emit `seqcast.accuracy.degraded`.",
    )
    retrain_on_degradation: bool = Field(
        default=False,
        description="Mark the degradation event so the shipped automation starts a forced "
        "training run (`seqcast-retrain-on-degradation`).",
    )
    drift_psi: float = Field(
        default=0.25,
        gt=0.0,
        description="Population stability index of a feature above which its input drifted "
        "(0.1-0.25 is the usual 'moderate' band, above 0.25 'major').",
    )
    drift_ks: float = Field(
        default=0.3,
        gt=0.0,
        le=1.0,
        description="Two-sample Kolmogorov-Smirnov statistic above which a feature drifted.",
    )
    unseen_series: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="Share of predicted series the model never trained on above which the "
        "inputs drifted.",
    )
    chart_nights: int = Field(
        default=30,
        ge=2,
        description="Nights the live-accuracy chart shows.",
    )


class PipelineConfig(_Spec):
    """Everything one pipeline needs: data, windows, model, evaluation."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="Lowercase letters, digits, -.")
    data_root: str = Field(
        default=DEFAULT_DATA_ROOT,
        description="Local path or fsspec URL. In a config file a relative path is relative "
        "to the file's folder (and so is the default).",
    )
    source: SourceSpec
    contract: str | None = Field(
        default=None,
        description="Data contract file (YAML) in schemas/; omitted: derived from `source`. "
        "In a config file a relative path is relative to the file's folder.",
    )
    task: Literal["forecast", "classify"] = "forecast"
    window: WindowSpec = Field(default_factory=WindowSpec)
    split: SplitSpec = Field(default_factory=SplitSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    evaluate: EvaluateSpec = Field(default_factory=EvaluateSpec)
    runner: RunnerSpec = Field(
        default_factory=RunnerSpec,
        description="Task runner of the sharded steps (window build, batch prediction).",
    )
    retention: RetentionSpec = Field(
        default_factory=RetentionSpec,
        description="What GC keeps: the last versions, the champion chain, recent files.",
    )
    monitor: MonitorSpec = Field(
        default_factory=MonitorSpec,
        description="Live accuracy of published forecasts and drift of prediction inputs.",
    )

    @model_validator(mode="after")
    def _task_fits(self) -> PipelineConfig:
        if self.task == "forecast" and self.window.horizon < 1:
            raise ValueError(
                f"forecast needs `window.horizon` >= 1. Received: horizon={self.window.horizon}"
            )
        has_future = self.source.future_features or self.window.calendar
        if has_future and self.window.horizon < 1:
            raise ValueError(
                "known-future covariates (`source.future_features`, `window.calendar`) are "
                f"read at the forecast steps, so they need `window.horizon` >= 1. Received: "
                f"horizon={self.window.horizon}"
            )
        self._check_sequence_mode()
        if self.source.test_path is not None and self.split.by == "time":
            raise ValueError(
                "`source.test_path` gives whole test series: use split.by=series or column "
                "(validation is then drawn from `source.path`'s series)"
            )
        if self.task == "classify":
            if len(self.source.target) != 1:
                raise ValueError(
                    f"classify takes one label column in `source.target`. "
                    f"Received: {self.source.target}"
                )
            if not self.source.features:
                raise ValueError("classify needs at least one input column in `source.features`")
        season = self.evaluate.season
        # The baselines read each series' history beyond the input window, so any season
        # works for them; the residual network's built-in naive reads the window only.
        if season is not None and season > self.window.lookback and self.model.residual:
            raise ValueError(
                f"`evaluate.season` must not exceed `window.lookback` with `model.residual` "
                f"(the network's seasonal-naive starting point reads the input window). "
                f"Received: season={season}, lookback={self.window.lookback}"
            )
        return self

    def _check_sequence_mode(self) -> None:
        """Refuse step-window settings that a whole-sequence window would silently ignore."""
        window = self.window
        if window.per == "step":
            if window.max_length is not None:
                raise ValueError("`window.max_length` applies to window.per=sequence only")
            if window.max_steps != WindowSpec.model_fields["max_steps"].get_default():
                raise ValueError(
                    "`window.max_steps` applies to window.per=sequence only: remove it "
                    f"(received {window.max_steps})"
                )
            return
        if self.task != "classify":
            raise ValueError("window.per=sequence needs task: classify")
        # Compared with the defaults, not `model_fields_set`: a config that went through a
        # flow's parameters comes back with every field set.
        step_only = [
            key
            for key in ("lookback", "horizon", "stride", "calendar", "fill_gaps")
            if getattr(window, key)
            != WindowSpec.model_fields[key].get_default(call_default_factory=True)
        ]
        if step_only:
            raise ValueError(
                f"window.per=sequence makes each whole sequence one window, so "
                f"{', '.join(f'window.{k}' for k in step_only)} do(es) not apply: remove "
                "it (use window.max_length to cap long sequences)"
            )
        if self.split.by == "time":
            raise ValueError(
                "window.per=sequence puts whole sequences into splits: set split.by to "
                "series (a seeded random, class-stratified draw) or column (split.column)"
            )
        if self.source.future_features:
            raise ValueError("window.per=sequence takes no `source.future_features`")

    @property
    def normalize(self) -> Literal["series", "global", "none"]:
        """The z-score the window step applies (per series is impossible for a series split)."""
        if self.window.normalize in ("none", "global"):
            return self.window.normalize
        return "global" if self.split.by != "time" else "series"

    @property
    def per_sequence(self) -> bool:
        """Whether each whole series is one window (a sequence classifier)."""
        return self.window.per == "sequence"

    @property
    def window_relative_options(self) -> list[bool]:
        """Which forecast variants to train: relative to each window's last value or not."""
        if self.task == "classify" or self.window.normalize in ("series", "global", "none"):
            return [False]
        return [True] if self.window.normalize == "window" else [False, True]

    @property
    def pipeline_root(self) -> str:
        """Where every stage of this pipeline writes: ``{data_root}/{name}``."""
        return f"{self.data_root.rstrip('/')}/{self.name}"


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b=value`` into its key path and a YAML-typed value (``5`` -> int)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set takes KEY=VALUE, e.g. model.cell=gru. Received: {text!r}")
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else None


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``key.path=value`` override set."""
    merged: dict[str, Any] = yaml.safe_load(yaml.safe_dump(data)) or {}
    for text in overrides:
        path, value = parse_override(text)
        node = merged
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {part!r} is not a section of the config")
            node = child
        node[path[-1]] = value
    return merged


def load_config(path: str | Path, overrides: list[str] | None = None) -> PipelineConfig:
    """Read a YAML config, apply ``--set`` overrides and validate it.

    Relative paths (``data_root``, ``source.path``, ``contract``, and the default
    ``data_root``) are made absolute against the config file's folder, those of overrides
    against the working directory (see `seqcast.config_paths`).

    Raises:
        ConfigError: the file is missing or not YAML, or a key or value is invalid; the
            message names the key.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, not {type(data).__name__}")
    data = anchor_paths(data, path.resolve().parent, default_root=True)
    # --set values are typed in the shell: relative to where it runs (file values are
    # absolute by now, so only overridden relative paths change).
    merged = anchor_paths(apply_overrides(data, overrides or []), Path.cwd())
    return config_from_dict(merged, origin=str(path))


def config_from_dict(data: dict[str, Any], origin: str = "config") -> PipelineConfig:
    """Validate a config mapping, turning pydantic's report into one readable error."""
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{origin} is invalid:\n{format_validation_error(exc)}") from exc


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: ``  model.cell: Input should be 'lstm' or 'gru' (got 'rnn')``."""
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see `seqcast train --help`)"
        got = (
            f" (got {err['input']!r})" if err["type"] not in ("missing", "extra_forbidden") else ""
        )
        lines.append(f"  {key}: {message}{got}")
    return "\n".join(lines)
