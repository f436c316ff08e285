"""Small, frozen reference records that tasks hand each other instead of data.

Each names where a dataset or model lives, how big it is and a content fingerprint, so
retries, caching and remote workers work and the Prefect database stays small.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SnapshotRef(_Record):
    """An immutable raw snapshot of the source, as read."""

    uri: str
    rows: int
    fingerprint: str
    files: list[str]


class SnapshotPlanRef(_Record):
    """A raw snapshot to write (or found written: ``reused``): its folder, the files in
    order with the marks their rows get, and the snapshot's columns (from headers/footers).
    """

    uri: str
    fingerprint: str
    reused: SnapshotRef | None = None
    files: list[str] = []
    marks: list[dict[str, str]] = []
    columns: list[str] = []
    shared_ids: bool = False
    """A series id may not be in both source.path and source.test_path (files of both)."""
    work: str | None = None
    """The run's own folder for the parts of a mapped ingest (`seqcast.io.work_dirs`),
    never inside the snapshot folder, which other runs of the same source share."""


class SnapshotPartRef(_Record):
    """One source file's rows, written by its own task until the parts are combined."""

    uri: str
    rows: int
    ids_uri: str | None = None
    """The file's series ids, when `SnapshotPlanRef.shared_ids` asks for them."""


class ValidatedRef(_Record):
    """The typed, contract-checked table the window step reads."""

    uri: str
    rows: int
    fingerprint: str
    series: int
    warnings: list[str] = []
    outcome: str = "pass"
    quarantined: int = 0
    report_uri: str = ""
    series_set_aside: list[str] = []
    """Prediction: the series whose rows read broke a rule, not predicted this run."""


class ValidationShardRef(_Record):
    """A shard of whole series of a raw snapshot (`seqcast.data.validation_shards`): its
    rows, with their snapshot positions, in a file of its own (or the snapshot itself)."""

    number: int
    uri: str
    rows: int
    series: int
    first_row: int | None = None
    """Set when the shard is rows [first_row, first_row + rows) of the snapshot ``uri``,
    which already holds its series together (not copied)."""


class ValidationPlanRef(_Record):
    """A validation in progress: what it checks against and the shards it checks."""

    fingerprint: str
    work: str
    """The run's work folder (shard files, parts and summaries), removed when it ends."""
    shards: list[ValidationShardRef]
    files_with_rows: list[str] = []
    """Source file names rows came from (several shards: for the empty-file rule)."""


class ShardRef(_Record):
    """A shard of series: a contiguous row range of the validated table (sorted by series)."""

    number: int
    first_row: int
    rows: int
    series: int


class WindowBuildRef(_Record):
    """A window build in progress (or found published: ``reused``) and its shards."""

    uri: str
    key: str
    reused: bool
    shards: list[ShardRef] = []


class WindowsRef(_Record):
    """Windows written as Parquet, with the scaler and spec that produced them."""

    uri: str
    fingerprint: str
    rows_by_split: dict[str, int]
    n_inputs: int
    n_outputs: int
    classes: list[str] = []


class TrainedRef(_Record):
    """A trained model file (not yet registered) and how training went."""

    model_uri: str
    epochs_run: int
    best_val_loss: float
    train_seconds: float
    window_relative: bool = False
    training: dict[str, Any] = {}
    """The sized batch size, epochs and patience and why (`seqcast.modeling.sizing`)."""
    params: dict[str, Any] = {}
    """The model settings that trained it (`ModelSpec` fields, batch size etc. resolved)."""
    search: dict[str, Any] | None = None
    """The model search that chose it: trials, best trial and parameters, ensemble."""


class TrialRecord(_Record):
    """One model-search trial: its settings, where its model is, and how it trained."""

    number: int
    params: dict[str, Any]
    """The searched parameters as the search names them."""
    model: dict[str, Any]
    """The full model settings it trained with (`ModelSpec` fields)."""
    window_relative: bool
    model_uri: str
    val_losses: list[float]
    """Validation loss after each epoch (validation windows only)."""
    train_losses: list[float]
    best_val_loss: float | None
    """None when the trial failed (``error``): it is never chosen."""
    epochs_run: int
    seconds: float
    pruned: bool
    error: str | None = None
    stopped: bool = False
    """The search's minutes ran out while it trained: it kept its best finished epoch (or,
    with none finished, failed with ``error`` and is never chosen)."""


class ChallengersRef(_Record):
    """The statistical challengers' fits (ETS and AR per series) of a run; ``uri`` is None for a
    classifier, which has none."""

    uri: str | None
    series: int
    seconds: float


class ChallengersPlanRef(_Record):
    """The ETS and AR fits to make: groups of contiguous window-store blocks (one task each), where
    their parts and the merged document go; ``done`` is the result instead when there is
    nothing to fit (a classifier)."""

    uri: str
    parts_uri: str
    season: int | None
    groups: list[list[int]]
    done: ChallengersRef | None = None
    kinds: list[str] = ["ets", "ar"]
    """The fitted challengers to fit (``evaluate.challengers``)."""


class ChallengerPartRef(_Record):
    """One group's ETS and AR fits, written as a part until they are merged into one document."""

    uri: str
    blocks: list[int]
    series: int
    seconds: float


class EvaluationRef(_Record):
    """Test metrics of the challenger, the baselines and the current champion."""

    metrics_uri: str
    primary_metric: str
    challenger: float
    baselines: dict[str, float]
    champion: float | None
    champion_version: str | None
    forecasts_uri: str | None = None
    """Every test forecast (test_forecasts.parquet; forecast only)."""
    classify_scores: dict[str, dict[str, float]] | None = None
    """classify: every predictor's accuracy, balanced accuracy and macro-F1, which the
    classifier gate (`seqcast.modeling.gate.decide_classifier`) decides from."""
    neighbours_uri: str | None = None
    """A whole-sequence classifier's 1-NN challenger (neighbours.npz of this run), which
    the register step stores as a nearest_neighbour version when it wins."""


class ModelVersionRef(_Record):
    """A registered model version and whether it became champion.

    The training flow's is the network's version (registered every run, for audit);
    ``statistical`` is the statistical challenger registered beside it when one won the
    night, ``winner`` the kind that won, and ``champion`` the champion after the run.
    """

    version: str
    uri: str
    promoted: bool
    reason: str
    kind: str = "network"
    winner: str | None = None
    statistical: ModelVersionRef | None = None
    champion: str | None = None


class PredictionPlanRef(_Record):
    """A batch prediction in progress: the model every shard uses and where parts go."""

    model_version: str
    staging_uri: str
    shards: list[ShardRef]


class PredictionPartRef(_Record):
    """One shard's predictions, staged until they are combined into one file."""

    uri: str
    rows: int
    series: int
    origin: str


class PredictionsRef(_Record):
    """A batch of predictions written as Parquet."""

    uri: str
    rows: int
    model_version: str
    series: int = 0
    """Series predicted (0 in records written before it was kept)."""


class BacktestFoldRef(_Record):
    """One rolling-origin fold: its test period, where its result is, its primary metric."""

    fold: int
    test_from: str
    until: str
    result_uri: str
    model: float
    baselines: dict[str, float]
    cached: bool


class BacktestRef(_Record):
    """The backtest's folds and the spread of the primary metric over them."""

    primary_metric: str
    folds: list[BacktestFoldRef]
    model_mean: float
    model_std: float
    summary_uri: str


class TrainingOutcome(_Record):
    """What the training flow returns: the evaluation, the registered version and, when
    `evaluate.backtest_folds` is set, the backtest."""

    evaluation: EvaluationRef
    version: ModelVersionRef
    backtest: BacktestRef | None = None


class RetentionRef(_Record):
    """What one GC deleted under a pipeline root: objects and bytes per kind."""

    deleted: dict[str, int]
    freed_bytes: dict[str, int]
    kept: int


class LiveAccuracyRef(_Record):
    """One night's live accuracy (`seqcast.monitoring.live_accuracy`): where its history
    entry is and the figures the alert is decided on."""

    uri: str
    pairs: int
    live_mae: float | None
    test_mae: float | None
    ratio: float | None
    degraded_nights: int
    event_emitted: bool


class DriftRef(_Record):
    """A prediction run's input-drift check against its model's training profile."""

    key: str
    """The table artifact's key (``{name}-input-drift``)."""
    version: str
    """The model version whose profile the inputs were compared with."""
    drifted: list[str] = []
    """Features whose PSI or KS is above its threshold."""
    unseen_share: float | None = None
    """Share of predicted series not seen in training (None: series not compared)."""
    emitted: bool = False
    """Whether `seqcast.input.drifted` was sent."""
