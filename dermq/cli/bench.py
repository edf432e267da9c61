"""`dermq bench [service]`: end-to-end images/s through API, broker, storage and worker vs. the bare model forward pass."""

from __future__ import annotations

import functools
import statistics
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from dermq.http_client import DermqClient, diagnosis_body, find_images

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "isic2017-sample" / "images"


def _forward_rate(classifier, images: list[Path], count: int, size: int) -> float:  # noqa: ANN001 (torch imported lazily)
    import numpy as np
    import torch
    from PIL import Image

    tensors = [classifier.preprocess(np.asarray(Image.open(p).convert("RGB"))) for p in images]
    batch = torch.stack([tensors[i % len(tensors)] for i in range(size)])
    classifier.predict(batch)  # warm-up
    n, start = 0, time.perf_counter()
    while n < count:
        classifier.predict(batch)
        n += size
    return n / (time.perf_counter() - start)


def bare_forward_rate(images: list[Path], count: int) -> tuple[float, float, int, str]:
    """Images/s of the worker's own classifier and of the EfficientNet-B0 224-px reference
    (same images, batches of the worker's batch size), and the served model's name."""
    from core.settings import get_settings
    from pipeline.catalogue import load_catalogue
    from pipeline.classify import Classifier
    from pipeline.models.bundle import reference_bundle
    from workers.model_cache import load_classifier
    from workers.serving_shape import serving_shape
    from workers.storage import create_store

    settings = get_settings()
    loaded = load_classifier(settings, create_store(settings))
    size = serving_shape(settings, loaded.classifier.device).batch_max_size
    served = _forward_rate(loaded.classifier, images, count, size)
    reference = Classifier.from_bundle(reference_bundle(load_catalogue().codes), device=loaded.classifier.device)
    baseline = _forward_rate(reference, images, count, size)
    m = loaded.bundle.manifest
    return served, baseline, size, f"{m.name}@{m.version} ({m.architecture}, {m.input_size} px)"


# The diagnosis pipeline's progress stages, timed from each stage's first report to the next stage's.
_PIPELINE_STAGES = {"decode": "decode", "preprocess": "preprocess", "classification": "forward (batched; quality views alongside)",
                    "quality": "quality (mediaValidity)", "explainability": "heat maps + per-image conclusions",
                    "report": "report assembly"}


SEVERITY_STAGE = "severity report (one aPASI site)"


def stage_profile(images: list[Path], count: int) -> dict[str, float]:
    """Milliseconds per image of each stage a worker runs, in process, with the worker's own models and
    settings: the diagnosis pipeline (decoding each image as the worker's loaders do) timed through its
    progress reports, the segmenter severity jobs use, and a whole one-site severity report."""
    import torch

    from core.jobs import SeveritySpec
    from core.settings import get_settings
    from pipeline.severity.systems import SYSTEMS
    from workers.model_cache import load_classifier, load_segmenter_from, resolve_source
    from workers.runtime import ModelSet
    from workers.serving_shape import apply_model_threads
    from workers.storage import create_store
    from workers.tasks import decode_stored

    settings = get_settings()
    store = create_store(settings)
    # The worker's own model set: its batcher (device batch size), its pipeline, its segmenter.
    models = ModelSet(settings, load_classifier(settings, store),
                      load_segmenter_from(resolve_source(settings, store, "segmentation"), settings, store))
    pipeline, segmenter = models.diagnosis, models.severity.segmenter  # as severity jobs segment: batched
    threads = torch.get_num_threads()
    apply_model_threads(models.shape)  # the worker's share of the cores for the model; restored below
    raw = [images[i % len(images)].read_bytes() for i in range(count)]

    # Diagnosis images as the worker's loaders decode them (inside the pipeline, so timed as its "decode");
    # severity images at the working resolution, as their masks are returned at that size.
    loaders = [functools.partial(decode_stored, settings, b, reduce_to=settings.diagnosis_decode_side) for b in raw]
    full = [decode_stored(settings, b) for b in raw]
    # A one-site aPASI report (quality, segmentation, the signs at full size, masks), the client's
    # answers filled in: what a severity job costs per image beyond its decode.
    apasi = SYSTEMS["apasi"]
    spec = SeveritySpec.model_validate({"system": "apasi", "mode": "local", "condition": {"code": "EA90"}, "sites": [
        {"bodySite": "armLeft", "image": 0, "items": {i.code: i.minimum for i in apasi.clinician_items()}}]})
    totals = dict.fromkeys([*_PIPELINE_STAGES.values(), "segmentation", SEVERITY_STAGE], 0.0)
    for rep in range(2):  # the first round warms up (allocations, oneDNN kernels); the second is measured
        totals = dict.fromkeys(totals, 0.0)
        marks: list[tuple[str, float]] = []
        pipeline.run("bench", loaders,
                     lambda stage, done, total: marks.append((stage, time.perf_counter())))
        marks.append(("end", time.perf_counter()))
        for (stage, at), (_, nxt) in zip(marks, marks[1:]):
            totals[_PIPELINE_STAGES[stage]] += nxt - at
        began = time.perf_counter()
        for image in full:
            segmenter.segment(image.rgb)
        totals["segmentation"] = time.perf_counter() - began
        began = time.perf_counter()
        for image in full:
            models.severity.run("bench", spec, [image])
        totals[SEVERITY_STAGE] = time.perf_counter() - began
    models.close()
    torch.set_num_threads(threads)
    return {stage: 1000.0 * seconds / count for stage, seconds in totals.items()}


def end_to_end(client: DermqClient, images: list[Path], count: int, sync_requests: int) -> dict[str, float]:
    bodies = [diagnosis_body(images[i % len(images)]) for i in range(count)]
    start = time.perf_counter()
    reply = client.create_batch([{"kind": "diagnosis-support", "body": b, "reference": str(i)} for i, b in enumerate(bodies)])
    client.wait_batches([reply["id"]], poll_s=0.1)
    elapsed = time.perf_counter() - start
    succeeded = client.batch(reply["id"])["counts"]["succeeded"]
    latencies = []
    for i in range(sync_requests):
        t = time.perf_counter()
        r = client.diagnose(bodies[i % len(bodies)])
        if r.status_code != 200:
            raise click.ClickException(f"synchronous request answered {r.status_code}: {r.text[:300]}")
        latencies.append(time.perf_counter() - t)
    latencies.sort()
    return {
        "rate": succeeded / elapsed,
        "succeeded": succeeded,
        "p50": statistics.median(latencies),
        "p95": latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))],
    }


@click.group(invoke_without_command=True)
@click.pass_context
def bench(ctx: click.Context) -> None:
    """Benchmarks: `service` (the default), `batching`, `segmentation`, `gate` and `polling`."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(service)


@bench.command()
@click.option("--images", "image_dir", type=click.Path(exists=True, path_type=Path), default=None,
              help="Default: the ISIC 2017 sample shipped with the tests.")
@click.option("--count", default=80, show_default=True, type=int, help="Images through the whole service.")
@click.option("--sync-requests", default=20, show_default=True, type=int, help="Synchronous requests timed.")
@click.option("--url", help="Measure a running service instead of starting an embedded one.")
@click.option("--username", envvar="DERMQ_USERNAME")
@click.option("--password", envvar="DERMQ_PASSWORD")
def service(image_dir: Path | None, count: int, sync_requests: int, url: str | None, username: str | None,
          password: str | None) -> None:
    """Print end-to-end images/s, bare forward images/s and their ratio, plus sync latency p50/p95."""
    images = find_images([image_dir or SAMPLE_DIR])
    if not images:
        raise click.ClickException("no images to benchmark with: pass --images DIR")
    console = Console()
    console.print(f"bare model forward pass on {len(images)} images...")
    bare, baseline, batch_size, served = bare_forward_rate(images, max(count, 64))
    console.print("per-stage timing in process...")
    stages = stage_profile(images, min(count, 40))
    if url:
        e2e = end_to_end(DermqClient(url, username=username, password=password), images, count, sync_requests)
    else:
        from dermq.cli.bench_polling import embedded_service

        with embedded_service(console) as (stack_url, user, pw):
            e2e = end_to_end(DermqClient(stack_url, username=user, password=pw), images, count, sync_requests)
    table = Table(title="dermq bench (one run, same machine)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row(f"bare forward (batch {batch_size}): {served}", f"{bare:.2f} images/s")
    table.add_row("bare forward: EfficientNet-B0 224 px reference", f"{baseline:.2f} images/s")
    table.add_row("ratio served / B0 reference forward", f"{bare / baseline:.3f}")
    table.add_row(f"end to end ({e2e['succeeded']} images, batch call)", f"{e2e['rate']:.2f} images/s")
    table.add_row("ratio end-to-end / bare", f"{e2e['rate'] / bare:.3f}")
    table.add_row(f"sync request p50 ({sync_requests} requests)", f"{1000 * e2e['p50']:.0f} ms")
    table.add_row("sync request p95", f"{1000 * e2e['p95']:.0f} ms")
    console.print(table)
    per_image = Table(title="per image, in process (ms)")
    per_image.add_column("stage")
    per_image.add_column("ms", justify="right")
    for stage, ms in stages.items():
        per_image.add_row(stage, f"{ms:.1f}")
    # The model runs on the batcher's thread while the next image is decoded, so the stages above are wall
    # time on the pipeline's thread; what the pipeline adds to the model is its whole wall time per image
    # less the bare forward pass's (same batch size, same run).
    wall = sum(ms for stage, ms in stages.items() if stage not in ("segmentation", SEVERITY_STAGE))
    model = 1000.0 / bare
    per_image.add_row("diagnosis pipeline, decode to report", f"{wall:.1f}")
    per_image.add_row("bare forward (from the rate above)", f"{model:.1f}")
    per_image.add_row("around the model / bare forward", f"{(wall - model) / model:.2f}x")
    console.print(per_image)
