"""`dermq bench polling`: latency of GET /jobs/{id} while many clients poll their jobs at once.

Two load shapes, reported separately: `paced`, where each poller waits about a
second between polls as a client following `Retry-After: 1` does, and
`closed`, where each poller asks again as soon as it has its answer (the most
the service can answer). One asyncio loop drives all pollers through aiohttp,
so the load generator itself takes little of the CPU it shares with the
service; the figures include the CPU it did take.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import click
from rich.console import Console
from rich.table import Table

from dermq.http_client import DermqClient, diagnosis_body, find_images

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "isic2017-sample" / "images"
JITTER = 0.2  # paced pollers wait think_s × (1 ± JITTER): real clients drift apart


@dataclass
class PollFigures:
    mode: str
    pollers: int
    duration_s: float
    count: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    per_s: float
    client_cpu_s: float  # CPU the load generator itself used: it shares the cores with the service
    error_kinds: dict[str, int] = field(default_factory=dict)


def _figures(mode: str, pollers: int, duration_s: float, latencies: list[float], errors: Counter[str],
             client_cpu_s: float) -> PollFigures:
    if len(latencies) >= 2:
        q = statistics.quantiles(latencies, n=100, method="inclusive")
        p50, p90, p99 = q[49], q[89], q[98]
    else:
        p50 = p90 = p99 = latencies[0] if latencies else float("nan")
    return PollFigures(
        mode=mode, pollers=pollers, duration_s=duration_s, count=len(latencies), errors=sum(errors.values()),
        p50_ms=1000 * p50, p90_ms=1000 * p90, p99_ms=1000 * p99,
        max_ms=1000 * max(latencies, default=float("nan")), per_s=len(latencies) / duration_s,
        client_cpu_s=client_cpu_s, error_kinds=dict(errors),
    )


async def _poll_load(url: str, token: str, job_ids: list[str], pollers: int, duration_s: float, think_s: float,
                     timeout_s: float, seed: int) -> PollFigures:
    import aiohttp  # a tenth of httpx's CPU per request: the load generator shares the cores it measures

    latencies: list[float] = []
    errors: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=pollers)  # a keep-alive connection per poller, as separate clients
    async with aiohttp.ClientSession(url, connector=connector, headers={"Authorization": f"Bearer {token}"},
                                     timeout=aiohttp.ClientTimeout(total=timeout_s)) as http:
        start, cpu_start = time.perf_counter(), time.process_time()
        deadline = start + duration_s

        async def poller(i: int) -> None:
            rng = random.Random(seed + i)
            job_id = job_ids[i % len(job_ids)]
            if think_s:  # clients arrive spread over one polling interval, not all in the same instant
                await asyncio.sleep(rng.uniform(0, think_s))
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                try:
                    async with http.get(f"/jobs/{job_id}") as r:
                        body = await r.read()
                    if r.status != 200:
                        errors[f"HTTP {r.status}"] += 1
                    elif json.loads(body).get("id") != job_id:
                        errors["wrong job"] += 1
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    errors[type(exc).__name__] += 1
                latencies.append(time.perf_counter() - sent)
                if think_s:
                    await asyncio.sleep(think_s * rng.uniform(1 - JITTER, 1 + JITTER))

        await asyncio.gather(*(poller(i) for i in range(pollers)))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return _figures("paced" if think_s else "closed", pollers, elapsed, latencies, errors, cpu)


def poll_load(url: str, token: str, job_ids: list[str], *, pollers: int = 200, duration_s: float = 20.0,
              think_s: float = 1.0, timeout_s: float = 10.0, seed: int = 0) -> PollFigures:
    """Run `pollers` concurrent clients polling GET /jobs/{id} for `duration_s`; think_s=0 is a closed loop."""
    if not job_ids:
        raise ValueError("need at least one job to poll")
    coro = _poll_load(url, token, job_ids, pollers, duration_s, think_s, timeout_s, seed)
    try:  # uvloop (installed with uvicorn[standard]) keeps the load generator's own cost low
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def create_jobs(client: DermqClient, images: list[Path], count: int) -> list[str]:
    items = [{"kind": "diagnosis-support", "body": diagnosis_body(images[i % len(images)]), "reference": str(i)}
             for i in range(count)]
    return [job["id"] for job in client.create_batch(items)["jobs"]]


@contextmanager
def embedded_service(console: Console) -> Iterator[tuple[str, str, str]]:
    """A throw-away `dermq up` (Redis, one worker, the API) in a temporary data dir: (url, username, password)."""
    from core.settings import Settings
    from dermq.embedded import EmbeddedStack, ensure_dev_account, free_port

    with tempfile.TemporaryDirectory(prefix="dermq-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp))
        username, password = ensure_dev_account(settings)
        console.print("starting an embedded service (Redis, 1 worker, API)...")
        with EmbeddedStack(settings, port=free_port(), quiet=True, env={"DERMQ_WORKER_METRICS_PORT": "0"}) as stack:
            stack.wait_for_workers()
            yield stack.url, username, password


def _measure(url: str, username: str, password: str, images: list[Path], job_count: int, pollers: int,
             duration_s: float, think_s: float, modes: list[str], console: Console) -> list[PollFigures]:
    client = DermqClient(url, username=username, password=password)
    token = client.http.headers["Authorization"].removeprefix("Bearer ")  # the pollers share its login
    job_ids = create_jobs(client, images, job_count)
    out = []
    for mode in modes:
        console.print(f"{mode}: {pollers} pollers for {duration_s:g} s...")
        out.append(poll_load(url, token, job_ids, pollers=pollers, duration_s=duration_s,
                             think_s=think_s if mode == "paced" else 0.0))
    return out


def _print(figures: list[PollFigures], jobs: int, console: Console) -> None:
    table = Table(title=f"GET /jobs/{{id}} of {jobs} jobs, one run (client CPU: % of one core)")
    for column in ("mode", "pollers", "requests", "errors", "p50 ms", "p90 ms", "p99 ms", "max ms", "req/s",
                   "client CPU"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for f in figures:
        table.add_row(f.mode, str(f.pollers), str(f.count), str(f.errors), f"{f.p50_ms:.1f}", f"{f.p90_ms:.1f}",
                      f"{f.p99_ms:.1f}", f"{f.max_ms:.1f}", f"{f.per_s:.0f}",
                      f"{100 * f.client_cpu_s / f.duration_s:.0f} %")
    console.print(table)
    for f in figures:
        if f.error_kinds:
            console.print(f"{f.mode} errors: " + ", ".join(f"{k}: {n}" for k, n in sorted(f.error_kinds.items())))


@click.command()
@click.option("--pollers", default=200, show_default=True, type=click.IntRange(1), help="Concurrent clients.")
@click.option("--jobs", "job_count", default=20, show_default=True, type=click.IntRange(1),
              help="Jobs created and polled (pollers share them round-robin).")
@click.option("--duration", default=20.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds of polling per mode.")
@click.option("--think", default=1.0, show_default=True, type=click.FloatRange(min=0.01),
              help="Seconds a paced poller waits between polls (Retry-After), ±20 %.")
@click.option("--mode", "modes", type=click.Choice(["paced", "closed"]), multiple=True,
              help="Load shapes to run, in order; default both.")
@click.option("--images", "image_dir", type=click.Path(exists=True, path_type=Path), default=None,
              help="Images of the jobs; default: the ISIC 2017 sample shipped with the tests.")
@click.option("--url", help="Measure a running service instead of starting an embedded one.")
@click.option("--username", envvar="DERMQ_USERNAME")
@click.option("--password", envvar="DERMQ_PASSWORD")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON instead of a table.")
def polling(pollers: int, job_count: int, duration: float, think: float, modes: tuple[str, ...],
            image_dir: Path | None, url: str | None, username: str | None, password: str | None,
            as_json: bool) -> None:
    """Print count, errors, p50/p90/p99/max latency and requests/s of GET /jobs/{id} under concurrent pollers."""
    images = find_images([image_dir or SAMPLE_DIR])
    if not images:
        raise click.ClickException("no images for the jobs: pass --images DIR")
    console = Console(stderr=as_json, width=110)
    mode_list = list(modes) or ["paced", "closed"]
    if url:
        if not (username and password):
            raise click.ClickException("--url needs --username and --password (or DERMQ_USERNAME/DERMQ_PASSWORD)")
        figures = _measure(url, username, password, images, job_count, pollers, duration, think, mode_list, console)
    else:
        with embedded_service(console) as (url, username, password):
            figures = _measure(url, username, password, images, job_count, pollers, duration, think, mode_list,
                               console)
    if as_json:
        click.echo(json.dumps([asdict(f) for f in figures], indent=2))
    else:
        _print(figures, job_count, console)
