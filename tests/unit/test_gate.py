"""The gate's decision table: who wins the night, and whether it becomes champion."""

from __future__ import annotations

import pytest

from seqcast.modeling.gate import choose_winner, decide, decide_classifier, kind_of_predictor

MARGIN = 0.01


@pytest.mark.parametrize(
    ("network", "baselines", "winner"),
    [
        # The network beats every baseline by the margin.
        (5.0, {"last_value": 10.0, "seasonal_naive_7": 8.0, "ets": 7.0}, "model"),
        # It must beat each of them: losing to ets alone is enough to lose.
        (5.0, {"last_value": 10.0, "seasonal_naive_7": 8.0, "ets": 4.0}, "ets"),
        # Within the margin of a baseline is not a win.
        (9.95, {"last_value": 10.0}, "last_value"),
        # ets must beat both simpler ones; seasonal naive only last value.
        (9.0, {"last_value": 8.0, "seasonal_naive_7": 6.0, "ets": 6.5}, "seasonal_naive_7"),
        (9.0, {"last_value": 8.0, "seasonal_naive_7": 7.99, "ets": 7.98}, "last_value"),
        (9.0, {"last_value": 8.0, "seasonal_naive_7": 8.5, "ets": 7.0}, "ets"),
        # ets and ar are equally complex: the better one wins, by any amount.
        (30.0, {"last_value": 63.0, "seasonal_naive_11": 28.0, "ets": 51.0, "ar": 20.5}, "ar"),
        (9.0, {"last_value": 8.0, "ets": 7.0, "ar": 6.99}, "ar"),
        (9.0, {"last_value": 8.0, "ets": 6.99, "ar": 7.0}, "ets"),
        # ar must still beat the simpler ones by the margin; then ets gets its turn.
        (9.0, {"last_value": 8.0, "seasonal_naive_7": 7.0, "ar": 6.95}, "seasonal_naive_7"),
        (9.0, {"last_value": 8.0, "seasonal_naive_7": 7.0, "ar": 6.95, "ets": 6.9}, "ets"),
        (9.0, {"last_value": 8.0, "ets": float("nan"), "ar": 7.0}, "ar"),
        # Nothing beats last value: last value (the stock-price case).
        (9.0, {"last_value": 8.0, "seasonal_naive_7": 9.0}, "last_value"),
        (float("nan"), {"last_value": 8.0}, "last_value"),
        # A classifier (higher macro-F1 is better) against its majority class.
        (0.4, {"majority_class": 0.3}, "model"),
    ],
)
def test_winner(network: float, baselines: dict[str, float], winner: str) -> None:
    metric = "macro_f1" if "majority_class" in baselines else "mae"
    assert choose_winner(network, baselines, metric, MARGIN)[0] == winner


def test_a_classifier_that_loses_has_no_winner() -> None:
    winner, reason = choose_winner(0.2, {"majority_class": 0.3}, "macro_f1", MARGIN)
    assert winner is None and "does not beat majority_class" in reason


def test_first_run_always_makes_a_champion() -> None:
    gate = decide(9.0, {"last_value": 8.0, "seasonal_naive_7": 9.0}, None, None, "mae", MARGIN)
    assert (gate.winner, gate.kind, gate.promote, gate.score) == (
        "last_value",
        "last_value",
        True,
        8.0,
    )
    assert "no network beat" in gate.reason and "last_value is champion" in gate.reason


@pytest.mark.parametrize(
    ("champion", "promote"),
    [(7.0, False), (8.0, False), (8.05, False), (8.2, True), (float("nan"), True)],
)
def test_the_winner_must_beat_the_champion(champion: float, promote: bool) -> None:
    gate = decide(9.0, {"last_value": 10.0, "seasonal_naive_7": 8.0}, champion, "v1", "mae", MARGIN)
    assert gate.winner == "seasonal_naive_7" and gate.kind == "seasonal_naive"
    assert gate.promote is promote
    if not promote:
        assert "does not beat champion v1" in gate.reason


def test_a_network_that_lost_to_last_value_is_never_promoted() -> None:
    for champion in (None, 100.0):
        gate = decide(9.0, {"last_value": 8.0}, champion, "v1" if champion else None, "mae", 0.0)
        assert gate.kind == "last_value"


def test_predictor_names_map_to_kinds() -> None:
    assert [
        kind_of_predictor(n)
        for n in (
            "model",
            "ets",
            "ar",
            "seasonal_naive_365",
            "last_value",
            "nearest_neighbour",
            "majority_class",
            "champion",
        )
    ] == ["network", "ets", "ar", "seasonal_naive", "last_value", "nearest_neighbour", None, None]


MAJORITY = {"accuracy": 0.4, "balanced_accuracy": 0.333, "macro_f1": 0.19}


def _classifier(accuracy: float) -> dict[str, float]:
    return {"accuracy": accuracy, "balanced_accuracy": accuracy, "macro_f1": accuracy}


@pytest.mark.parametrize(
    ("network", "nearest", "winner"),
    [
        (0.9, 0.7, "model"),  # the network clearly better
        (0.8, 0.802, "model"),  # within the margin: the network stays
        (0.7, 0.9, "nearest_neighbour"),  # the 1-NN beats it by the margin
        (0.4, 0.8, "nearest_neighbour"),  # the network fails the majority floors
        (0.9, 0.3, "model"),  # the 1-NN fails them
        (0.4, 0.35, None),  # neither beats the majority class
    ],
)
def test_the_classifier_gate_ranks_network_and_1nn(
    network: float, nearest: float, winner: str | None
) -> None:
    scores = {
        "model": _classifier(network),
        "nearest_neighbour": _classifier(nearest),
        "majority_class": MAJORITY,
    }
    gate = decide_classifier(scores, None, "macro_f1", MARGIN)
    assert gate.winner == winner and gate.promote is (winner is not None)
    assert gate.kind == kind_of_predictor(winner or "majority_class")
    if winner is not None:
        assert gate.score == scores[winner]["macro_f1"]


def test_a_1nn_winner_must_still_beat_the_champion() -> None:
    scores = {
        "model": _classifier(0.4),
        "nearest_neighbour": _classifier(0.8),
        "majority_class": MAJORITY,
        "champion": _classifier(0.85),
    }
    gate = decide_classifier(scores, "v1", "macro_f1", MARGIN)
    assert gate.winner == "nearest_neighbour" and not gate.promote
    assert "network does not beat the majority class" in gate.reason
    assert "stays champion" in gate.reason
