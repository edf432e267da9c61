"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import redis

from dermq.embedded import EmbeddedStack
from dermq.settings import Settings

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SAMPLE = FIXTURES / "isic2017-sample"
SAMPLE_IMAGES = sorted((SAMPLE / "images").glob("*.jpg"))
TEST_DB = 13
JWT_SECRET = "test-secret-" + "x" * 32
OTHER_USER, OTHER_PASSWORD = "other-clinic", "other-password-123"


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def image_b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def attachment(path: Path, **extra: str) -> dict:
    return {"contentAttachment": {"data": image_b64(path), "contentType": "image/jpeg", **extra}}


class Service:
    """The running stack plus helpers for talking to it as a client would."""

    def __init__(self, stack: EmbeddedStack, username: str, password: str):
        self.stack = stack
        self.url = stack.url
        self.username = username
        self.password = password
        self._tokens: dict[str, str] = {}

    @property
    def settings(self) -> Settings:
        return self.stack.settings

    def token(self, username: str | None = None, password: str | None = None) -> str:
        username = username or self.username
        if username not in self._tokens:
            r = httpx.post(f"{self.url}/login", data={"username": username, "password": password or self.password})
            r.raise_for_status()
            self._tokens[username] = r.json()["access_token"]
        return self._tokens[username]

    def client(self, username: str | None = None, password: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120,
                            headers={"Authorization": f"Bearer {self.token(username, password)}"})


DEMO_CLASSES = ["EA89", "1F28", "2C30"]


def demo_bundle(directory: Path, *, version: str = "1", classes: list[str] | None = None, seed: int = 0) -> Path:
    """A small valid classifier bundle 'demo@<version>'; `seed` shifts the head bias so versions differ."""
    from pipeline.models.bundle import reference_bundle, save_bundle

    classes = classes or DEMO_CLASSES
    ref = reference_bundle(classes)
    state = {k: v + seed if k.endswith("classifier.1.bias") else v for k, v in ref.state_dict.items()}
    save_bundle(directory, state, name="demo", version=version, architecture="efficientnet_b0", classes=classes,
                trained=True)
    return directory
