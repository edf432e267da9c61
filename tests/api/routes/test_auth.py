from __future__ import annotations

import itertools
import subprocess
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import httpx
import jwt
import pytest

from api.accounts import AccountStore
from dermq.embedded import EmbeddedStack, free_port, redis_server_binary, wait_for
from core.settings import DEV_SECRET, Settings
from support import JWT_SECRET, OTHER_PASSWORD, OTHER_USER, SAMPLE_IMAGES, attachment, redis_answers

pytestmark = pytest.mark.slow


def test_login_returns_a_bearer_token(service) -> None:
    r = httpx.post(f"{service.url}/login", data={"username": service.username, "password": service.password})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in_minutes"] > 0
    claims = jwt.decode(body["access_token"], JWT_SECRET, algorithms=["HS256"], issuer="dermq")
    assert claims["sub"] == service.username


def test_wrong_password_and_unknown_user_are_401(service) -> None:
    for user, pw in ((service.username, "wrong-password"), ("nobody", "whatever-123")):
        r = httpx.post(f"{service.url}/login", data={"username": user, "password": pw})
        assert r.status_code == 401 and r.json()["detail"][0]["msg"]


@pytest.mark.parametrize("path", ["/jobs", "/conditions", "/device-information"])
def test_endpoints_need_a_token(service, path: str) -> None:
    r = httpx.get(service.url + path)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def _token(secret: str, **delta) -> str:
    now = datetime.now(timezone.utc)
    return jwt.encode({"sub": "dev", "iss": "dermq", "iat": now - timedelta(hours=2), "exp": now + timedelta(**delta)},
                      secret, algorithm="HS256")


def test_expired_and_tampered_tokens_are_401(service) -> None:
    expired = _token(JWT_SECRET, minutes=-5)
    forged = _token("some-other-secret-of-sufficient-length-000", minutes=30)
    good = service.token()
    head, payload, sig = good.split(".")
    tampered = ".".join([head, payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB"), sig])
    for token in (expired, forged, tampered, "not-a-jwt"):
        r = httpx.get(f"{service.url}/jobs", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, token
    assert "expired" in httpx.get(f"{service.url}/jobs", headers={"Authorization": f"Bearer {expired}"}).json()["detail"][0]["msg"]


def test_clients_see_only_their_own_jobs(service, api) -> None:
    r = api.post("/diagnosis-support", json={"payload": [attachment(SAMPLE_IMAGES[5])]},
                 headers={"Prefer": "respond-async"})
    job_id = r.json()["id"]
    with service.client(OTHER_USER, OTHER_PASSWORD) as other:
        for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/result"):
            assert other.get(path).status_code == 404
        assert other.delete(f"/jobs/{job_id}").status_code == 404
        assert job_id not in [j["id"] for j in other.get("/jobs").json()["items"]]
    assert api.get(f"/jobs/{job_id}").status_code == 200


def test_an_account_added_with_the_cli_can_log_in_without_restart(service) -> None:
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "dermq.cli", "accounts", "add", "late-clinic", "--password",
                    "late-password-1", "--accounts-file", str(service.settings.effective_accounts_file)], check=True)
    r = httpx.post(f"{service.url}/login", data={"username": "late-clinic", "password": "late-password-1"})
    assert r.status_code == 200


# --- throttling and the generated secret: API processes of their own (no worker needed) ---
FAILURES, ATTEMPTS = 3, 6
ACCOUNTS = {f"clinic-{c}": f"password-{c}-123" for c in "abcdef"}
_addresses = (f"203.0.113.{i}" for i in itertools.count(1))  # uvicorn believes X-Forwarded-For from loopback


@contextmanager
def api_only(data_dir: Path, redis_url: str, host: str = "127.0.0.1", **env: str) -> Iterator[EmbeddedStack]:
    """`dermq api` as `dermq up` starts it, without DERMQ_JWT_SECRET, on the given Redis."""
    stack = EmbeddedStack(Settings(data_dir=data_dir, redis_url=redis_url), host=host, port=free_port(), workers=0,
                          quiet=True, env={"DERMQ_JWT_SECRET": "", **env})
    with stack:
        yield stack


@pytest.fixture(scope="module")
def apis(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedStack, EmbeddedStack]]:
    """Two API processes on one data directory and Redis, as replicas behind a load balancer; one on 0.0.0.0."""
    data_dir = tmp_path_factory.mktemp("throttled")
    store = AccountStore(Settings(data_dir=data_dir).effective_accounts_file)
    for name, password in ACCOUNTS.items():
        store.add(name, password)
    limits = {"DERMQ_LOGIN_FAILURES_PER_ACCOUNT": f"{FAILURES}/minute",
              "DERMQ_LOGIN_ATTEMPTS_PER_ADDRESS": f"{ATTEMPTS}/minute"}
    with api_only(data_dir, redis_url, host="0.0.0.0", **limits) as one, api_only(data_dir, redis_url, **limits) as two:
        yield one, two


def _login(stack: EmbeddedStack, user: str, password: str, address: str | None = None) -> httpx.Response:
    return httpx.post(f"{stack.url}/login", data={"username": user, "password": password},
                      headers={"X-Forwarded-For": address or next(_addresses)}, timeout=30)


def _throttled(r: httpx.Response) -> str:
    """The 429's message, after checking its shape and Retry-After."""
    assert r.status_code == 429, r.text
    assert 1 <= int(r.headers["retry-after"]) <= 60
    (item,) = r.json()["detail"]
    assert item["type"] == "rate_limited"
    return item["msg"]


def test_a_wrong_password_burst_locks_the_account_on_every_api_process(apis) -> None:
    one, two = apis
    address = next(_addresses)
    assert [_login(one, "clinic-a", "wrong-password", address).status_code for _ in range(FAILURES)] == [401] * 3
    assert "account" in _throttled(_login(two, "clinic-a", "wrong-password"))
    assert "account" in _throttled(_login(one, "clinic-a", ACCOUNTS["clinic-a"])), "no guess is checked while locked"
    assert _login(two, "clinic-b", ACCOUNTS["clinic-b"], address).status_code == 200, "other accounts are untouched"


def test_unknown_names_are_throttled_exactly_like_accounts(apis) -> None:
    one, _ = apis
    answers = {}
    for name in ("clinic-c", "no-such-clinic"):
        rs = [_login(one, name, "wrong-password") for _ in range(FAILURES + 1)]
        answers[name] = [(r.status_code, r.json()["detail"][0]["msg"]) for r in rs]
    assert answers["clinic-c"] == answers["no-such-clinic"]
    assert [status for status, _ in answers["clinic-c"]] == [401] * FAILURES + [429]


def test_a_success_clears_the_failures(apis) -> None:
    one, two = apis
    for _ in range(FAILURES - 1):
        assert _login(one, "clinic-d", "wrong-password").status_code == 401
    assert _login(two, "clinic-d", ACCOUNTS["clinic-d"]).status_code == 200
    assert [_login(one, "clinic-d", "wrong-password").status_code for _ in range(FAILURES)] == [401] * FAILURES
    _throttled(_login(one, "clinic-d", "wrong-password"))


def test_one_address_is_limited_on_every_attempt_but_not_its_neighbours(apis) -> None:
    one, two = apis
    address = next(_addresses)
    statuses = [_login(stack, "clinic-e", ACCOUNTS["clinic-e"], address).status_code
                for stack in [one, two] * (ATTEMPTS // 2)]
    assert statuses == [200] * ATTEMPTS
    assert "address" in _throttled(_login(one, "clinic-e", ACCOUNTS["clinic-e"], address))
    assert _login(two, "clinic-e", ACCOUNTS["clinic-e"]).status_code == 200


def test_unset_secret_is_generated_once_and_the_old_constant_forges_nothing(apis) -> None:
    one, two = apis
    secret_file = one.settings.data_dir / "jwt-secret"
    assert secret_file.stat().st_mode & 0o077 == 0
    token = _login(one, "clinic-f", ACCOUNTS["clinic-f"]).json()["access_token"]
    assert jwt.decode(token, secret_file.read_text().strip(), algorithms=["HS256"], issuer="dermq")["sub"] == "clinic-f"
    assert httpx.get(f"{two.url}/jobs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    now = datetime.now(timezone.utc)
    forged = jwt.encode({"sub": "clinic-f", "iss": "dermq", "iat": now, "exp": now + timedelta(days=3650)},
                        DEV_SECRET, algorithm="HS256")
    for stack in apis:
        for path in ("/jobs", "/jobs/some-id", "/jobs/some-id/result"):
            assert httpx.get(stack.url + path, headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_login_answers_503_while_redis_is_down(tmp_path: Path) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    redis_proc = subprocess.Popen([redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                   "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: redis_answers(url), 20, "redis-server", redis_proc)
        AccountStore(Settings(data_dir=tmp_path).effective_accounts_file).add("clinic-z", "password-z-123")
        with api_only(tmp_path, url) as stack:
            assert _login(stack, "clinic-z", "password-z-123").status_code == 200
            redis_proc.terminate()
            redis_proc.wait(10)
            r = _login(stack, "clinic-z", "password-z-123")
            assert r.status_code == 503 and r.json()["detail"][0]["type"] == "unavailable"
            assert int(r.headers["retry-after"]) > 0
    finally:
        redis_proc.kill()
        redis_proc.wait()
