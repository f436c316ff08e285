"""One TLS context per kind for all of Prefect's API clients in this process.

Prefect 3.9 builds a new `ssl.SSLContext` for every API client it opens (the sync and the
async orchestration clients, the events websocket, the server version check), and a
verified context parses the whole CA bundle: 15-25 ms each, 9 of them in one small
`seqcast train`, 0.2 s of a 7.5 s command (issue 14 #5, `benchmarks/README.md`,
"Start-up") even where the API is plain http and no TLS connection is ever made.

`share_tls_contexts` makes those Prefect modules build each kind of context once and hand
the same one to every client: a context is meant to be shared by the connections it
verifies (httpx and the standard library share one the same way). The contexts are built
with the same arguments as before, so verification is unchanged: the CA file of
``PREFECT_API_SSL_CERT_FILE`` (or certifi's), or none with
``PREFECT_API_TLS_INSECURE_SKIP_VERIFY``, a setting all of these clients read alike. Only
Prefect's own modules see the shared contexts: other libraries in the process (fsspec's
HTTP or S3 clients, say) still get fresh ones from `ssl`.
"""

from __future__ import annotations

import functools
import importlib
import ssl
from typing import Any

PREFECT_MODULES = (
    "prefect.client.orchestration",
    "prefect._internal.version_checking",
    "prefect._internal.websockets",
)
"""The modules whose clients call ``ssl.create_default_context`` (Prefect 3.9); two are
private, so one that a later Prefect moves is skipped, not an import error."""


class _SharedContexts:
    """The `ssl` module as Prefect's client modules see it: ``create_default_context``
    builds one context per set of arguments, then returns that one."""

    def __init__(self) -> None:
        self.create_default_context = functools.cache(ssl.create_default_context)

    def __getattr__(self, name: str) -> Any:
        return getattr(ssl, name)


def share_tls_contexts() -> None:
    """Make Prefect's API clients in this process share their TLS contexts; a no-op when
    done already, or where a Prefect version's modules no longer use `ssl` this way."""
    shared = _SharedContexts()
    for name in PREFECT_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if getattr(module, "ssl", None) is ssl:
            module.ssl = shared  # type: ignore[attr-defined]
