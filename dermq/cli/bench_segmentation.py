"""`dermq bench segmentation`: per-image Jaccard/Dice of a lesion segmenter against reference masks."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # torch is imported only when the command runs
    from pipeline.segmentation import Segmenter

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "isic2017-sample"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def find_pairs(data: Path) -> list[tuple[Path, Path]]:
    """(image, mask) pairs of an ISIC-layout folder: images/<id>.jpg and masks/<id>_segmentation.png."""
    images = sorted(p for p in (data / "images").glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    missing = [p.name for p in images if not (data / "masks" / f"{p.stem}_segmentation.png").is_file()]
    if missing:
        raise click.ClickException(f"no masks/<id>_segmentation.png for {len(missing)} images, e.g. {missing[:3]}")
    return [(p, data / "masks" / f"{p.stem}_segmentation.png") for p in images]


def _load_segmenter(bundle: Path | None) -> Segmenter:
    from pipeline.models.bundle import BundleError, load_bundle
    from pipeline.segmentation import ClassicalSegmenter, LearnedSegmenter

    if bundle is None:
        return ClassicalSegmenter()
    try:
        return LearnedSegmenter.from_bundle(load_bundle(bundle))
    except BundleError as e:
        raise click.ClickException(str(e)) from None


@click.command("segmentation")
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), default=SAMPLE_DATA,
              show_default="the ISIC 2017 sample shipped with the tests",
              help="Folder with images/ and masks/<id>_segmentation.png.")
@click.option("--bundle", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="A segmentation model bundle to evaluate instead of the classical method.")
def segmentation(data: Path, bundle: Path | None) -> None:
    """Print per-image Jaccard and Dice, their summary, and milliseconds per image."""
    import numpy as np
    from PIL import Image

    from pipeline.segmentation import dice, jaccard

    pairs = find_pairs(data)
    if not pairs:
        raise click.ClickException(f"no images under {data / 'images'}")
    segmenter = _load_segmenter(bundle)
    table = Table(title=f"lesion segmentation: {getattr(segmenter, 'method', 'custom')}")
    for column in ("image", "size", "Jaccard", "Dice", "ms"):
        table.add_column(column, justify="left" if column == "image" else "right")
    jac, dic, ms = [], [], []
    for image_path, mask_path in pairs:
        rgb = np.asarray(Image.open(image_path).convert("RGB"))
        truth = np.asarray(Image.open(mask_path).convert("L")) > 127
        start = time.perf_counter()
        predicted = segmenter.segment(rgb).binary
        ms.append(1000 * (time.perf_counter() - start))
        jac.append(jaccard(predicted, truth))
        dic.append(dice(predicted, truth))
        table.add_row(image_path.stem, f"{rgb.shape[1]}x{rgb.shape[0]}", f"{jac[-1]:.3f}", f"{dic[-1]:.3f}", f"{ms[-1]:.0f}")
    console = Console()
    console.print(table)
    console.print(
        f"n={len(jac)}  Jaccard mean {statistics.fmean(jac):.3f}  median {statistics.median(jac):.3f}  "
        f"min {min(jac):.3f}  |  Dice mean {statistics.fmean(dic):.3f}  |  {statistics.fmean(ms):.0f} ms/image"
    )
