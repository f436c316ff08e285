"""Object-store data roots for tests: a local S3 server (moto) and fsspec's memory store.

The S3 server listens on a free loopback port for the whole session; each test gets a
bucket of its own and the standard AWS environment variables (``AWS_ENDPOINT_URL`` and
test credentials) for that test only, so s3fs finds the server the way it would find AWS.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import fsspec
import pytest

from seqcast.io import storage


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """URL of a moto S3 server on 127.0.0.1 (a free port), stopped after the session."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a log line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_root(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``s3://{fresh bucket}/prefix`` on the moto server."""
    import s3fs

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    s3fs.S3FileSystem.clear_instance_cache()  # an instance made under other settings
    bucket = f"seqcast-{uuid.uuid4().hex[:12]}"
    fs, _ = storage.filesystem(f"s3://{bucket}")
    fs.mkdir(bucket)
    yield f"s3://{bucket}/prefix"
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def memory_root() -> Iterator[str]:
    """``memory://{fresh name}/prefix``, removed afterwards."""
    name = f"seqcast-{uuid.uuid4().hex[:12]}"
    yield f"memory://{name}/prefix"
    fs = fsspec.filesystem("memory")
    if fs.exists(f"/{name}"):
        fs.rm(f"/{name}", recursive=True)


@pytest.fixture(params=["s3", "memory"])
def object_root(request: pytest.FixtureRequest) -> str:
    """Each kind of object store in turn."""
    return request.getfixturevalue(f"{request.param}_root")


def every_file(root: str) -> list[str]:
    """Every object under ``root``, as paths relative to it."""
    fs, path = storage.filesystem(root)
    if not fs.exists(path):
        return []
    prefix = path.rstrip("/") + "/"
    return sorted(p.split(prefix, 1)[-1] for p in fs.find(path))
