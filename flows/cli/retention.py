"""`seqcast gc`: garbage collection of a pipeline root by hand (no Prefect involved)."""

from __future__ import annotations

from typing import Annotated

import typer

from flows.cli.support import (
    ConfigOption,
    JsonOption,
    SetOption,
    config_or_exit,
    echo_json,
    run_or_exit,
)


def gc(
    config: ConfigOption,
    set_: SetOption = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="List what would be deleted, with sizes; delete nothing."),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also list what is kept, and why.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete what the config's `retention:` settings do not keep (pipeline root).

    Always kept, whatever the settings:
    - every model version that was ever champion, and the current champion;
    - the newest `retention.keep_versions` versions;
    - what a kept version refers to: its window build, validated table,
      validation report, Data Docs page and run folder;
    - the current window build, the newest raw snapshot and validated table,
      and published predictions (never candidates);
    - anything newer than `retention.keep_days`, or than `retention.grace_hours`.

    Each line names the kind, size, path and why it goes; then counts and sizes
    per kind and the total. Safe to interrupt: a killed GC leaves every kept
    object whole, and the next one finishes the job. Runs whether or not
    `retention.enabled` is set (that switch is the training flow's GC step).
    """
    cfg = config_or_exit(config, set_)
    from seqcast.serving import retention

    found = run_or_exit(lambda: retention.plan(cfg.pipeline_root, cfg.retention))
    if as_json:
        if not dry_run:
            run_or_exit(lambda: retention.apply(found))
        echo_json(
            {
                "pipeline": cfg.name,
                "dry_run": dry_run,
                "deleted" if not dry_run else "would_delete": [
                    {"kind": i.kind, "uri": i.uri, "bytes": i.bytes, "reason": i.reason}
                    for i in found.delete
                ],
                "bytes": found.bytes,
                "kept": len(found.keep),
            }
        )
        return
    width = max((len(kind) for kind in retention.KINDS), default=0)
    for item in found.delete:
        size = retention.human_bytes(item.bytes)
        typer.echo(f"{size:>10}  {item.kind:<{width}}  {item.uri}  ({item.reason})")
    if verbose:
        for item in found.keep:
            size = retention.human_bytes(item.bytes)
            typer.echo(f"{size:>10}  keep {item.kind:<{width}}  {item.uri}  ({item.reason})")
    if not found.delete:
        typer.echo(f"nothing to delete under {cfg.pipeline_root} ({len(found.keep)} kept)")
        return
    verb = "would delete" if dry_run else "deleting"
    typer.echo(f"\n{verb}, per kind:")
    for kind, (count, size) in found.by_kind().items():
        typer.echo(f"  {kind:<{width}}  {count:>5}  {retention.human_bytes(size):>10}")
    total = f"{len(found.delete)} objects, {retention.human_bytes(found.bytes)}"
    typer.echo(f"  {'total':<{width}}  {total}; {len(found.keep)} kept")
    if dry_run:
        typer.echo("dry run: nothing deleted (run without --dry-run to delete)")
        return
    run_or_exit(lambda: retention.apply(found))
    typer.echo(f"deleted {total}")
