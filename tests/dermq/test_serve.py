"""`dermq worker` builds its Celery app from the settings it starts with, and refuses to start on a corrupt
bundle, saying why, instead of taking tasks it cannot run; `dermq up` prints one status block and sends the
parts' output to files."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import torch
from celery import Celery
from click.testing import CliRunner

from core.settings import get_settings
from dermq.cli.serve import worker
from dermq.embedded import free_port, wait_for
from support import demo_bundle
from workers.serving_shape import ServingShape


def test_worker_builds_its_app_from_its_settings_and_runs_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import workers.runtime
    from workers.celery_app import DELIVER_WEBHOOK_TASK, RUN_JOB_TASK

    broker = "redis://127.0.0.1:1/7"  # never reached: the worker itself does not run here
    for name in [k for k in os.environ if k.startswith("DERMQ_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DERMQ_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DERMQ_BROKER_URL", broker)
    monkeypatch.setenv("DERMQ_QUEUE_BATCH", "dermq-entry-test.batch")
    monkeypatch.setattr(workers.runtime, "_runtime", None)
    # No model load: a stand-in whose device asks for 3 job threads.
    loaded = SimpleNamespace(shape=ServingShape(batch_max_size=4, batch_max_wait_ms=2.0, concurrency=3, model_threads=1))
    monkeypatch.setattr(workers.runtime.WorkerRuntime, "models", property(lambda self: loaded))
    ran: list[tuple[Celery, list[str]]] = []
    monkeypatch.setattr(Celery, "worker_main", lambda self, argv=None: ran.append((self, argv)))
    threads = torch.get_num_threads()
    try:
        result = CliRunner().invoke(worker, [])
        runtime = workers.runtime.get_runtime() if result.exit_code == 0 else None
        model_threads = torch.get_num_threads()
    finally:
        get_settings.cache_clear()  # built from this test's environment
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    [(app, argv)] = ran
    assert app.conf.broker_url == broker
    assert app.conf.task_default_queue == "dermq-entry-test.batch"
    assert {RUN_JOB_TASK, DELIVER_WEBHOOK_TASK} <= set(app.tasks) and app.tasks[RUN_JOB_TASK].app is app
    # The runtime publishes (webhooks, resent jobs) through the very app the worker runs.
    assert runtime is not None and runtime.app is app and runtime.settings.effective_broker_url == broker
    assert "--concurrency=3" in argv and f"--queues={','.join(runtime.settings.worker_queues)}" in argv
    assert model_threads == 1  # the model's share of the cores, set before the first task


def test_worker_exits_on_a_corrupt_bundle(tmp_path: Path) -> None:
    bundle = demo_bundle(tmp_path / "bundle")
    weights = bundle / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    env = {**os.environ, "DERMQ_MODEL_DIR": str(bundle), "DERMQ_DATA_DIR": str(tmp_path / "data"),
           "DERMQ_WORKER_METRICS_PORT": "0", "DERMQ_REDIS_URL": "redis://127.0.0.1:1/0"}
    done = subprocess.run([sys.executable, "-m", "dermq.cli", "worker"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert "cannot load the configured model" in done.stderr and "sha256" in done.stderr


@pytest.mark.slow
def test_up_prints_one_status_block_and_keeps_the_parts_logs_in_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DERMQ_")}  # its own embedded Redis
    env |= {"DERMQ_WORKER_METRICS_PORT": "0", "PYTHONUNBUFFERED": "1"}
    stderr = (tmp_path / "stderr").open("w+")
    proc = subprocess.Popen([sys.executable, "-m", "dermq.cli", "up", "--port", str(port), "--data-dir", str(data)],
                            env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    lines: list[str] = []
    try:
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
        reader.start()
        wait_for(lambda: any("Press Ctrl-C" in line for line in lines), 240, "dermq up", proc)
        out = "".join(lines)
        url = f"http://127.0.0.1:{port}"
        creds = json.loads((data / "dev-credentials.json").read_text())
        block = dict(re.findall(r"^  ([a-z A-Z]+):\s+(.*)$", out, re.M))
        assert block["URL"] == url and block["viewer"] == f"{url}/ui" and block["API docs"] == f"{url}/docs"
        assert block["account"].startswith(f"{creds['username']}  password {creds['password']}  ")
        assert str((data / "dev-credentials.json").resolve()) in block["account"]
        assert block["data directory"] == str(data.resolve()) and block["logs"] == str((data / "logs").resolve())
        assert out.count("dermq is running") == 1
        # Only the block: the parts' own output (uvicorn, celery, redis) is in their files.
        assert [line for line in lines if line.strip()][0].startswith("starting dermq")
        assert len([line for line in lines if line.strip()]) == 2 + len(block) + 1, out
        stderr.seek(0)
        assert stderr.read() == ""
        logs = {p.name: p.read_text(errors="replace") for p in (data / "logs").glob("*.log")}
        assert set(logs) == {"redis.log", "api.log", "worker-0.log"}
        assert "Uvicorn running" in logs["api.log"] and "classifier loaded" in logs["worker-0.log"]
        assert "Ready to accept connections" in logs["redis.log"]
        login = httpx.post(f"{url}/login", data={"username": creds["username"], "password": creds["password"]})
        assert login.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(120)  # stop() allows each part 20 s, in four steps
        except subprocess.TimeoutExpired:
            proc.kill()
            tails = {p.name: p.read_text(errors="replace")[-1500:] for p in (data / "logs").glob("*.log")}
            raise AssertionError(f"dermq up did not stop on SIGINT; its output: {''.join(lines)!r}; logs: {tails}") from None
    assert proc.returncode == 0
    assert "stopped." in "".join(lines)
