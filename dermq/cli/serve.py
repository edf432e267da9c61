"""`dermq up` (everything, embedded), `dermq api` and `dermq worker` (the parts, for production).

`dermq worker` is the worker's entry point, the one place a worker's Celery app is built: from the
settings it starts with (`create_celery(settings)`), with the tasks of `workers.tasks` registered on
it, handed to the worker runtime and run. Nothing builds a Celery app at import time.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path

import click

from core.settings import Settings


def _settings(data_dir: Path | None) -> Settings:
    if data_dir is not None:
        os.environ["DERMQ_DATA_DIR"] = str(data_dir)
    from core.settings import get_settings

    get_settings.cache_clear()
    return get_settings()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--data-dir", type=click.Path(path_type=Path), help="Default: $DERMQ_DATA_DIR or ./data")
@click.option("--workers", default=1, show_default=True, type=int, help="Worker processes.")
@click.option("--verbose", is_flag=True, help="Show the parts' output (Redis, API, workers) here instead of in "
              "<data dir>/logs/<part>.log.")
def up(host: str, port: int, data_dir: Path | None, workers: int, verbose: bool) -> None:
    """Start Redis (embedded unless DERMQ_REDIS_URL is set), a worker and the API, restarting any part that
    exits; Ctrl-C stops all."""
    from dermq.embedded import EmbeddedStack, ensure_dev_account

    settings = _settings(data_dir)
    _check_startup(settings, host)  # also creates <data_dir>/jwt-secret, once, unless DERMQ_JWT_SECRET is set
    username, password = ensure_dev_account(settings)
    stack = EmbeddedStack(settings, host=host, port=port, workers=workers, quiet=not verbose)
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
    # Ctrl-C always stops the stack, even when started from a process that ignores SIGINT (a script's
    # background job inherits SIG_IGN, and so would every part started from it).
    signal.signal(signal.SIGINT, _stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, handled)  # nor blocked (a blocked mask is inherited too)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if previous[signum] is not signal.SIG_IGN:  # under nohup a closed terminal still stops nothing
            signal.signal(signum, _stop)
    try:
        click.echo("starting dermq (Redis, worker, API)...")
        try:
            stack.start()
            stack.supervise()  # a part that exits is restarted with backoff; nothing else stops the stack
            stack.wait_for_workers()
        except (RuntimeError, TimeoutError) as exc:
            where = "the output above" if verbose else f"the logs in {stack.log_dir.resolve()}"
            raise click.ClickException(f"dermq did not start: {exc}; see {where}") from None
        click.echo(_status_block(stack, username, password, verbose))
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


def _status_block(stack, username: str, password: str, verbose: bool) -> str:
    """What a person needs once the stack is ready, printed once."""
    from dermq.embedded import DEV_CREDENTIALS_FILE

    settings = stack.settings
    kept = ("from DERMQ_DEV_PASSWORD" if settings.dev_password is not None
            else f"kept in {(settings.data_dir / DEV_CREDENTIALS_FILE).resolve()}")
    rows = [
        ("URL", stack.url),
        ("viewer", f"{stack.url}/ui"),
        ("API docs", f"{stack.url}/docs"),
        ("account", f"{username}  password {password}  ({kept})"),
        ("data directory", str(settings.data_dir.resolve())),
        ("logs", "this terminal (--verbose)" if verbose else str(stack.log_dir.resolve())),
        ("log in", f"curl -s -X POST {stack.url}/login -d username={username} -d password={password}"),
    ]
    lines = [f"  {name + ':':<16}{value}" for name, value in rows]
    return "\n".join(["", "dermq is running", *lines, "Press Ctrl-C to stop.", ""])


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
@click.option("--concurrency", type=int, help="Jobs in flight (threads); default DERMQ_WORKER_CONCURRENCY, else the device's default.")
@click.option("--queues", help="Comma-separated, highest priority first; default interactive,webhooks,batch.")
@click.option("--loglevel", default="INFO", show_default=True)
def worker(concurrency: int | None, queues: str | None, loglevel: str) -> None:
    """Run one worker process (one per GPU): loads the model once, batches images across jobs."""
    settings = _settings(None)
    settings.check_production()
    logging.basicConfig(level=loglevel.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    import workers.tasks  # noqa: F401  (the shared tasks, registered on the app below, and the start-up hooks)
    from pipeline.models.bundle import BundleError
    from workers.celery_app import create_celery
    from workers.runtime import init_runtime
    from workers.serving_shape import apply_model_threads

    app = create_celery(settings)
    runtime = init_runtime(settings, app)
    try:  # before taking any task: a bad bundle stops the worker here with its reason
        shape = runtime.models.shape  # batch size and threads suit the device the model landed on
    except (BundleError, ValueError) as exc:
        raise click.ClickException(f"cannot load the configured model: {exc}") from None
    apply_model_threads(shape)

    queue_list = queues or ",".join(settings.worker_queues)
    app.worker_main([
        "worker",
        "--pool=threads",
        f"--concurrency={concurrency or shape.concurrency}",
        f"--queues={queue_list}",
        f"--loglevel={loglevel}",
        f"--hostname=dermq-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ])
