"""How a worker feeds its model: images per model call, the batcher's wait, and jobs in flight.

Each is a setting (`DERMQ_BATCH_MAX_SIZE`, `DERMQ_BATCH_MAX_WAIT_MS`, `DERMQ_WORKER_CONCURRENCY`,
`DERMQ_MODEL_THREADS`);
left unset, it takes the default of the device the model runs on. The CPU defaults were measured
with `dermq bench batching` and `dermq bench service` (figures in docs/performance.md); the CUDA
defaults are on paper, because no GPU was at hand to measure them: state yours with the settings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from core.settings import Settings


@dataclass(frozen=True)
class ServingShape:
    batch_max_size: int
    batch_max_wait_ms: float
    concurrency: int  # jobs in flight per worker process (Celery threads)
    model_threads: int | None = None  # torch's intra-op threads for the model; None: torch's own default


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what this process may run on (a container's share)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


DEVICE_DEFAULTS: dict[str, ServingShape] = {
    # On a CPU a larger batch buys nothing per image (oneDNN already spreads one image over the cores),
    # so batches stay small and the batcher barely waits; two jobs in flight keep both cores busy
    # while one job's images are in decode, quality or heat maps. The model gets half the cores and
    # the jobs' own CPU stages (decode, quality views, heat maps), which run beside it, the other half:
    # on 2 cores one model thread gave a lower sync p50 (55-57 against 64-67 ms) and no less
    # throughput than torch's default of all cores (docs/performance.md).
    "cpu": ServingShape(batch_max_size=4, batch_max_wait_ms=2.0, concurrency=2, model_threads=max(1, _cores() // 2)),
    # A GPU wants many images per call; enough job threads to keep that batch full while they decode.
    "cuda": ServingShape(batch_max_size=32, batch_max_wait_ms=5.0, concurrency=8),
}


def serving_shape(settings: Settings, device: torch.device) -> ServingShape:
    """The device's defaults, each overridden by its setting where one is given."""
    default = DEVICE_DEFAULTS.get(device.type, DEVICE_DEFAULTS["cpu"])
    return ServingShape(
        batch_max_size=settings.batch_max_size or default.batch_max_size,
        batch_max_wait_ms=default.batch_max_wait_ms if settings.batch_max_wait_ms is None else settings.batch_max_wait_ms,
        concurrency=settings.worker_concurrency or default.concurrency,
        model_threads=settings.model_threads or default.model_threads,
    )


def apply_model_threads(shape: ServingShape) -> None:
    """Give the model its share of the cores (process-wide: a worker process calls this once)."""
    if shape.model_threads is not None:
        torch.set_num_threads(shape.model_threads)
