from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from api.accounts import AccountStore
from dermq.embedded import Backoff, ensure_dev_account, wait_for
from core.settings import DEV_SECRET, Settings
from support import SAMPLE_IMAGES, attachment, running_service
from workers.job_store import WORKER_KEY_PREFIX


def test_dev_account_is_generated_once_and_kept(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    user, pw = ensure_dev_account(settings)
    assert (user, pw) == ensure_dev_account(settings)
    assert AccountStore(settings.effective_accounts_file).verify(user, pw)
    creds = tmp_path / "dev-credentials.json"
    assert json.loads(creds.read_text())["password"] == pw
    assert creds.stat().st_mode & 0o077 == 0, "credentials must not be readable by others"
    assert pw not in settings.effective_accounts_file.read_text(), "only the hash is stored"


def test_dev_account_from_environment(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, dev_username="clinic", dev_password="a-long-password")
    assert ensure_dev_account(settings) == ("clinic", "a-long-password")
    assert AccountStore(settings.effective_accounts_file).verify("clinic", "a-long-password")


def test_accounts_cli_adds_a_hashed_account(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.json"
    cmd = [sys.executable, "-m", "dermq.cli", "accounts", "add", "clinic-a", "--password", "secret-password",
           "--accounts-file", str(accounts)]
    subprocess.run(cmd, check=True, capture_output=True)
    store = AccountStore(accounts)
    assert store.verify("clinic-a", "secret-password") and not store.verify("clinic-a", "wrong")
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode != 0 and "already exists" in again.stderr
    bad = subprocess.run(cmd[:4] + ["../evil"] + cmd[5:], capture_output=True, text=True)
    assert bad.returncode != 0


def test_api_and_up_refuse_the_built_in_secret_beyond_loopback(tmp_path: Path) -> None:
    env = {**os.environ, "DERMQ_JWT_SECRET": DEV_SECRET, "DERMQ_DATA_DIR": str(tmp_path / "data")}
    for args in (["api", "--host", "0.0.0.0"], ["up", "--host", "0.0.0.0", "--data-dir", str(tmp_path / "data")]):
        done = subprocess.run([sys.executable, "-m", "dermq.cli", *args], env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "refusing to listen on 0.0.0.0" in done.stderr and "Traceback" not in done.stderr
        assert "starting dermq" not in done.stdout
    assert not (tmp_path / "data" / "redis").exists(), "nothing was started"


def test_restart_backoff_doubles_up_to_its_cap_and_resets_once_a_process_stayed_up() -> None:
    backoff = Backoff(initial_s=1, max_s=30, reset_after_s=60)
    assert [backoff.next_delay(uptime_s=2) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.next_delay(uptime_s=60) == 1, "a process that ran a while starts over"
    assert backoff.next_delay(uptime_s=0) == 2


@pytest.mark.slow
def test_supervision_restarts_a_killed_worker_and_the_stack_keeps_serving(redis_url: str, tmp_path: Path) -> None:
    url = redis_url.rsplit("/", 1)[0] + "/12"  # its own database: no other stack's worker can serve the job
    redis.Redis.from_url(url).flushdb()
    with running_service(url, tmp_path / "data") as service:
        stack = service.stack
        stack.supervise()
        victim = stack.worker_procs[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        wait_for(lambda: stack.restarts["worker-0"] == 1, 30, "the supervisor's restart")
        fresh = stack.worker_procs[0]
        assert fresh.pid != victim.pid and fresh.poll() is None
        records = redis.Redis.from_url(url, decode_responses=True)
        wait_for(lambda: any(k.endswith(f":{fresh.pid}") for k in records.scan_iter(WORKER_KEY_PREFIX + "*")),
                 120, "the restarted worker's announcement")
        with service.client() as api:  # the only worker is the restarted one: it serves
            done = api.post("/diagnosis-support", json={"payload": [attachment(SAMPLE_IMAGES[0])]},
                            headers={"Prefer": "wait=60"})
        assert done.status_code == 200, done.text
        assert done.json()["resourceType"] == "DiagnosticReport"
    assert fresh.poll() is not None, "stop() ends the restarted worker too"
    assert stack.restarts == {"worker-0": 1}, "stopping is no crash: nothing was restarted on the way down"
