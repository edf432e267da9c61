"""`dermq up` (everything, embedded), `dermq api` and `dermq worker` (the parts, for production)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path

import click

from dermq.settings import Settings


def _settings(data_dir: Path | None) -> Settings:
    if data_dir is not None:
        os.environ["DERMQ_DATA_DIR"] = str(data_dir)
    from dermq.settings import get_settings

    get_settings.cache_clear()
    return get_settings()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--data-dir", type=click.Path(path_type=Path), help="Default: $DERMQ_DATA_DIR or ./data")
@click.option("--workers", default=1, show_default=True, type=int, help="Worker processes.")
def up(host: str, port: int, data_dir: Path | None, workers: int) -> None:
    """Start Redis (embedded unless DERMQ_REDIS_URL is set), a worker and the API, restarting any part that
    exits; Ctrl-C stops all."""
    from dermq.embedded import EmbeddedStack, ensure_dev_account

    settings = _settings(data_dir)
    _check_startup(settings, host)  # also creates <data_dir>/jwt-secret, once, unless DERMQ_JWT_SECRET is set
    username, password = ensure_dev_account(settings)
    stack = EmbeddedStack(settings, host=host, port=port, workers=workers)
    # The supervisor's notes (a part exited, restarted) go to the terminal beside the parts' own output.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("dermq.embedded").setLevel(logging.INFO)
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.getsignal(signum) for signum in handled}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if previous[signum] is not signal.SIG_IGN:  # under nohup a closed terminal still stops nothing
            signal.signal(signum, _stop)
    try:
        click.echo("starting dermq (Redis, worker, API)...")
        stack.start()
        stack.supervise()  # a part that exits is restarted with backoff; nothing else stops the stack
        stack.wait_for_workers()
        click.echo(
            f"\ndermq is running at {stack.url}  (API docs: {stack.url}/docs)\n"
            f"  data directory: {settings.data_dir.resolve()}\n"
            f"  development account: username={username} password={password}\n"
            f"  log in:  curl -s -X POST {stack.url}/login -d username={username} -d password={password}\n"
            "Press Ctrl-C to stop.\n"
        )
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        click.echo("\nstopping dermq (workers finish their current job)...")
    finally:
        # The parts run in their own sessions: an impatient second Ctrl-C must not leave them orphaned.
        for signum in handled:
            signal.signal(signum, signal.SIG_IGN)
        stack.stop()
        for signum, handler in previous.items():
            if handler is not None:  # None: set outside Python, nothing to put back
                signal.signal(signum, handler)
        click.echo("stopped.")


def _check_startup(settings: Settings, host: str) -> None:
    """Production secrets, and no built-in or short signing secret on a non-loopback address, in any mode."""
    try:
        settings.check_production()
        settings.check_listen(host)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--processes", default=1, show_default=True, type=int, help="Uvicorn worker processes.")
def api(host: str, port: int, processes: int) -> None:
    """Run the HTTP API alone (uvicorn)."""
    import uvicorn

    _check_startup(_settings(None), host)
    uvicorn.run("api.main:create_app", factory=True, host=host, port=port, workers=processes,
                proxy_headers=True, log_level="info")


@click.command()
@click.option("--concurrency", type=int, help="Jobs in flight (threads); default DERMQ_WORKER_CONCURRENCY.")
@click.option("--queues", help="Comma-separated, highest priority first; default interactive,batch.")
@click.option("--loglevel", default="INFO", show_default=True)
def worker(concurrency: int | None, queues: str | None, loglevel: str) -> None:
    """Run one worker process (one per GPU): loads the model once, batches images across jobs."""
    settings = _settings(None)
    settings.check_production()
    logging.basicConfig(level=loglevel.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    import workers.tasks  # noqa: F401  (registers the task and the start-up hooks)
    from pipeline.models.bundle import BundleError
    from workers.celery_app import celery_app
    from workers.runtime import get_runtime

    try:  # before taking any task: a bad bundle stops the worker here with its reason
        get_runtime().models
    except (BundleError, ValueError) as exc:
        raise click.ClickException(f"cannot load the configured model: {exc}") from None

    queue_list = queues or f"{settings.queue_interactive},{settings.queue_batch}"
    celery_app.worker_main([
        "worker",
        "--pool=threads",
        f"--concurrency={concurrency or settings.worker_concurrency}",
        f"--queues={queue_list}",
        f"--loglevel={loglevel}",
        f"--hostname=dermq-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ])
