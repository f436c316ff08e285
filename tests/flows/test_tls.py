"""Prefect's API clients share their TLS contexts once the flows are imported (flows.tls):
each client built one from the CA bundle, 15-25 ms apiece (issue 14 #5)."""

from __future__ import annotations

import ssl
import subprocess
import sys
import textwrap
from pathlib import Path

import certifi
import pytest
from prefect.client import orchestration

from flows.tls import share_tls_contexts

pytestmark = pytest.mark.flow

ROOT = Path(__file__).resolve().parents[2]

COUNT_CONTEXTS = textwrap.dedent(
    """
    import ssl, sys

    built = []
    original = ssl.create_default_context

    def counted(*args, **kwargs):
        built.append(kwargs)
        return original(*args, **kwargs)

    ssl.create_default_context = counted
    from prefect.client.orchestration import PrefectClient, SyncPrefectClient

    if sys.argv[1] == "shared":
        import flows.training  # noqa: F401  the flow modules share the contexts
    before = len(built)  # what imports built (httpx's default context) does not count
    clients = [
        kind("https://prefect.example.invalid/api")
        for kind in (PrefectClient, SyncPrefectClient, PrefectClient, SyncPrefectClient)
    ]
    print(len(built) - before)
    """
)


def contexts_built(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", COUNT_CONTEXTS, mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.strip().splitlines()[-1])


def test_four_prefect_clients_build_one_tls_context_instead_of_four() -> None:
    assert contexts_built("fresh") == 4
    assert contexts_built("shared") == 1


def test_the_shared_context_still_verifies_and_other_libraries_get_fresh_ones() -> None:
    share_tls_contexts()
    share_tls_contexts()  # a second call changes nothing
    prefect_ssl = orchestration.ssl  # what Prefect's client module calls
    first = prefect_ssl.create_default_context(cafile=certifi.where())
    assert prefect_ssl.create_default_context(cafile=certifi.where()) is first
    assert first.verify_mode == ssl.CERT_REQUIRED and first.check_hostname
    assert first.cert_store_stats()["x509_ca"] > 0  # the CA bundle is loaded
    assert prefect_ssl.SSLContext is ssl.SSLContext  # the rest of `ssl` is the module's
    other = ssl.create_default_context(cafile=certifi.where())
    assert other is not first  # libraries outside Prefect's clients: a fresh context


def test_a_prefect_module_that_moved_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two of the patched modules are Prefect's private ones: a later Prefect may move them,
    and the flows must still import."""
    from flows import tls

    moved = ("prefect._internal.no_such_module", *tls.PREFECT_MODULES)
    monkeypatch.setattr(tls, "PREFECT_MODULES", moved)
    tls.share_tls_contexts()  # no ImportError
    assert orchestration.ssl is not ssl  # the modules still there are shared
