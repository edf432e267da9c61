"""`dermq models`: inspect, verify, publish and select model bundles.

Publishing uploads a verified bundle to the object store under its name and
version; `use` selects which published bundle the workers serve for its task,
and running workers switch to it within DERMQ_MODEL_POLL_S seconds, no restart.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from core.settings import Settings

console = Console()


def _settings(data_dir: Path | None) -> Settings:
    return Settings(**({"data_dir": data_dir} if data_dir else {}))


def _store(data_dir: Path | None):  # -> ObjectStore; imported lazily, the CLI starts fast
    from workers.storage import create_store

    return create_store(_settings(data_dir))


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


_dir_opt = click.option("--data-dir", type=click.Path(path_type=Path), help="Default: $DERMQ_DATA_DIR or ./data")


@click.group()
def models() -> None:
    """Model bundles: list, inspect, verify, publish, use."""


@models.command("list")
@_dir_opt
def list_(data_dir: Path | None) -> None:
    """Bundles published to the object store; * marks the ones workers serve."""
    from workers import model_registry
    from workers.model_cache import resolve_source

    settings = _settings(data_dir)
    store = _store(data_dir)
    serving = {str(resolve_source(settings, store, task)) for task in model_registry.TASKS}
    table = Table("", "bundle", "task", "architecture", "classes", "trained", "created", "sha256")
    for ref, manifest in sorted(model_registry.published(store), key=lambda p: (p[0].name, p[0].version)):
        mark = "*" if f"published:{ref}" in serving else ""
        if manifest is None:
            table.add_row(mark, str(ref), "[red]unreadable manifest[/red]", "", "", "", "", "")
            continue
        table.add_row(mark, str(ref), manifest.task, manifest.architecture, str(len(manifest.classes)),
                      "yes" if manifest.trained else "no", manifest.created, manifest.weights_sha256[:12])
    console.print(table)
    for task in model_registry.TASKS:
        console.print(f"{task}: {resolve_source(settings, store, task)}")


@models.command()
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Print the whole manifest as JSON.")
@_dir_opt
def inspect(target: str, as_json: bool, data_dir: Path | None) -> None:
    """Show a bundle's manifest: TARGET is a bundle directory or a published NAME@VERSION."""
    from pipeline.models.bundle import MANIFEST_FILE, BundleError, BundleManifest
    from workers import model_registry

    try:
        if Path(target).is_dir():
            manifest = BundleManifest.model_validate_json((Path(target) / MANIFEST_FILE).read_bytes())
        else:
            manifest = model_registry.read_manifest(_store(data_dir), model_registry.BundleRef.parse(target))
    except (BundleError, ValueError, OSError) as exc:
        _fail(str(exc))
    if as_json:
        click.echo(manifest.model_dump_json(indent=2))
        return
    console.print(f"[bold]{manifest.name}@{manifest.version}[/bold]  {manifest.task}  {manifest.architecture}  "
                  f"input {manifest.input_size}px  temperature {manifest.temperature:g}  "
                  f"{'trained' if manifest.trained else 'UNTRAINED'}  sha256 {manifest.weights_sha256}")
    if manifest.summary_metrics:
        console.print(json.dumps(manifest.summary_metrics, indent=None))
    table = Table("class", "sensitivity %", "specificity %", "AUROC", "support")
    for code in manifest.classes:
        m = manifest.metrics.get(code)
        fmt = lambda v: "-" if v is None else f"{v:.3g}"  # noqa: E731
        table.add_row(code, *(fmt(getattr(m, f, None)) for f in ("sensitivity", "specificity", "auroc", "support")))
    console.print(table)


@models.command()
@click.argument("bundle_dir", type=click.Path(path_type=Path))
def verify(bundle_dir: Path) -> None:
    """Check files, sha256, manifest and tensor shapes; exit 1 on any problem."""
    from pipeline.models.bundle import verify_bundle

    problems = verify_bundle(bundle_dir)
    if problems:
        for p in problems:
            click.echo(f"FAIL {p}", err=True)
        sys.exit(1)
    click.echo(f"OK {bundle_dir}")


@models.command()
@click.argument("bundle_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--use", "select_it", is_flag=True, help="Also select it for serving.")
@_dir_opt
def publish(bundle_dir: Path, select_it: bool, data_dir: Path | None) -> None:
    """Verify BUNDLE_DIR and upload it to the object store as NAME@VERSION."""
    from pipeline.models.bundle import BundleError
    from workers import model_registry

    store = _store(data_dir)
    try:
        manifest = model_registry.publish(store, bundle_dir)
        ref = model_registry.BundleRef.parse(f"{manifest.name}@{manifest.version}")
        click.echo(f"published {ref} ({manifest.task}, sha256 {manifest.weights_sha256[:12]})")
        if select_it:
            model_registry.select(store, ref)
            click.echo(f"workers now switch to {ref}")
    except BundleError as exc:
        _fail(str(exc))


@models.command()
@click.argument("ref", required=False)
@click.option("--default", "default_task", type=click.Choice(["classification", "segmentation"]),
              help="Drop the selection for this task: workers fall back to their settings.")
@_dir_opt
def use(ref: str | None, default_task: str | None, data_dir: Path | None) -> None:
    """Select the published bundle REF (NAME@VERSION) for serving; workers switch without restart."""
    from pipeline.models.bundle import BundleError
    from workers import model_registry

    store = _store(data_dir)
    if default_task:
        model_registry.clear_selection(store, default_task)  # type: ignore[arg-type]
        click.echo(f"{default_task}: back to the configured default")
        return
    if not ref:
        _fail("give NAME@VERSION or --default TASK")
    try:
        task = model_registry.select(store, model_registry.BundleRef.parse(ref))
    except (BundleError, ValueError) as exc:
        _fail(str(exc))
    click.echo(f"{task}: workers switch to {ref} within {_settings(data_dir).model_poll_s:g} s")
