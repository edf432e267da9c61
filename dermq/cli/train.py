"""`dermq train classifier|segmenter`: build model bundles from your own labelled images."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

# Flags every trainer takes the same way; their names are the config fields.
_OUT = click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Bundle directory to write.")
_RUN_OPTIONS = [
    click.option("--batch-size", type=int, default=32, show_default=True),
    click.option("--seed", type=int, default=0, show_default=True),
    click.option("--resume", is_flag=True, help="Continue from OUT/.checkpoint/last.pt if present."),
    click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True),
    click.option("--workers", type=int, default=None, help="Data-loading processes (default: 0 on CPU, up to 8 on CUDA)."),
    click.option("--quiet", "progress", flag_value=False, default=True, help="No progress bars."),
]


def _with(options: list[Callable[[Callable[..., Any]], Callable[..., Any]]]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def _common_options(default_size: int, default_epochs: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Flags of the trainers for your own data."""
    return _with([
        click.option("--data", type=click.Path(exists=True, path_type=Path), required=True,
                     help="Image folder (DIR/<label>/*.jpg), a directory with labels.csv, or a CSV file."),
        _OUT,
        click.option("--epochs", type=int, default=default_epochs, show_default=True),
        click.option("--input-size", type=int, default=default_size, show_default=True, help="Side of the square network input, px."),
        click.option("--lr", type=float, default=1e-3, show_default=True, help="Peak AdamW learning rate."),
        click.option("--weight-decay", type=float, default=0.05, show_default=True),
        click.option("--warmup-epochs", type=float, default=1.0, show_default=True),
        click.option("--val-fraction", type=float, default=0.2, show_default=True),
        click.option("--patience", type=int, default=5, show_default=True, help="Stop after this many epochs without val-loss improvement (0: never)."),
        click.option("--no-augment", "augment", flag_value=False, default=True, help="Train on unaugmented images."),
        click.option("--name", default=None, help="Bundle name (default: data folder name + task)."),
        click.option("--version", default="1", show_default=True, help="Bundle version string."),
        *_RUN_OPTIONS,
    ])


# The default-model recipes: their own defaults are the shipped bundles' settings.
_recipe_options = _with([
    click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
                 help="Folder holding ham10000/ (metadata.csv, images/, masks/) and isic2017/ (labels.csv, images/, masks/)."),
    _OUT,
    click.option("--epochs", type=int, default=None, help="Default: the recipe's."),
    click.option("--input-size", type=int, default=None, help="Training input side, px. Default: the recipe's."),
    *_RUN_OPTIONS,
])


def _report(result: Any, header: str) -> None:  # noqa: ANN401 (training.engine.TrainResult, imported lazily)
    m = result.manifest
    click.echo(f"wrote {m.task} bundle {m.name} {m.version} to {result.bundle_dir} {header}")
    width = max(map(len, m.summary_metrics), default=0)
    for key, value in m.summary_metrics.items():
        click.echo(f"  {key:>{width}}: {value:g}")
    if m.task == "classification":
        click.echo(f"  {'temperature':>{width}}: {m.temperature:.3f}")
    click.echo(f"model card: {result.bundle_dir / 'MODEL_CARD.md'}")


def _run(kind: str, fields: dict[str, Any]) -> None:
    # Imported here so `dermq --help` and the API image never load torch.
    from pipeline.models.bundle import BundleError
    from training import (
        ClassifierTrainConfig,
        SegmenterTrainConfig,
        train_classifier,
        train_segmenter,
    )

    fields["patience"] = fields["patience"] or None
    try:
        if kind == "classifier":
            result = train_classifier(ClassifierTrainConfig(**fields))
        else:
            result = train_segmenter(SegmenterTrainConfig(**fields))
    except (ValueError, BundleError) as e:  # data, label-map, checkpoint and config problems
        raise click.ClickException(str(e)) from None
    _report(result, f"({len(result.manifest.classes)} classes)")


@click.group()
def train() -> None:
    """Train model bundles (classifier, segmenter) from labelled images."""


@train.command()
@_common_options(default_size=224, default_epochs=30)
@click.option("--architecture", default="efficientnet_b0", show_default=True)
@click.option("--init", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="torchvision-layout ImageNet checkpoint (.safetensors); the head is replaced.")
@click.option("--label-map", default=None, help="Map public labels to ICD-11 codes: a bundled name (isic) or a JSON file.")
@click.option("--label-column", default=None, help="CSV label column (default: code, else diagnosis/dx/label).")
@click.option("--drop-unmapped", is_flag=True, help="Leave out images whose label has no catalogue condition.")
def classifier(**fields: Any) -> None:
    """Train a skin-condition classifier; labels are catalogue ICD-11 codes (or mapped with --label-map)."""
    _run("classifier", fields)


@train.command()
@_common_options(default_size=128, default_epochs=30)
@click.option("--architecture", default="unet", show_default=True)
def segmenter(**fields: Any) -> None:
    """Train a lesion segmenter from images with binary masks (images/ + masks/, or a CSV)."""
    _run("segmenter", fields)


def _run_recipe(kind: str, fields: dict[str, Any]) -> None:
    import time

    from pipeline.models.bundle import BundleError
    from training.dermoscopy import (
        DermoscopyClassifierConfig,
        DermoscopySegmenterConfig,
        train_dermoscopy_classifier,
        train_dermoscopy_segmenter,
    )

    fields = {k: v for k, v in fields.items() if v is not None}
    began = time.perf_counter()
    try:
        if kind == "classifier":
            result = train_dermoscopy_classifier(DermoscopyClassifierConfig(**fields))
        else:
            result = train_dermoscopy_segmenter(DermoscopySegmenterConfig(**fields))
    except (ValueError, BundleError) as e:
        raise click.ClickException(str(e)) from None
    _report(result, f"in {time.perf_counter() - began:.0f} s ({result.seconds_per_epoch:.0f} s/epoch)")


@train.command("dermoscopy-classifier")
@_recipe_options
@click.option("--restart-epochs", type=int, default=None, help="Epochs of the second (warm-restart) cycle; 0: one cycle. Default: the recipe's.")
@click.option("--init-from", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Start the second cycle from this classifier bundle (the first cycle's output) instead of running the first.")
@click.option("--version", default=None, help="Bundle version string. Default: the recipe's.")
def dermoscopy_classifier(**fields: Any) -> None:
    """Rebuild the default classifier: EfficientNet-Lite0 from ImageNet on HAM10000 + ISIC 2017."""
    _run_recipe("classifier", fields)


@train.command("dermoscopy-segmenter")
@_recipe_options
def dermoscopy_segmenter(**fields: Any) -> None:
    """Rebuild the default lesion segmenter: a Lite0-encoder U-Net on HAM10000 + ISIC 2017 masks."""
    _run_recipe("segmenter", fields)


@train.command("image-gate")
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Folder holding ham10000/, isic2017/, clinical/ and nonskin/ laid out as in shared/data.")
@click.option("--bundle", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Classifier bundle whose backbone the head reads. Default: the shipped dermoscopy classifier.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the bundle with its new head here (default: rewrite BUNDLE in place).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--augmented-views", type=int, default=2, show_default=True, help="Augmented copies of each training image.")
def image_gate(data: Path, bundle: Path | None, out: Path | None, seed: int, augmented_views: int) -> None:
    """Fit the learned image gate (skin photo or not; clinical or dermoscopic) on a classifier's pooled features."""
    import time

    from pipeline.models.bundle import SHIPPED_BUNDLES, BundleError
    from training.image_gate import ImageGateConfig, train_image_gate

    began = time.perf_counter()
    config = ImageGateConfig(data=data, bundle=bundle or SHIPPED_BUNDLES["classification"], out=out, seed=seed,
                             augmented_views=augmented_views)
    try:
        record = train_image_gate(config)
    except (ValueError, BundleError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"wrote the image gate head into {config.out or config.bundle} in {time.perf_counter() - began:.0f} s")
    width = max(map(len, record["summary_metrics"]), default=0)
    for key, value in record["summary_metrics"].items():
        click.echo(f"  {key:>{width}}: {value:g}")


__all__ = ["train"]
