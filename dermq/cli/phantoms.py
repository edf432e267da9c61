"""`dermq phantoms`: write a labelled synthetic dataset (images, masks, labels.csv) for training and tests."""

from __future__ import annotations

from pathlib import Path

import click
from tqdm import tqdm


def _codes(value: str | None) -> list[str] | None:
    return [code.strip() for code in value.split(",") if code.strip()] if value else None


@click.command()
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write images/<ICD-11 code>/, masks/ and labels.csv into.")
@click.option("--count", default=200, show_default=True, type=click.IntRange(min=1), help="Images, balanced over classes.")
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same dataset.")
@click.option("--size", default=256, show_default=True, type=click.IntRange(min=32), help="Image side in pixels.")
@click.option("--classes", default=None, help="Comma-separated ICD-11 codes (default: every phantom class).")
def phantoms(out: Path, count: int, seed: int, size: int, classes: str | None) -> None:
    """Synthetic skin photographs with exact ground truth (lesion masks, ICD-11 labels, severity signs)."""
    from training.phantoms import PHANTOM_CLASSES, export_dataset

    codes = _codes(classes)
    unknown = [code for code in codes or [] if code not in PHANTOM_CLASSES]
    if unknown:
        raise click.BadParameter(f"unknown {', '.join(unknown)}; known: {', '.join(PHANTOM_CLASSES)}",
                                 param_hint="--classes")
    with tqdm(total=count, unit="image", desc="phantoms") as bar:
        csv_path = export_dataset(out, count=count, seed=seed, size=size, classes=codes, progress=bar.update)
    click.echo(f"wrote {count} images and {csv_path}")
