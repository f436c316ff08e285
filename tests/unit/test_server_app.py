"""The servers seqcast starts tell clients to retry a 503 soon (`flows.cli.server_app`):
Prefect's client otherwise waits 2 s on every lost SQLite race."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flows.cli import server_app
from flows.cli.server_app import LONGEST_DELAY, RECENT, RetrySoon


def answering(status: int, headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    """An ASGI app that answers every request with ``status``."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers or []})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


def request(app: Any) -> dict[bytes, bytes]:
    """The headers of ``app``'s answer to one GET."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app({"type": "http", "method": "GET", "path": "/api/x"}, receive, send))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    return dict(sent[0]["headers"])


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_503_says_to_retry_within_a_fraction_of_a_second() -> None:
    # Prefect's client waits 2**attempt s on a 503 without Retry-After: 2 s per lost race.
    headers = request(RetrySoon(answering(503)))
    low, high = server_app.FIRST_DELAY
    assert low <= float(headers[b"retry-after"]) <= high


def test_other_answers_and_a_503_that_says_when_pass_unchanged() -> None:
    assert b"retry-after" not in request(RetrySoon(answering(200)))
    assert b"retry-after" not in request(RetrySoon(answering(500)))
    own = request(RetrySoon(answering(503, [(b"Retry-After", b"30")])))
    assert own == {b"Retry-After": b"30"}


def test_delays_double_under_contention_and_fall_back_when_it_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server_app.random, "uniform", lambda low, high: 0.1)
    clock = Clock()
    app = RetrySoon(answering(503), clock=clock)
    delays = []
    for _ in range(10):
        delays.append(float(request(app)[b"retry-after"]))
        clock.now += 0.2
    assert delays[:5] == [0.1, 0.2, 0.4, 0.8, 1.6]  # each other recent 503 doubles it
    assert max(delays) == LONGEST_DELAY  # sustained contention: Prefect's own 16 s at most
    clock.now += RECENT + 1
    assert float(request(app)[b"retry-after"]) == 0.1  # contention over: soon again


def test_websocket_and_lifespan_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    async def nothing(*args: Any) -> Any:
        return None

    for kind in ("websocket", "lifespan"):
        asyncio.run(RetrySoon(app)({"type": kind}, nothing, nothing))
    assert seen == ["websocket", "lifespan"]
