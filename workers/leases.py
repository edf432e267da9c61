"""The worker side of job leases: hold, renew, hand back, and sweep lapsed ones (see `workers.job_store`).

Every worker process runs one `LeaseKeeper`. It renews the lease of each job
the process is running, so a long job is never taken over while its worker is
alive, whatever the broker's visibility timeout. It also sweeps the leases of
all workers: a lease that lapsed means its worker died, and the job is sent
again at once instead of waiting for the broker to notice.

A worker also claims each job whose message it has taken but not started
(the message waits for a free thread): the broker would hold that message
for its whole visibility timeout if the worker died, so a claim that lapses
has the sweep send the job again instead.

A job can also lose its message outright: kombu's Redis consumer pops a
message before it records it, so a worker killed in that instant takes it
along, and no queue, unacked set, claim or lease remembers the job. Every
lease_s one worker compares the jobs queued that long with the messages the
broker holds and sends the missing ones again (`recover_lost_messages`).

A hand-back (a transient storage or Redis outage) that cannot reach Redis is
kept here and retried with the renewals, so an outage never counts as a dead
worker and never leaves a job ``running`` without an owner.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable

import redis

from workers.job_store import Attempt, Begin, RedisJobStore, Sweep

log = logging.getLogger(__name__)

# (job id, countdown seconds, retries so far) → publish the job's task again.
Resend = Callable[[str, float, int], None]
# The ids of the task messages the broker holds now; None where the broker cannot lose one (AMQP).
BrokerTaskIds = Callable[[], "set[str] | None"]


@dataclass
class _Held:
    run: str
    lost: bool = False  # renewal found the job cancelled or taken over: the run must stop
    hand_back: tuple[float, int] | None = None  # (countdown, retries) waiting for Redis to return


class LeaseKeeper:
    def __init__(self, jobs: RedisJobStore, resend: Resend, *, lease_s: float, max_lost: int):
        self.jobs = jobs
        self.resend = resend
        self.lease_s = lease_s
        self.max_lost = max_lost
        self._held: dict[str, _Held] = {}
        self._claimed: set[str] = set()  # received, not begun
        self._lock = threading.Lock()

    # --- one run ---
    def claim(self, job_id: str) -> None:
        """This worker took the job's message; keep its deadline renewed until a run begins."""
        if self.jobs.claim(job_id, lease_s=self.lease_s):
            with self._lock:
                self._claimed.add(job_id)

    def begin(self, job_id: str) -> Attempt:
        with self._lock:
            self._claimed.discard(job_id)
        attempt = self.jobs.begin_attempt(job_id, lease_s=self.lease_s, max_lost=self.max_lost)
        if attempt.outcome is Begin.started:
            with self._lock:
                self._held[job_id] = _Held(attempt.run)  # type: ignore[arg-type]
        return attempt

    def holds(self, job_id: str, run: str) -> bool:
        """False once a renewal found that this run no longer owns the job."""
        with self._lock:
            held = self._held.get(job_id)
        return held is not None and held.run == run and not held.lost

    def release(self, job_id: str, run: str) -> None:
        """The run ended (finished, failed or cancelled): stop renewing."""
        with self._lock:
            if (held := self._held.get(job_id)) is not None and held.run == run and held.hand_back is None:
                del self._held[job_id]

    def hand_back(self, job_id: str, run: str, *, countdown: float) -> None:
        """Queue the job again without counting a lost worker; raises while Redis is away (see `defer`)."""
        self.jobs.hand_back(job_id, run, deadline_s=countdown + self.lease_s)
        self.release(job_id, run)

    def defer(self, job_id: str, run: str, *, countdown: float, retries: int) -> None:
        """Redis is away: keep the lease and hand the job back (and resend it) once Redis answers."""
        with self._lock:
            if (held := self._held.get(job_id)) is not None and held.run == run:
                held.hand_back = (countdown, retries)

    # --- background ---
    def renew_all(self) -> None:
        with self._lock:
            held = list(self._held.items())
            claimed = list(self._claimed)
        for job_id, h in held:
            try:
                if h.hand_back is not None:
                    self._finish_hand_back(job_id, h)
                elif not self.jobs.renew(job_id, h.run, lease_s=self.lease_s):
                    h.lost = True  # cancelled, or its lease lapsed and another run took over
                    with self._lock:
                        self._held.pop(job_id, None)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("cannot renew the lease of job %s yet: %s", job_id, exc)
                return  # Redis is away: the rest would fail the same way
        for job_id in claimed:
            try:
                still_queued = self.jobs.claim(job_id, lease_s=self.lease_s)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("cannot renew the claim on job %s yet: %s", job_id, exc)
                return
            if not still_queued:  # begun (here or elsewhere), cancelled or finished
                with self._lock:
                    self._claimed.discard(job_id)

    def _finish_hand_back(self, job_id: str, h: _Held) -> None:
        countdown, retries = h.hand_back  # type: ignore[misc]
        if self.jobs.hand_back(job_id, h.run, deadline_s=countdown + self.lease_s):
            try:
                self.resend(job_id, countdown, retries)
            except Exception as exc:  # the job is queued with a deadline: the sweep resends it
                log.warning("could not resend job %s (%s); the lease sweep will", job_id, exc)
        with self._lock:
            self._held.pop(job_id, None)

    def recover_lost_messages(self, broker_task_ids: BrokerTaskIds) -> list[str]:
        """Send again each job queued for over a lease whose message is nowhere: not in the broker, not
        claimed or leased by a worker. Returns those jobs."""
        candidates = self.jobs.unleased_queued(older_than_s=self.lease_s)
        if not candidates:
            return []
        held = broker_task_ids()
        if held is None:
            return []
        lost = []
        for job_id in candidates:
            # A resend deadline first, as the sweep keeps for any resent job: if this message is lost too,
            # the sweep sends it once more.
            if job_id not in held and self.jobs.claim(job_id, lease_s=2 * self.lease_s):
                log.warning("job %s: its message was lost (a worker stopped as it took it); sending it again",
                            job_id)
                self.resend(job_id, 0.0, 0)
                lost.append(job_id)
        return lost

    def sweep(self) -> list[tuple[str, Sweep]]:
        """Requeue or fail jobs whose lease lapsed, in every worker; resend those that need a message."""
        swept = self.jobs.sweep_leases(max_lost=self.max_lost, resend_after_s=2 * self.lease_s)
        for job_id, outcome in swept:
            if outcome in (Sweep.requeued, Sweep.resend):
                log.warning("job %s: %s", job_id, "its worker stopped; sending it again" if outcome is Sweep.requeued
                            else "its retry never arrived; sending it again")
                self.resend(job_id, 0.0, 0)
            elif outcome is Sweep.failed:
                log.error("job %s failed: its workers kept stopping", job_id)
        return swept
