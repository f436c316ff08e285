"""Keep TensorFlow's native start-up lines off the console.

TensorFlow 2.21 prints, twice while it loads and before ``TF_CPP_MIN_LOG_LEVEL`` is read::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:... port.cc:153] oneDNN custom operations are on. ...

C++ writes them to file descriptor 2, where no Python logging filter sees them. Turning
oneDNN off (``TF_ENABLE_ONEDNN_OPTS=0``) would silence them but change the numbers a model
learns, so instead, while ``tensorflow`` is first imported, file descriptor 2 goes through a
pipe that forwards every other line. The hook is installed when the library is imported
(``seqcast/__init__.py``), so it covers the CLI, flows started by a worker and Dask workers
alike, wherever the library first imports Keras or TensorFlow.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import re
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

DEFAULT_LEVEL = "2"
"""``TF_CPP_MIN_LOG_LEVEL`` unless the user set one: warnings and info lines off."""

ABSL_PREAMBLE = re.compile(rb"WARNING: All log messages before absl::InitializeLog\(\) is called")
ABSL_INFO = re.compile(rb"I\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] ")
"""An absl INFO line (``I0000 00:00:1796175001.069565   30073 port.cc:153] ...``)."""
CPU_GUARD_MORE = re.compile(rb"To enable the following instructions: ")


def is_noise(line: bytes, min_level: int) -> bool:
    """Whether ``line`` is a start-up line TensorFlow should not have printed at
    ``TF_CPP_MIN_LOG_LEVEL`` ``min_level`` (warnings and errors always pass)."""
    if min_level < 1:
        return False
    return bool(ABSL_PREAMBLE.match(line) or ABSL_INFO.match(line) or CPU_GUARD_MORE.match(line))


def _min_level() -> int:
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


@contextmanager
def native_stderr_filtered() -> Iterator[None]:
    """Route file descriptor 2 through a pipe that drops `is_noise` lines, for the block."""
    min_level = _min_level()
    if min_level < 1:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward() -> None:
        with os.fdopen(read_end, "rb") as lines:
            for line in lines:
                if not is_noise(line, min_level):
                    os.write(saved, line)

    pump = threading.Thread(target=forward, name="seqcast-tf-stderr", daemon=True)
    pump.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the pump sees EOF
        # A process started meanwhile may still hold the write end; then the pump keeps
        # forwarding its lines, and `saved` stays open for it.
        pump.join(timeout=5)
        if not pump.is_alive():
            os.close(saved)


class _QuietLoader(importlib.abc.Loader):
    """TensorFlow's own loader, run with `native_stderr_filtered`."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with native_stderr_filtered():
            self.inner.exec_module(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # resource readers, get_source, ...


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` like the path finder does, with `_QuietLoader`; once."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow_import() -> None:
    """Default ``TF_CPP_MIN_LOG_LEVEL`` and filter TensorFlow's first import (see above);
    nothing to do once TensorFlow is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", DEFAULT_LEVEL)
    if "tensorflow" in sys.modules:
        return
    if not any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())
