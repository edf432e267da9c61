"""Job and batch records.

A small status enum and an abstract store with one real implementation on
Redis. Every status change is a compare-and-set done in one Lua script, so a
late worker can never overwrite a cancellation and a redelivered task can
never resurrect a finished job.
"""

from __future__ import annotations

import abc
import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Iterable

import redis


class JobStatus(str, Enum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    expired = "expired"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


# Workers announce themselves (device, loaded models) under this prefix with a short expiry.
WORKER_KEY_PREFIX = "dermq:worker:"

TERMINAL = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled, JobStatus.expired})
ACTIVE = (JobStatus.queued, JobStatus.running)


def utcnow() -> float:
    return time.time()


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class Job:
    id: str
    client: str
    kind: str
    status: JobStatus
    created_at: float
    queue: str
    spec: dict[str, Any]  # the request with image bytes replaced by object-store keys
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    error: str | None = None
    stage: str | None = None
    done: int = 0
    total: int = 0
    result_key: str | None = None
    batch_id: str | None = None
    reference: str | None = None

    def public(self) -> dict[str, Any]:
        """The `GET /jobs/{id}` representation."""
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status.value,
            "progress": {"stage": self.stage, "done": self.done, "total": self.total},
            "createdAt": iso(self.created_at),
            "startedAt": iso(self.started_at),
            "finishedAt": iso(self.finished_at),
            "attempts": self.attempts,
            "error": self.error,
            "batchId": self.batch_id,
            "reference": self.reference,
        }


@dataclass
class Batch:
    id: str
    client: str
    created_at: float
    job_ids: list[str] = field(default_factory=list)
    references: list[str | None] = field(default_factory=list)


class JobStore(abc.ABC):
    """What the API and the workers need from job records."""

    @abc.abstractmethod
    def create(self, job: Job) -> None: ...

    @abc.abstractmethod
    def get(self, job_id: str) -> Job | None: ...

    @abc.abstractmethod
    def begin_attempt(self, job_id: str) -> tuple[JobStatus | None, int]:
        """Count a delivery; queued → running. Returns the status after the call and the attempts."""

    @abc.abstractmethod
    def release_attempt(self, job_id: str) -> None:
        """Uncount a delivery that ended in a transient outage rather than a dead worker."""

    @abc.abstractmethod
    def delete(self, job_id: str) -> None:
        """Remove a record that was never enqueued (submission failed half-way)."""

    @abc.abstractmethod
    def set_progress(self, job_id: str, stage: str, done: int, total: int) -> JobStatus | None: ...

    @abc.abstractmethod
    def finish(self, job_id: str, status: JobStatus, *, error: str | None = None, result_key: str | None = None) -> bool:
        """Move an active job to a terminal status; False when it was no longer active."""

    @abc.abstractmethod
    def list_for_client(self, client: str, *, status: JobStatus | None, offset: int, limit: int) -> tuple[list[Job], int]: ...

    @abc.abstractmethod
    def claim_idempotency_key(self, client: str, key: str, fingerprint: str, job_id: str) -> tuple[str, str]:
        """Returns (job_id, fingerprint) stored under the key: ours if new, the first one otherwise."""

    @abc.abstractmethod
    def release_idempotency_key(self, client: str, key: str) -> None: ...

    @abc.abstractmethod
    def create_batch(self, batch: Batch) -> None: ...

    @abc.abstractmethod
    def get_batch(self, batch_id: str) -> Batch | None: ...

    @abc.abstractmethod
    def get_many(self, job_ids: Iterable[str]) -> list[Job | None]: ...

    @abc.abstractmethod
    def finished_before(self, cutoff: float, limit: int = 500) -> list[str]: ...

    @abc.abstractmethod
    def forget_finished(self, job_ids: list[str]) -> None: ...

    @abc.abstractmethod
    def status_counts(self) -> dict[str, int]: ...

    @abc.abstractmethod
    def ping(self) -> None: ...


# KEYS[1]=job hash, KEYS[2]=status counters; ARGV: allowed-from statuses (csv), new status, now, then field/value pairs.
_TRANSITION = """
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return {false, 'missing'} end
local allowed = false
for s in string.gmatch(ARGV[1], '[^,]+') do if s == current then allowed = true end end
if not allowed then return {false, current} end
redis.call('HSET', KEYS[1], 'status', ARGV[2])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if current ~= ARGV[2] then
  redis.call('HINCRBY', KEYS[2], current, -1)
  redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
end
return {true, ARGV[2]}
"""

# Counts a delivery and starts the job if it is active. Returns {status, attempts}.
_BEGIN = """
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return {'missing', 0} end
if current ~= 'queued' and current ~= 'running' then
  return {current, tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')}
end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if current == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[1])
  redis.call('HINCRBY', KEYS[2], 'queued', -1)
  redis.call('HINCRBY', KEYS[2], 'running', 1)
end
return {'running', attempts}
"""


class RedisJobStore(JobStore):
    def __init__(self, client: redis.Redis, *, ttl_s: int, prefix: str = "dermq"):
        self.r = client
        self.ttl_s = ttl_s
        self.prefix = prefix
        self._transition = client.register_script(_TRANSITION)
        self._begin = client.register_script(_BEGIN)
        self._release = client.register_script(
            "local a = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') "
            "if a > 0 then redis.call('HINCRBY', KEYS[1], 'attempts', -1) end return a"
        )

    @classmethod
    def from_url(cls, url: str, *, ttl_s: int) -> "RedisJobStore":
        client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=10, socket_connect_timeout=5,
                                      health_check_interval=30)
        return cls(client, ttl_s=ttl_s)

    # --- keys ---
    def _job(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def _client_jobs(self, client: str) -> str:
        return f"{self.prefix}:client:{client}:jobs"

    @property
    def _counts(self) -> str:
        return f"{self.prefix}:stats:status"

    @property
    def _finished(self) -> str:
        return f"{self.prefix}:finished"

    # Records outlive their results by a day, so a client polling late reads "expired", not 404.
    @property
    def _record_ttl(self) -> int:
        return self.ttl_s + 86400

    # --- jobs ---
    def create(self, job: Job) -> None:
        fields = _encode(job)
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self._job(job.id), mapping=fields)
        pipe.expire(self._job(job.id), self._record_ttl)
        pipe.zadd(self._client_jobs(job.client), {job.id: job.created_at})
        pipe.expire(self._client_jobs(job.client), self._record_ttl)
        pipe.hincrby(self._counts, job.status.value, 1)
        pipe.execute()

    def get(self, job_id: str) -> Job | None:
        raw = self.r.hgetall(self._job(job_id))
        return _decode(raw) if raw else None

    def get_many(self, job_ids: Iterable[str]) -> list[Job | None]:
        pipe = self.r.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(self._job(job_id))
        return [_decode(raw) if raw else None for raw in pipe.execute()]

    def begin_attempt(self, job_id: str) -> tuple[JobStatus | None, int]:
        status, attempts = self._begin(keys=[self._job(job_id), self._counts], args=[repr(utcnow())])
        return (None if status == "missing" else JobStatus(status)), int(attempts)

    def release_attempt(self, job_id: str) -> None:
        self._release(keys=[self._job(job_id)])

    def set_progress(self, job_id: str, stage: str, done: int, total: int) -> JobStatus | None:
        ok, status = self._transition(
            keys=[self._job(job_id), self._counts],
            args=["running", "running", "", "stage", stage, "done", done, "total", total],
        )
        return None if status == "missing" else JobStatus(status)

    def finish(self, job_id: str, status: JobStatus, *, error: str | None = None, result_key: str | None = None) -> bool:
        now = utcnow()
        extra: list[Any] = ["finished_at", repr(now)]
        if error is not None:
            extra += ["error", error]
        if result_key is not None:
            extra += ["result_key", result_key]
        allowed = "queued,running" if status is not JobStatus.expired else "succeeded,failed,cancelled"
        ok, _ = self._transition(
            keys=[self._job(job_id), self._counts], args=[allowed, status.value, "", *extra]
        )
        if ok and status is not JobStatus.expired:
            self.r.zadd(self._finished, {job_id: now})
        return bool(ok)

    def list_for_client(self, client: str, *, status: JobStatus | None, offset: int, limit: int) -> tuple[list[Job], int]:
        ids = self.r.zrevrange(self._client_jobs(client), 0, -1)
        jobs = [j for j in self.get_many(ids) if j is not None and (status is None or j.status == status)]
        return jobs[offset : offset + limit], len(jobs)

    def claim_idempotency_key(self, client: str, key: str, fingerprint: str, job_id: str) -> tuple[str, str]:
        k = f"{self.prefix}:idem:{client}:{key}"
        value = json.dumps({"job": job_id, "fingerprint": fingerprint})
        if self.r.set(k, value, nx=True, ex=self._record_ttl):
            return job_id, fingerprint
        stored = json.loads(self.r.get(k) or value)
        return stored["job"], stored["fingerprint"]

    def release_idempotency_key(self, client: str, key: str) -> None:
        self.r.delete(f"{self.prefix}:idem:{client}:{key}")

    def delete(self, job_id: str) -> None:
        job = self.get(job_id)
        if job is None:
            return
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self._job(job_id))
        pipe.zrem(self._client_jobs(job.client), job_id)
        pipe.hincrby(self._counts, job.status.value, -1)
        pipe.execute()

    # --- batches ---
    def create_batch(self, batch: Batch) -> None:
        key = f"{self.prefix}:batch:{batch.id}"
        self.r.set(key, json.dumps(asdict(batch)), ex=self._record_ttl)

    def get_batch(self, batch_id: str) -> Batch | None:
        raw = self.r.get(f"{self.prefix}:batch:{batch_id}")
        return Batch(**json.loads(raw)) if raw else None

    # --- retention and metrics ---
    def finished_before(self, cutoff: float, limit: int = 500) -> list[str]:
        return self.r.zrangebyscore(self._finished, "-inf", cutoff, start=0, num=limit)

    def forget_finished(self, job_ids: list[str]) -> None:
        if job_ids:
            self.r.zrem(self._finished, *job_ids)

    def status_counts(self) -> dict[str, int]:
        raw = self.r.hgetall(self._counts)
        return {s.value: max(0, int(raw.get(s.value, 0))) for s in JobStatus}

    def ping(self) -> None:
        self.r.ping()


def new_id() -> str:
    return str(uuid.uuid4())


def _encode(job: Job) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in asdict(job).items():
        if value is None:
            continue
        if name == "spec":
            out[name] = json.dumps(value)
        elif isinstance(value, JobStatus):
            out[name] = value.value
        elif isinstance(value, float):
            out[name] = repr(value)
        else:
            out[name] = str(value)
    out["status"] = job.status.value
    return out


def _decode(raw: dict[str, str]) -> Job:
    def f(name: str) -> float | None:
        return float(raw[name]) if raw.get(name) else None

    return Job(
        id=raw["id"],
        client=raw["client"],
        kind=raw["kind"],
        status=JobStatus(raw["status"]),
        created_at=float(raw["created_at"]),
        queue=raw.get("queue", ""),
        spec=json.loads(raw.get("spec", "{}")),
        started_at=f("started_at"),
        finished_at=f("finished_at"),
        attempts=int(raw.get("attempts", 0)),
        error=raw.get("error"),
        stage=raw.get("stage"),
        done=int(raw.get("done", 0)),
        total=int(raw.get("total", 0)),
        result_key=raw.get("result_key"),
        batch_id=raw.get("batch_id"),
        reference=raw.get("reference"),
    )
