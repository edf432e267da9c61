"""A large legal request keeps the event loop free: /healthz answers promptly while it is parsed and checked.

The issue measured a 2.1 s /healthz stall behind one 36 MB request, because the images
were decoded on the event loop; the bound asked for is a p99 under 50 ms.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from typing import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image

from support import Service, running_service

pytestmark = pytest.mark.slow

IMAGES = 14  # 3-Mpx photographs, about 2.7 MB of base64 each: a 38 MB request
PROBES = 100
P99_LIMIT_S = 0.050


@pytest.fixture(scope="module")
def roomy(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(redis_url, tmp_path_factory.mktemp("loop"), DERMQ_MAX_IMAGE_BYTES="4000000",
                         DERMQ_MAX_IMAGE_PIXELS="40000000") as svc:
        yield svc


def large_body() -> bytes:
    rng = np.random.default_rng(0)
    # Skin-toned noise: incompressible enough that 3 Mpx stay about 2 MB as a JPEG.
    pixels = np.clip(rng.normal((200, 150, 120), 40, (1500, 2000, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=85)
    data = base64.b64encode(buf.getvalue()).decode()
    return json.dumps({"payload": [{"contentAttachment": {"data": data, "title": f"view {i}"}}
                                   for i in range(IMAGES)]}).encode()


def test_healthz_stays_fast_while_a_large_request_is_handled(roomy: Service) -> None:
    body = large_body()
    assert len(body) > 30_000_000
    # The same Idempotency-Key throughout: this first request makes the job (cancelled at once, so the
    # worker does not compete for the two cores); the measured replays are parsed and checked in full,
    # then answered with that job, storing nothing.
    headers = {"Content-Type": "application/json", "Prefer": "respond-async", "Idempotency-Key": "loop-test"}
    with roomy.client() as api:
        first = api.post("/diagnosis-support", content=body, headers=headers)
        assert first.status_code == 202, first.text[:300]
        job_id = first.json()["id"]
        # 409: already over (another stack's worker on the same broker may have taken and failed it).
        assert api.delete(f"/jobs/{job_id}").status_code in (200, 409)
    time.sleep(2)  # the worker notices a cancellation between stages: let it drop the job first
    in_flight = threading.Event()
    done = threading.Event()
    statuses: list[int] = []
    job_ids: set[str] = set()

    def send_repeatedly() -> None:
        with roomy.client() as api:
            while not done.is_set():
                in_flight.set()
                r = api.post("/diagnosis-support", content=body, headers=headers)
                in_flight.clear()
                statuses.append(r.status_code)
                job_ids.add(r.json().get("id", ""))

    sender = threading.Thread(target=send_repeatedly, daemon=True)
    sender.start()
    latencies: list[float] = []
    deadline = time.monotonic() + 240
    with httpx.Client(base_url=roomy.url, timeout=30) as probe:
        probe.get("/healthz")
        while len(latencies) < PROBES and time.monotonic() < deadline:
            if not in_flight.wait(1):
                continue
            start = time.perf_counter()
            assert probe.get("/healthz").status_code == 200
            elapsed = time.perf_counter() - start
            if in_flight.is_set():  # only probes that overlapped a request count
                latencies.append(elapsed)
            time.sleep(0.01)
    done.set()
    sender.join(120)
    assert statuses and set(statuses) == {202}, statuses
    assert job_ids == {job_id}, "the replays must not have made jobs"
    assert len(latencies) == PROBES, f"only {len(latencies)} probes overlapped a request"
    p99 = float(np.percentile(latencies, 99))
    print(f"/healthz during {len(statuses)} requests of {len(body) / 1e6:.0f} MB: median "
          f"{1000 * float(np.median(latencies)):.1f} ms, p99 {1000 * p99:.1f} ms, max {1000 * max(latencies):.1f} ms")
    assert p99 < P99_LIMIT_S, f"/healthz p99 {1000 * p99:.0f} ms with a large request in flight"
