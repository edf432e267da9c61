"""Job and batch records, and the leases that keep running jobs honest.

A small status enum and an abstract store with one real implementation on
Redis. Every status change is a compare-and-set done in one Lua script, so a
late worker can never overwrite a cancellation and a redelivered task can
never resurrect a finished job.

Leases: a run of a job (the delivery that started it) holds a lease, named by
a random run token, until ``lease_until``; its worker renews it while it works.
Only the lease holder may report progress or finish the job, so a duplicate
delivery (the broker's visibility timeout ran out on a long job) is dropped
while the lease is live, and a late run whose lease was taken over can never
overwrite or delete the winner's result. A lease that lapses means its worker
died: a sweep requeues the job, or fails it once it has lost ``max_lost``
workers, whatever the broker would do.
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
    run: str | None = None  # the lease holder's run token; after success, the run that won
    lease_until: float | None = None
    lost: int = 0  # runs whose worker died (their lease lapsed)

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


class Begin(str, Enum):
    """What a delivery found when it tried to start its job."""

    started = "started"  # this delivery holds the lease now
    leased = "leased"  # another live run holds it: a duplicate delivery, dropped
    finished = "finished"  # terminal already (or failed just now: its workers kept dying)
    missing = "missing"


@dataclass(frozen=True)
class Attempt:
    outcome: Begin
    status: JobStatus | None
    attempts: int
    run: str | None = None  # the lease's run token when started


class Sweep(str, Enum):
    """What a lease sweep did with one lapsed lease."""

    requeued = "requeued"  # a running job's worker died: send it again
    resend = "resend"  # a job handed back for a retry whose message never came: send it again
    failed = "failed"  # it lost too many workers
    held = "held"  # renewed meanwhile, or already finished


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
    def begin_attempt(self, job_id: str, *, lease_s: float, max_lost: int) -> Attempt:
        """Start a run: queued → running under a new lease. A running job whose lease lapsed counts a
        lost worker first (and fails once ``max_lost`` were lost); one whose lease is live is left alone."""

    @abc.abstractmethod
    def renew(self, job_id: str, run: str, *, lease_s: float) -> bool:
        """Extend the lease of ``run``; False when the job is no longer this run's to finish."""

    @abc.abstractmethod
    def hand_back(self, job_id: str, run: str, *, deadline_s: float) -> bool:
        """running → queued without counting a lost worker (a transient outage; a retry is on its way).
        If no run starts within ``deadline_s``, the sweep sends the job again."""

    @abc.abstractmethod
    def sweep_leases(self, *, max_lost: int, limit: int = 100, resend_after_s: float = 60.0) -> list[tuple[str, Sweep]]:
        """Act on every lapsed lease (see `Sweep`)."""

    @abc.abstractmethod
    def delete(self, job_id: str) -> None:
        """Remove a record that was never enqueued (submission failed half-way)."""

    @abc.abstractmethod
    def set_progress(self, job_id: str, stage: str, done: int, total: int, *, run: str | None = None) -> JobStatus | None:
        """Record progress; the status afterwards, None when the record is gone or ``run`` lost the lease."""

    @abc.abstractmethod
    def finish(self, job_id: str, status: JobStatus, *, error: str | None = None, result_key: str | None = None,
               run: str | None = None) -> bool:
        """Move an active job to a terminal status; False when it was no longer active (or, given ``run``,
        no longer that run's)."""

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


# Every script takes KEYS = job hash, status counters, leases (zset: job id → lease end), finished (zset).

# Moves the job from `current` to `new`, keeping the counters and the lease and finished sets right.
_MOVE = """
local function move(current, new, now)
  redis.call('HSET', KEYS[1], 'status', new)
  if current ~= new then
    redis.call('HINCRBY', KEYS[2], current, -1)
    redis.call('HINCRBY', KEYS[2], new, 1)
  end
  if new ~= 'queued' and new ~= 'running' then
    redis.call('ZREM', KEYS[3], ARGV[1])
    if new ~= 'expired' then redis.call('ZADD', KEYS[4], now, ARGV[1]) end
  end
end

-- A running job whose lease lapsed: its worker died. Count it, and fail it after max_lost; else
-- requeue it with a deadline in the lease set, so it is sent again if no run starts by then.
local function lapse(now, max_lost, deadline)
  local lost = redis.call('HINCRBY', KEYS[1], 'lost', 1)
  redis.call('HDEL', KEYS[1], 'lease_until')
  redis.call('ZADD', KEYS[3], deadline, ARGV[1])
  if lost >= max_lost then
    redis.call('HSET', KEYS[1], 'finished_at', now, 'error',
      'the worker running this job stopped ' .. lost .. ' times (killed or out of memory); giving up')
    move('running', 'failed', now)
    return 'failed'
  end
  move('running', 'queued', now)
  return 'queued'
end
"""

# ARGV: job id, allowed-from statuses (csv), new status, required run ('' = any), now, then field/value pairs.
_TRANSITION = _MOVE + """
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return {false, 'missing'} end
local allowed = false
for s in string.gmatch(ARGV[2], '[^,]+') do if s == current then allowed = true end end
if not allowed then return {false, current} end
if ARGV[4] ~= '' and redis.call('HGET', KEYS[1], 'run') ~= ARGV[4] then return {false, 'superseded'} end
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
move(current, ARGV[3], ARGV[5])
return {true, ARGV[3]}
"""

# ARGV: job id, now, run, lease end, max lost. Returns {outcome, status, attempts}.
_BEGIN = _MOVE + """
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return {'missing', '', 0} end
local now = tonumber(ARGV[2])
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if current == 'running' then
  if tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0') > now then
    return {'leased', current, attempts}
  end
  current = lapse(ARGV[2], tonumber(ARGV[5]), ARGV[4])
end
if current ~= 'queued' then return {'finished', current, attempts} end
attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'run', ARGV[3], 'lease_until', ARGV[4])
if not redis.call('HGET', KEYS[1], 'started_at') then redis.call('HSET', KEYS[1], 'started_at', ARGV[2]) end
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
move('queued', 'running', ARGV[2])
return {'started', 'running', attempts}
"""

# ARGV: job id, run, lease end.
_RENEW = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' or redis.call('HGET', KEYS[1], 'run') ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], 'lease_until', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return 1
"""

# ARGV: job id, run, now, deadline. The deadline stays in the lease set, so a lost retry message is resent.
_HAND_BACK = _MOVE + """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' or redis.call('HGET', KEYS[1], 'run') ~= ARGV[2] then
  return 0
end
redis.call('HDEL', KEYS[1], 'run', 'lease_until')
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
move('running', 'queued', ARGV[3])
return 1
"""

# ARGV: job id, now, max lost, the next deadline of a resent job.
_SWEEP = _MOVE + """
local current = redis.call('HGET', KEYS[1], 'status')
if current ~= 'queued' and current ~= 'running' then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 'held'
end
if tonumber(redis.call('ZSCORE', KEYS[3], ARGV[1]) or '0') > tonumber(ARGV[2]) then return 'held' end
if current == 'queued' then
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
  return 'resend'
end
return lapse(ARGV[2], tonumber(ARGV[3]), ARGV[4]) == 'failed' and 'failed' or 'requeued'
"""


class RedisJobStore(JobStore):
    def __init__(self, client: redis.Redis, *, ttl_s: int, prefix: str = "dermq"):
        self.r = client
        self.ttl_s = ttl_s
        self.prefix = prefix
        self._transition = client.register_script(_TRANSITION)
        self._begin = client.register_script(_BEGIN)
        self._renew = client.register_script(_RENEW)
        self._hand_back = client.register_script(_HAND_BACK)
        self._sweep = client.register_script(_SWEEP)

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

    @property
    def _leases(self) -> str:
        return f"{self.prefix}:leases"

    def _keys(self, job_id: str) -> list[str]:
        return [self._job(job_id), self._counts, self._leases, self._finished]

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

    def begin_attempt(self, job_id: str, *, lease_s: float, max_lost: int) -> Attempt:
        now, run = utcnow(), uuid.uuid4().hex
        outcome, status, attempts = self._begin(
            keys=self._keys(job_id), args=[job_id, repr(now), run, repr(now + lease_s), max_lost]
        )
        return Attempt(Begin(outcome), JobStatus(status) if status else None, int(attempts),
                       run if outcome == Begin.started.value else None)

    def renew(self, job_id: str, run: str, *, lease_s: float) -> bool:
        return bool(self._renew(keys=self._keys(job_id), args=[job_id, run, repr(utcnow() + lease_s)]))

    def hand_back(self, job_id: str, run: str, *, deadline_s: float) -> bool:
        now = utcnow()
        return bool(self._hand_back(keys=self._keys(job_id), args=[job_id, run, repr(now), repr(now + deadline_s)]))

    def sweep_leases(self, *, max_lost: int, limit: int = 100, resend_after_s: float = 60.0) -> list[tuple[str, Sweep]]:
        now = utcnow()
        lapsed = self.r.zrangebyscore(self._leases, "-inf", now, start=0, num=limit)
        args = [repr(now), max_lost, repr(now + resend_after_s)]
        return [(job_id, Sweep(self._sweep(keys=self._keys(job_id), args=[job_id, *args]))) for job_id in lapsed]

    def set_progress(self, job_id: str, stage: str, done: int, total: int, *, run: str | None = None) -> JobStatus | None:
        _, status = self._move(job_id, "running", JobStatus.running, run, ["stage", stage, "done", done, "total", total])
        return None if status in ("missing", "superseded") else JobStatus(status)

    def finish(self, job_id: str, status: JobStatus, *, error: str | None = None, result_key: str | None = None,
               run: str | None = None) -> bool:
        fields: list[Any] = ["finished_at", repr(utcnow())]
        if error is not None:
            fields += ["error", error]
        if result_key is not None:
            fields += ["result_key", result_key]
        allowed = "queued,running" if status is not JobStatus.expired else "succeeded,failed,cancelled"
        ok, _ = self._move(job_id, allowed, status, run, fields)
        return bool(ok)

    def _move(self, job_id: str, allowed: str, status: JobStatus, run: str | None, fields: list[Any]) -> tuple[Any, str]:
        return self._transition(keys=self._keys(job_id),
                                args=[job_id, allowed, status.value, run or "", repr(utcnow()), *fields])

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
        run=raw.get("run"),
        lease_until=f("lease_until"),
        lost=int(raw.get("lost", 0)),
    )
