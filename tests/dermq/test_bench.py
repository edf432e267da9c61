"""`dermq bench service`: per-stage timings, forward rates and end-to-end figures from one run."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from dermq.cli import main
from dermq.cli.bench import SAMPLE_DIR, stage_profile
from dermq.http_client import find_images

pytestmark = pytest.mark.slow


def test_stage_profile_times_every_stage_of_the_worker() -> None:
    stages = stage_profile(find_images([SAMPLE_DIR])[:3], 3)
    forward = "forward (batched; quality views alongside)"
    assert list(stages) == ["decode", "preprocess", forward, "quality (mediaValidity)",
                            "heat maps + per-image conclusions", "report assembly", "segmentation",
                            "severity report (one aPASI site)"]
    assert all(ms > 0 for ms in stages.values()), stages
    # A forward pass of a convolutional network costs more than assembling the JSON around it.
    assert stages[forward] > stages["report assembly"], stages


def test_bench_service_prints_rates_ratios_and_stages(service) -> None:
    result = CliRunner().invoke(main, ["bench", "service", "--url", service.url, "--username", service.username,
                                       "--password", service.password, "--count", "4", "--sync-requests", "2"])
    assert result.exit_code == 0, result.output
    for row in ("ratio end-to-end / bare", "sync request p50", "sync request p95", "ratio served / B0 reference forward",
                "decode", "quality (mediaValidity)", "segmentation", "diagnosis pipeline, decode to report",
                "around the model / bare forward"):
        assert row in result.output, (row, result.output)


def test_bench_batching_prints_the_cost_per_image_by_batch_size() -> None:
    from workers.serving_shape import DEVICE_DEFAULTS

    result = CliRunner().invoke(main, ["bench", "batching", "--per-size", "8"])
    assert result.exit_code == 0, result.output
    rows = {int(m.group(1)): float(m.group(2)) for m in re.finditer(r"│\s+(\d+)[^│]*│\s+([\d.]+) │", result.output)}
    assert sorted(rows) == [1, 2, 4, 8, 16, 32] and all(ms > 0 for ms in rows.values()), result.output
    assert f"{DEVICE_DEFAULTS['cpu'].batch_max_size}  (the worker's batch size)" in result.output
