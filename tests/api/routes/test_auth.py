from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import jwt
import pytest

from support import JWT_SECRET, OTHER_PASSWORD, OTHER_USER, SAMPLE_IMAGES, attachment

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
