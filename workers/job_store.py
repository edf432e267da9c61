"""The store of job and batch records on Redis, and the leases that keep running jobs honest.

The records themselves are `core.jobs` models, which own the hash layout. Every
status change is a compare-and-set done in one Lua script, so a late worker can
never overwrite a cancellation and a redelivered task can never resurrect a
finished job.

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

import json
import time
import uuid
from dataclasses import dataclass
from enum import Enum
from typing import Any, Iterable

import redis

from core.jobs import Batch, Job, JobErrorKind, JobStatus

# Workers announce themselves (device, loaded models) under this prefix with a short expiry.
WORKER_KEY_PREFIX = "dermq:worker:"


def utcnow() -> float:
    return time.time()


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


# Every script takes KEYS = job hash, status counters, leases (zset: job id → lease end), finished (zset),
# queued (zset: job id → when it was last queued).

# Moves the job from `current` to `new`, keeping the counters and the lease and finished sets right.
_MOVE = """
local function move(current, new, now)
  redis.call('HSET', KEYS[1], 'status', new)
  if current ~= new then
    redis.call('HINCRBY', KEYS[2], current, -1)
    redis.call('HINCRBY', KEYS[2], new, 1)
  end
  if new == 'queued' then redis.call('ZADD', KEYS[5], now, ARGV[1]) else redis.call('ZREM', KEYS[5], ARGV[1]) end
  if new ~= 'queued' and new ~= 'running' then
    redis.call('ZREM', KEYS[3], ARGV[1])
    if new ~= 'expired' then redis.call('ZADD', KEYS[4], now, ARGV[1]) end
    -- Announce the end in the same atomic step: a waiting request wakes at once (api/job_reader.py).
    redis.call('PUBLISH', KEYS[4] .. ':announce', ARGV[1])
  end
end

-- A running job whose lease lapsed: its worker died. Count it, and fail it after max_lost; else
-- requeue it with a deadline in the lease set, so it is sent again if no run starts by then.
local function lapse(now, max_lost, deadline)
  local lost = redis.call('HINCRBY', KEYS[1], 'lost', 1)
  redis.call('HDEL', KEYS[1], 'lease_until')
  redis.call('ZADD', KEYS[3], deadline, ARGV[1])
  if lost >= max_lost then
    redis.call('HSET', KEYS[1], 'finished_at', now, 'error_kind', 'worker_lost', 'error',
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

# ARGV: job id, deadline. A queued job whose message a worker has taken but not started yet: the
# deadline (renewed while that worker lives) has the sweep send the job again if the worker dies first.
_CLAIM = """
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then return 0 end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
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


# A client's page of jobs of one status, newest first, reading only each job's status field.
# KEYS: the client's jobs (zset); ARGV: job key prefix, status, offset, limit. Returns {matches, page ids}.
# It reads job hashes not passed as KEYS: fine on the one Redis instance this key layout (no hash tags) assumes.
_PAGE_BY_STATUS = """
local first, stop = tonumber(ARGV[3]), tonumber(ARGV[3]) + tonumber(ARGV[4])
local matches, page = 0, {}
for _, id in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, -1)) do
  if redis.call('HGET', ARGV[1] .. id, 'status') == ARGV[2] then
    if matches >= first and matches < stop then page[#page + 1] = id end
    matches = matches + 1
  end
end
return {matches, page}
"""


class RedisJobStore:
    """Job and batch records in Redis; every status change is one Lua step (counters, lease and finished sets)."""

    def __init__(self, client: redis.Redis, *, ttl_s: int, prefix: str = "dermq"):
        self.r = client
        self.ttl_s = ttl_s
        self.prefix = prefix
        self._transition = client.register_script(_TRANSITION)
        self._begin = client.register_script(_BEGIN)
        self._renew = client.register_script(_RENEW)
        self._hand_back = client.register_script(_HAND_BACK)
        self._claim = client.register_script(_CLAIM)
        self._sweep = client.register_script(_SWEEP)
        self._page_by_status = client.register_script(_PAGE_BY_STATUS)

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

    @property
    def _queued(self) -> str:
        return f"{self.prefix}:queued"

    def _keys(self, job_id: str) -> list[str]:
        return [self._job(job_id), self._counts, self._leases, self._finished, self._queued]

    @property
    def finished_channel(self) -> str:
        """Pub/sub channel on which every move to a terminal status publishes the job id (see `_MOVE`)."""
        return f"{self._finished}:announce"

    # Records outlive their results by a day, so a client polling late reads "expired", not 404.
    @property
    def _record_ttl(self) -> int:
        return self.ttl_s + 86400

    @property
    def record_ttl(self) -> int:
        """Seconds a job record is kept: what lives beside it (webhook deliveries) is kept as long."""
        return self._record_ttl

    # --- jobs ---
    def create(self, job: Job) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self._job(job.id), mapping=job.to_hash())
        pipe.expire(self._job(job.id), self._record_ttl)
        pipe.zadd(self._client_jobs(job.client), {job.id: job.created_at})
        pipe.expire(self._client_jobs(job.client), self._record_ttl)
        pipe.hincrby(self._counts, job.status.value, 1)
        if job.status is JobStatus.queued:
            pipe.zadd(self._queued, {job.id: job.created_at})
        pipe.execute()

    def get(self, job_id: str) -> Job | None:
        raw = self.r.hgetall(self._job(job_id))
        return Job.model_validate(raw) if raw else None

    def get_many(self, job_ids: Iterable[str]) -> list[Job | None]:
        pipe = self.r.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(self._job(job_id))
        return [Job.model_validate(raw) if raw else None for raw in pipe.execute()]

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

    def claim(self, job_id: str, *, lease_s: float) -> bool:
        """Set (or renew) a still-queued job's deadline; False once the job left ``queued``."""
        return bool(self._claim(keys=self._keys(job_id), args=[job_id, repr(utcnow() + lease_s)]))

    def sweep_leases(self, *, max_lost: int, limit: int = 100, resend_after_s: float = 60.0) -> list[tuple[str, Sweep]]:
        now = utcnow()
        lapsed = self.r.zrangebyscore(self._leases, "-inf", now, start=0, num=limit)
        args = [repr(now), max_lost, repr(now + resend_after_s)]
        return [(job_id, Sweep(self._sweep(keys=self._keys(job_id), args=[job_id, *args]))) for job_id in lapsed]

    def set_progress(self, job_id: str, stage: str, done: int, total: int, *, run: str | None = None) -> JobStatus | None:
        _, status = self._move(job_id, "running", JobStatus.running, run, ["stage", stage, "done", done, "total", total])
        return None if status in ("missing", "superseded") else JobStatus(status)

    def finish(self, job_id: str, status: JobStatus, *, error: str | None = None, result_key: str | None = None,
               run: str | None = None, error_kind: JobErrorKind | None = None,
               progress: tuple[str, int, int] | None = None) -> bool:
        """`progress`: the run's last (stage, done, total), recorded in the same step (see `set_progress`)."""
        fields: list[Any] = ["finished_at", repr(utcnow())]
        if progress is not None:
            fields += ["stage", progress[0], "done", progress[1], "total", progress[2]]
        if error is not None:
            fields += ["error", error]
        if error_kind is not None:
            fields += ["error_kind", error_kind.value]
        if result_key is not None:
            fields += ["result_key", result_key]
        allowed = "queued,running" if status is not JobStatus.expired else "succeeded,failed,cancelled"
        ok, _ = self._move(job_id, allowed, status, run, fields)
        return bool(ok)

    def _move(self, job_id: str, allowed: str, status: JobStatus, run: str | None, fields: list[Any]) -> tuple[Any, str]:
        return self._transition(keys=self._keys(job_id),
                                args=[job_id, allowed, status.value, run or "", repr(utcnow()), *fields])

    def list_for_client(self, client: str, *, status: JobStatus | None, offset: int, limit: int) -> tuple[list[Job], int]:
        """A page of the client's jobs, newest first, and how many there are; paged inside Redis, so only
        the page's records are read. A record that vanished meanwhile is skipped."""
        if limit < 1:  # ZREVRANGE would read an empty range's end (-1) as "to the last"
            raise ValueError(f"limit must be at least 1, got {limit}")
        index = self._client_jobs(client)
        pipe = self.r.pipeline(transaction=True)
        # Records expire a record TTL after they were created: drop their ids, so the total counts live jobs.
        pipe.zremrangebyscore(index, "-inf", f"({utcnow() - self._record_ttl!r}")
        if status is None:
            pipe.zcard(index)
            pipe.zrevrange(index, offset, offset + limit - 1)
            _, total, ids = pipe.execute()
        else:
            self._page_by_status(keys=[index], args=[self._job(""), status.value, offset, limit], client=pipe)
            _, (total, ids) = pipe.execute()
        return [j for j in self.get_many(ids) if j is not None], int(total)

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
        pipe.zrem(self._queued, job_id)
        pipe.execute()

    def unleased_queued(self, *, older_than_s: float, limit: int = 10_000) -> list[str]:
        """Jobs queued for longer than ``older_than_s`` that no worker has claimed or leased and that carry no
        resend deadline: each is either waiting in the broker's queue or its message was lost (see
        `workers.leases.LeaseKeeper.recover_lost_messages`). Ids whose record expired are dropped here."""
        ids = self.r.zrangebyscore(self._queued, "-inf", utcnow() - older_than_s, start=0, num=limit)
        if not ids:
            return []
        pipe = self.r.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(self._job(job_id), "status")
            pipe.zscore(self._leases, job_id)
        answers = pipe.execute()
        statuses, deadlines = answers[0::2], answers[1::2]
        if gone := [j for j, status in zip(ids, statuses) if status is None]:
            self.r.zrem(self._queued, *gone)
        return [j for j, status, deadline in zip(ids, statuses, deadlines)
                if status == JobStatus.queued.value and deadline is None]

    # --- batches ---
    def create_batch(self, batch: Batch) -> None:
        key = f"{self.prefix}:batch:{batch.id}"
        self.r.set(key, batch.model_dump_json(), ex=self._record_ttl)

    def get_batch(self, batch_id: str) -> Batch | None:
        raw = self.r.get(f"{self.prefix}:batch:{batch_id}")
        return Batch.model_validate_json(raw) if raw else None

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

