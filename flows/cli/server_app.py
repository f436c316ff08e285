"""The Prefect server seqcast starts, with 503 answers that say how soon to retry.

Prefect's SQLite server answers 503 when a write loses a race with another connection's
commit (``SQLITE_BUSY_SNAPSHOT``: SQLite's busy timeout does not wait for that one). The
Prefect client then retries after ``2**attempt`` seconds, 2 s the first time, unless the
answer carries ``Retry-After``. The race is over within milliseconds, but it is common: a
`seqcast train` on the 309-row sunspots series met it in 3 of 4 runs on a quiet 2-core
machine (creating a subflow's task run, taking the ``seqcast-train`` slot), each time a 2 s
stall, 15% of the command (benchmarks/README.md, "Start-up").

So both servers seqcast starts, `seqcast server start` and a command's temporary server
(`flows.cli.ephemeral`), run Prefect's app behind `RetrySoon`, which adds ``Retry-After`` to
every 503: a short random delay while 503s are rare, doubling with each other 503 of the
last few seconds, so that under real contention clients back off as Prefect's own rule
would. Servers seqcast does not start (a user's, the compose stack's) are left as they are.

``python -m flows.cli.server_app server start ...`` is ``prefect server start ...`` with it.
"""

from __future__ import annotations

import random
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FIRST_DELAY = (0.05, 0.3)
"""Seconds: the range of the random ``Retry-After`` while no other 503 is recent."""
LONGEST_DELAY = 16.0
"""The most any 503 asks a client to wait (Prefect's own fourth retry waits 16 s)."""
RECENT = 5.0
"""Seconds within which earlier 503s count as the same contention."""


class RetrySoon:
    """ASGI middleware: ``Retry-After`` on the wrapped app's 503 answers.

    The delay is random in `FIRST_DELAY`, doubled for each other 503 answered in the last
    `RECENT` seconds, at most `LONGEST_DELAY`: one lost race costs a client a fraction of a
    second, sustained contention backs clients off as Prefect's exponential rule does.
    Other answers, and 503s that already say when to retry, pass unchanged.
    """

    def __init__(self, app: ASGIApp, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.clock = clock
        self.recent: deque[float] = deque()

    def delay(self) -> float:
        """Seconds the next 503 asks for; records it as recent."""
        now = self.clock()
        while self.recent and now - self.recent[0] > RECENT:
            self.recent.popleft()
        others = len(self.recent)
        self.recent.append(now)
        return min(random.uniform(*FIRST_DELAY) * 2**others, LONGEST_DELAY)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_retry_after(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 503:
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"retry-after" for name, _ in headers):
                    headers.append((b"retry-after", f"{self.delay():.3f}".encode()))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_retry_after)

    def __getattr__(self, name: str) -> Any:
        """The wrapped app's attributes, for code that reads them off the app it built."""
        app = self.__dict__.get("app")
        if app is None:
            raise AttributeError(name)
        return getattr(app, name)


_prefect_create_app: Callable[..., Any] | None = None
"""Prefect's own ``create_app``, kept by `install`."""


def create_app(*args: Any, **kwargs: Any) -> RetrySoon:
    """Prefect's ``create_app`` behind `RetrySoon` (a uvicorn ``--factory``)."""
    from prefect.server.api import server

    build = _prefect_create_app or server.create_app
    return RetrySoon(build(*args, **kwargs))


def install() -> None:
    """Have Prefect's CLI build its server app with `create_app`: ``prefect server start``
    imports ``create_app`` from Prefect's server module when it starts the server."""
    global _prefect_create_app
    from prefect.server.api import server

    if _prefect_create_app is None:
        _prefect_create_app = server.create_app
        server.create_app = create_app  # type: ignore[assignment]


def main() -> None:
    """``prefect ...`` (this module's arguments) with `RetrySoon` installed."""
    install()
    from prefect.cli import app

    sys.argv = ["prefect", *sys.argv[1:]]
    app()


if __name__ == "__main__":
    main()
