"""Issue 14 #8: a config's relative paths are read from its folder, not the shell's.

`seqcast models list --config /abs/configs/x.yaml` run from elsewhere found nothing and
said nothing useful, and `seqcast --help` created `./.seqcast/`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from seqcast.config import PipelineConfig, load_config
from tests.unit.test_contracts_cli import seqcast

ROOT = Path(__file__).resolve().parents[2]


def write(folder: Path, data: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


Load = Callable[[Path, dict], tuple[Path, PipelineConfig]]


@pytest.fixture
def load_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Load:
    """Write a config into a folder and load it with ``tmp_path`` as the working directory
    (anywhere but the config's folder); the config file and what it loads to."""
    monkeypatch.chdir(tmp_path)

    def load(folder: Path, data: dict) -> tuple[Path, PipelineConfig]:
        config = write(folder, data)
        return config, load_config(config)

    return load


def test_relative_paths_are_read_from_the_config_folder(
    tmp_path: Path, load_elsewhere: Load
) -> None:
    _, cfg = load_elsewhere(
        tmp_path / "project/configs",
        {
            "name": "p",
            "data_root": "../out",
            "contract": "../schemas/p.yaml",
            "source": {"path": "../data/*.csv", "target": ["y"]},
        },
    )
    project = tmp_path / "project"
    assert cfg.data_root == str(project / "out")
    assert cfg.pipeline_root == f"{project}/out/p"
    assert cfg.contract == str(project / "schemas/p.yaml")
    assert cfg.source.path == f"{project}/data/*.csv"  # a glob stays a glob


def test_default_data_root_lives_beside_the_config(tmp_path: Path, load_elsewhere: Load) -> None:
    _, cfg = load_elsewhere(
        tmp_path / "c", {"name": "p", "source": {"path": "/abs/x.csv", "target": ["y"]}}
    )
    assert cfg.data_root == str(tmp_path / "c/.seqcast/data")
    assert cfg.source.path == "/abs/x.csv"  # absolute paths are kept


def test_urls_are_never_rewritten_and_overrides_are_relative_to_the_shell(
    tmp_path: Path, load_elsewhere: Load
) -> None:
    config, cfg = load_elsewhere(
        tmp_path / "c",
        {
            "name": "p",
            "data_root": "s3://bucket/root",
            "source": {"path": "memory://in/*.parquet", "target": ["y"]},
        },
    )
    assert (cfg.data_root, cfg.source.path) == ("s3://bucket/root", "memory://in/*.parquet")
    chained = load_config(config, ["source.path=simplecache::s3://b/x.csv", "data_root=here"])
    assert chained.source.path == "simplecache::s3://b/x.csv"
    assert chained.data_root == str(tmp_path / "here")  # typed in the shell: from its cwd


def test_shipped_configs_resolve_to_the_repository_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # as `seqcast ... --config /repo/configs/x.yaml` from elsewhere
    load = load_config(ROOT / "configs/sample-load.yaml")
    assert load.data_root == str(ROOT / ".seqcast/data")
    assert load.contract == str(ROOT / "schemas/sample-load.yaml")
    assert Path(load.contract).is_file()
    assert load.source.path == str(ROOT / "data/sample/load/*.csv")  # where `make demo` writes
    activity = load_config(ROOT / "configs/sample-activity.yaml")
    assert activity.source.path == str(ROOT / "data/sample/activity/*.csv")
    for bench in sorted((ROOT / "benchmarks/real/configs").glob("*.yaml")):
        cfg = load_config(bench)
        assert cfg.data_root.startswith(str(ROOT / ".seqcast/bench-real/")), bench
        assert cfg.source.path.startswith(str(ROOT / ".seqcast/bench-real/")), bench


def test_help_creates_nothing(tmp_path: Path) -> None:
    for command in (["--help"], ["train", "--help"]):
        assert seqcast(tmp_path, *command).returncode == 0
        assert list(tmp_path.iterdir()) == [], command  # no ./.seqcast/


def test_models_list_from_elsewhere_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from flows.cli.models import models_app

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = write(
        tmp_path / "configs",
        {"name": "p", "data_root": "../out", "source": {"path": "../d/*.csv", "target": ["y"]}},
    )
    listed = CliRunner().invoke(models_app, ["list", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    assert f"no model versions under {tmp_path}/out/p/registry" in listed.stdout
    assert f"from {config}" in listed.stdout
    as_json = CliRunner().invoke(models_app, ["list", "--config", str(config), "--json"])
    assert as_json.stdout.strip() == "[]"  # the note goes to stderr, the JSON stays valid
    assert f"{tmp_path}/out/p/registry" in as_json.stderr
    assert list(elsewhere.iterdir()) == []  # reading the registry creates nothing here
