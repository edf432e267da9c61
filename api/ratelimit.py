"""Login throttling with the `limits` library, its counters in the job-store Redis so every API process shares them.

Every attempt counts against the client address (a clinic behind one NAT still logs in at a
reasonable rate); failures count against the account name, whether or not it exists, so the
answers never tell which names are accounts. A success clears the account's failures.
"""

from __future__ import annotations

import hashlib
import math
import time
from contextlib import contextmanager
from typing import Iterator

import redis
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from api.errors import ApiError
from core.settings import Settings

NAMESPACE = "login"
UNAVAILABLE_RETRY_S = 5


class LoginLimiter:
    def __init__(self, settings: Settings, client: redis.Redis):
        storage = RedisStorage(settings.effective_redis_url, connection_pool=client.connection_pool,
                               key_prefix="dermq:ratelimit", wrap_exceptions=True)
        self._limiter = MovingWindowRateLimiter(storage)
        self._per_account = parse_many(settings.login_failures_per_account)
        self._per_address = parse_many(settings.login_attempts_per_address)

    def admit(self, username: str, address: str) -> None:
        """Count an attempt from `address` and reserve a failure for `username`; 429 when either is used up."""
        self._take(self._per_address, ("address", address), "too many login attempts from this address")
        self._take(self._per_account, ("account", _account_key(username)),
                   "too many failed logins for this account")

    def succeeded(self, username: str) -> None:
        """The reserved failure was not one: forget the account's failures."""
        with _storage_errors():
            for item in self._per_account:
                self._limiter.clear(item, NAMESPACE, "account", _account_key(username))

    def _take(self, items: list[RateLimitItem], key: tuple[str, str], msg: str) -> None:
        # hit() checks and counts in one Redis script, so parallel attempts cannot overrun a limit.
        with _storage_errors():
            for item in items:
                if not self._limiter.hit(item, NAMESPACE, *key):
                    reset = self._limiter.get_window_stats(item, NAMESPACE, *key).reset_time
                    retry = max(1, math.ceil(reset - time.time()))
                    raise ApiError.one(429, f"{msg}; try again in {retry} s", type="rate_limited", loc=["body"],
                                       headers={"Retry-After": str(retry)})


def _account_key(username: str) -> str:
    # Any string can be posted as a name: a digest keeps the Redis key short.
    return hashlib.sha256(username.encode("utf-8")).hexdigest()[:32]


@contextmanager
def _storage_errors() -> Iterator[None]:
    """Redis away: 503 (the client may retry), never a login without the check."""
    try:
        yield
    except StorageError as exc:
        raise ApiError.one(503, "login is unavailable: the job store cannot be reached; try again shortly",
                           type="unavailable", headers={"Retry-After": str(UNAVAILABLE_RETRY_S)}) from exc
