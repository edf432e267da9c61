"""A small HTTP client for dermq, used by `dermq submit` and `dermq bench`."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any, Iterator

import httpx

IMAGE_SUFFIXES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}


def find_images(paths: list[Path]) -> list[Path]:
    return [image for image, _ in find_named_images(paths)]


def find_named_images(paths: list[Path]) -> list[tuple[Path, str]]:
    """(image, name): the name is relative to the folder it was found under (a file given alone: its own name)."""
    found: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            found += [(p, p.relative_to(path).as_posix()) for p in sorted(path.rglob("*"))
                      if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            found.append((path, path.name))
    return found


def image_attachment(image: Path) -> dict[str, Any]:
    return {
        "contentAttachment": {
            "data": base64.b64encode(image.read_bytes()).decode("ascii"),
            "title": image.name,
            "contentType": IMAGE_SUFFIXES[image.suffix.lower()],
        }
    }


def diagnosis_body(image: Path) -> dict[str, Any]:
    return {"payload": [image_attachment(image)]}


def local_severity_body(image: Path, *, system: str, body_site: str, condition: str,
                        inputs: dict[str, Any]) -> dict[str, Any]:
    """A `POST /severity-assessment/automatic/local` body: one image of one body site plus its clinical inputs."""
    return {
        "payload": image_attachment(image),
        "bodySite": body_site,
        "knownCondition": {"conclusion": {"text": condition}},
        "scoringSystem": {system: {"questionnaireResponse": {"item": inputs}}},
    }


class DermqError(RuntimeError):
    """An HTTP error answer; `status` and the decoded JSON body (None if it was not JSON) for callers that act on it."""

    def __init__(self, message: str, status: int, body: Any):
        super().__init__(message)
        self.status = status
        self.body = body


class DermqClient:
    def __init__(self, url: str, *, username: str | None = None, password: str | None = None,
                 token: str | None = None, timeout: float = 120.0):
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout)
        if token is None:
            if not (username and password):
                raise ValueError("give a token, or a username and password")
            token = self.login(username, password)
        self.http.headers["Authorization"] = f"Bearer {token}"

    def login(self, username: str, password: str) -> str:
        r = self.http.post("/login", data={"username": username, "password": password})
        _raise(r)
        return r.json()["access_token"]

    def diagnose(self, body: dict[str, Any], *, prefer_async: bool = False) -> httpx.Response:
        headers = {"Prefer": "respond-async"} if prefer_async else {}
        return self.http.post("/diagnosis-support", json=body, headers=headers)

    def create_batch(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        r = self.http.post("/batches", json={"items": items})
        _raise(r)
        return r.json()

    def batch(self, batch_id: str) -> dict[str, Any]:
        r = self.http.get(f"/batches/{batch_id}")
        _raise(r)
        return r.json()

    def jobs(self, *, offset: int = 0, limit: int = 500) -> dict[str, Any]:
        """One page of the client's jobs, newest first."""
        r = self.http.get("/jobs", params={"offset": offset, "limit": limit})
        _raise(r)
        return r.json()

    def job_result(self, job_id: str) -> dict[str, Any]:
        r = self.http.get(f"/jobs/{job_id}/result")
        _raise(r)
        return r.json()

    def batch_results(self, batch_id: str, timeout: float = 0) -> Iterator[dict[str, Any]]:
        with self.http.stream("GET", f"/batches/{batch_id}/results", params={"timeout": timeout},
                              timeout=timeout + 60) as r:
            _raise(r)
            for line in r.iter_lines():
                if line.strip():
                    yield json.loads(line)

    def wait_batches(self, batch_ids: list[str], on_progress=None, poll_s: float = 0.5,
                     timeout: float = 3600) -> None:
        deadline = time.monotonic() + timeout
        while True:
            states = [self.batch(b) for b in batch_ids]
            done = sum(sum(v for k, v in s["counts"].items() if k not in ("queued", "running")) for s in states)
            if on_progress:
                on_progress(done)
            if all(s["done"] for s in states):
                return
            if time.monotonic() > deadline:
                raise TimeoutError("batches did not finish in time")
            time.sleep(poll_s)


def _raise(r: httpx.Response) -> None:
    if r.status_code >= 400:
        r.read()
        try:
            body = r.json()
        except ValueError:
            body = None
        raise DermqError(f"{r.request.method} {r.request.url.path} answered {r.status_code}: {r.text[:500]}",
                         r.status_code, body)
