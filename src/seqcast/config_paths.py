"""Where a config's relative paths point: at the folder of the file that holds them.

`seqcast models list --config /abs/configs/x.yaml` must find the same registry whichever
directory it is run from, so a relative ``data_root``, ``source.path`` or ``contract`` in a
config file is read relative to that file's folder, and made absolute when the file is
loaded (runs started elsewhere, e.g. by a worker or `seqcast backfill`, get the same paths).
A ``--set`` value is typed in the shell, so it is relative to the working directory. An
fsspec URL (``s3://``, ``memory://``, ``simplecache::s3://``) is never rewritten.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

DEFAULT_DATA_ROOT = ".seqcast/data"
"""``data_root`` when a config omits it (next to the config file once loaded from one)."""

PATH_KEYS = (
    ("data_root",),
    ("source", "path"),
    ("source", "test_path"),
    ("source", "future_path"),
    ("contract",),
)
"""The config keys that hold a local path or an fsspec URL."""


def is_url(path: str) -> bool:
    """Whether ``path`` names an fsspec location (a protocol or a chained URL), not a path."""
    return "://" in path or "::" in path


def anchor(path: str, base: Path) -> str:
    """``path`` as an absolute local path, read relative to ``base`` (URLs unchanged).

    Only the separators are normalised, not symlinks, and a glob stays a glob.
    """
    if is_url(path):
        return path
    expanded = Path(path).expanduser()
    return os.path.normpath(expanded if expanded.is_absolute() else base / expanded)


def anchor_paths(data: dict[str, Any], base: Path, default_root: bool = False) -> dict[str, Any]:
    """A copy of the config mapping ``data`` with its path keys anchored at ``base``.

    ``default_root``: also write the default ``data_root`` (anchored) when it is omitted, so
    a config file's data lives beside it rather than wherever the command runs.
    Values that are not strings are left for validation to report.
    """
    out = {**data}
    if default_root and "data_root" not in out:
        out["data_root"] = DEFAULT_DATA_ROOT
    for keys in PATH_KEYS:
        node = out
        for key in keys[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                break
            node[key] = node = {**child}
        else:
            value = node.get(keys[-1])
            if isinstance(value, str) and value:
                node[keys[-1]] = anchor(value, base)
    return out
