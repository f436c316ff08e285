"""The nightly training flow: ingest -> validate -> window -> train -> evaluate -> register."""

from __future__ import annotations

from prefect import flow

from seqcast.config import PipelineConfig
from seqcast.records import TrainingOutcome
from tasks.evaluate import evaluate
from tasks.ingest import ingest
from tasks.register import register
from tasks.train import train
from tasks.validate import validate
from tasks.window import window


@flow(name="training", flow_run_name="train-{config.name}", validate_parameters=True)
def nightly_training(config: PipelineConfig) -> TrainingOutcome:
    """Train an LSTM/GRU on the latest data and promote it only if it beats the champion."""
    snapshot = ingest(config)
    validated = validate(config, snapshot)
    windows = window(config, validated)
    trained = train(config, windows)
    evaluation = evaluate(config, windows, trained)
    version = register(config, windows, trained, evaluation, validated)
    return TrainingOutcome(evaluation=evaluation, version=version)
