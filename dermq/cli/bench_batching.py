"""`dermq bench batching`: the served classifier's cost per image at each batch size, on this device."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from dermq.http_client import find_images

SIZES = (1, 2, 4, 8, 16, 32)


@click.command()
@click.option("--images", "image_dir", type=click.Path(exists=True, path_type=Path), default=None,
              help="Default: the ISIC 2017 sample shipped with the tests.")
@click.option("--per-size", default=96, show_default=True, type=int, help="Images timed at each batch size.")
def batching(image_dir: Path | None, per_size: int) -> None:
    """Milliseconds per image of the model call at batch sizes 1-32 (one run), beside the worker's default."""
    import numpy as np
    import torch
    from PIL import Image

    from core.settings import get_settings
    from dermq.cli.bench import SAMPLE_DIR
    from workers.model_cache import load_classifier
    from workers.serving_shape import DEVICE_DEFAULTS, serving_shape
    from workers.storage import create_store

    settings = get_settings()
    classifier = load_classifier(settings, create_store(settings)).classifier
    images = find_images([image_dir or SAMPLE_DIR])
    if not images:
        raise click.ClickException("no images to benchmark with: pass --images DIR")
    tensors = [classifier.preprocess(np.asarray(Image.open(p).convert("RGB"))) for p in images]
    per_image: dict[int, float] = {}
    for size in SIZES:
        batch = torch.stack([tensors[i % len(tensors)] for i in range(size)])
        classifier.predict(batch)  # warm-up: oneDNN picks its kernels per shape
        calls = max(2, per_size // size)
        start = time.perf_counter()
        for _ in range(calls):
            classifier.predict(batch)
        per_image[size] = 1000.0 * (time.perf_counter() - start) / (calls * size)
    best = min(per_image.values())
    default = serving_shape(settings, classifier.device).batch_max_size
    table = Table(title=f"model call per image on {classifier.device} ({torch.get_num_threads()} threads, one run)")
    for column in ("batch", "ms / image", "vs best"):
        table.add_column(column, justify="right")
    for size, ms in per_image.items():
        mark = "  (the worker's batch size)" if size == default else ""
        table.add_row(f"{size}{mark}", f"{ms:.2f}", f"{ms / best:.2f}x")
    console = Console()
    console.print(table)
    device_default = DEVICE_DEFAULTS.get(classifier.device.type, DEVICE_DEFAULTS["cpu"]).batch_max_size
    console.print(f"the {classifier.device.type} default batch size is {device_default}; "
                  "DERMQ_BATCH_MAX_SIZE overrides it")
