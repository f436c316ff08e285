"""`seqcast models …`: inspect the model registry, promote and roll back by hand."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from flows.cli.support import ConfigOption, SetOption, config_or_exit, run_or_exit

models_app = typer.Typer(help="Inspect the model registry.", no_args_is_help=True)


@models_app.command("list")
def models_list(
    config: ConfigOption,
    set_: SetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List model versions with their kind and test metrics; the champion is marked."""
    cfg = config_or_exit(config, set_)
    from seqcast.serving.registry import list_versions

    rows = run_or_exit(lambda: list_versions(cfg.pipeline_root))
    if not rows:
        # Say where it looked (on stderr under --json): a wrong data_root is the usual cause.
        typer.echo(
            f"no model versions under {cfg.pipeline_root}/registry (data_root "
            f"{cfg.data_root} from {config}; relative paths there are relative to the "
            f"config's folder); train first: seqcast train --config {config}",
            err=as_json,
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        return
    for row in rows:
        scores = row["metrics"]["scores"]
        primary = row["metrics"]["primary_metric"]
        mark = "*" if row["champion"] else " "
        own = row["predictor"] if row["predictor"] in scores else "model"
        others = ", ".join(f"{k}={v[primary]:.4f}" for k, v in scores.items() if k != own)
        typer.echo(
            f"{mark} {row['version']}  {row['kind']:<17} {primary}={scores[own][primary]:.4f}"
            f"  ({others})"
        )
    champion = next((row for row in rows if row["champion"]), None)
    if champion is not None and champion["kind"] == "last_value":
        typer.echo("champion is last_value: no network or other challenger beat it")


@models_app.command("show")
def models_show(
    version: Annotated[str, typer.Argument(help="Version id (see `seqcast models list`).")],
    config: ConfigOption,
    set_: SetOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (the default; accepted like `list`).")
    ] = True,
) -> None:
    """Print a version's kind, manifest, metrics and file paths (test_forecasts) as JSON."""
    cfg = config_or_exit(config, set_)
    from seqcast.io import storage
    from seqcast.serving import registry

    def show() -> dict[str, Any]:
        manifest = registry.read_manifest(cfg.pipeline_root, version)
        metrics = storage.read_json(
            storage.join(registry.version_uri(cfg.pipeline_root, version), "metrics.json")
        )
        champion = registry.champion_version(cfg.pipeline_root) == version
        root = registry.version_uri(cfg.pipeline_root, version)
        forecasts = storage.join(root, registry.FORECASTS_FILE)
        return {
            "champion": champion,
            "kind": registry.kind_of(manifest),
            "uri": root,
            "test_forecasts": forecasts if registry.FORECASTS_FILE in manifest["sha256"] else None,
            "manifest": manifest,
            "metrics": metrics,
        }

    typer.echo(json.dumps(run_or_exit(show), indent=2))


@models_app.command("promote")
def models_promote(
    version: Annotated[str, typer.Argument(help="Version id to make champion.")],
    config: ConfigOption,
    set_: SetOption = None,
) -> None:
    """Make VERSION the champion by hand (recorded in the audit log)."""
    cfg = config_or_exit(config, set_)
    from seqcast.serving import registry

    run_or_exit(lambda: registry.verify_version(cfg.pipeline_root, version))
    run_or_exit(
        lambda: registry.set_champion(cfg.pipeline_root, version, {"reason": "manual promote"})
    )
    typer.echo(f"champion: {version}")


@models_app.command("rollback")
def models_rollback(config: ConfigOption, set_: SetOption = None) -> None:
    """Restore the previous champion (recorded in the audit log)."""
    cfg = config_or_exit(config, set_)
    from seqcast.serving import registry

    restored = run_or_exit(lambda: registry.rollback(cfg.pipeline_root))
    typer.echo(f"champion: {restored} (restored)")
