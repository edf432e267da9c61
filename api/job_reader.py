"""Job reads and waits on the API's event loop.

GET /jobs/{id} is polled by every waiting client: the synchronous `RedisJobStore` costs a thread
hop per read, so this reader asks the same Redis through redis.asyncio over a bounded pool shared
by all requests, with the store's key layout, and reads the hash with the record model (`core.jobs.Job`).

A synchronous analysis and the NDJSON batch stream wait for jobs to end without polling: every
move to a terminal status publishes the job id (`RedisJobStore.finished_channel`, in the same Lua
step as the move), and one subscriber per event loop wakes the requests waiting on that id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Iterable

import redis.asyncio as aioredis

from core.jobs import Job
from workers.job_client import JobClient, visible_to

log = logging.getLogger(__name__)

# Enough for the concurrent polls one API process can use; a request beyond it waits for a free connection.
MAX_CONNECTIONS = 64
RESUBSCRIBE_S = 1.0  # after the subscription's connection drops (waiters re-read the records meanwhile)
# Waiters re-read at least this often: only a lost subscription makes that matter (announcements are instant).
SAFETY_READ_S = 5.0


async def wait_event(event: asyncio.Event, timeout_s: float) -> bool:
    """True when ``event`` was set within ``timeout_s``."""
    try:
        await asyncio.wait_for(event.wait(), timeout_s)
        return True
    except TimeoutError:
        return False


class _Announcements:
    """One subscription per event loop: the ids of jobs that just ended, fanned out to their waiters."""

    def __init__(self, url: str, channel: str):
        # Its own connection without a read timeout: a subscription is silent between announcements.
        self.redis = aioredis.Redis.from_url(url, decode_responses=True, socket_timeout=None,
                                            socket_connect_timeout=5, health_check_interval=30)
        self.channel = channel
        self.waiters: dict[str, set[asyncio.Event]] = {}
        self.ready = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.ready.set()
                async for message in pubsub.listen():
                    for event in self.waiters.get(message["data"], ()):
                        event.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarted or unreachable: wake everyone to re-read, then resubscribe
                log.warning("job announcements interrupted (%s); resubscribing", exc)
            finally:
                self.ready.clear()
                for events in self.waiters.values():
                    for event in events:
                        event.set()
                await pubsub.aclose()
            await asyncio.sleep(RESUBSCRIBE_S)

    def watch(self, job_ids: Iterable[str]) -> asyncio.Event:
        event = asyncio.Event()
        for job_id in job_ids:
            self.waiters.setdefault(job_id, set()).add(event)
        return event

    def unwatch(self, job_ids: Iterable[str], event: asyncio.Event) -> None:
        for job_id in job_ids:
            events = self.waiters.get(job_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self.waiters[job_id]

    async def aclose(self) -> None:
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass
        await self.redis.aclose()


class JobReader:
    def __init__(self, jobs: JobClient, *, max_connections: int = MAX_CONNECTIONS):
        self.records = jobs.jobs  # the key layout (`_job`) comes from the store itself
        self.url = jobs.settings.effective_redis_url
        self.max_connections = max_connections
        # An asyncio connection belongs to the loop that opened it; a server has one loop, tests may have several.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
            weakref.WeakKeyDictionary())
        self._announcements: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Announcements] = (
            weakref.WeakKeyDictionary())

    def _redis(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            pool = aioredis.BlockingConnectionPool.from_url(
                self.url, max_connections=self.max_connections, timeout=10, decode_responses=True,
                socket_timeout=10, socket_connect_timeout=5, health_check_interval=30,
            )
            client = self._clients[loop] = aioredis.Redis(connection_pool=pool)
        return client

    async def get(self, client: str, job_id: str) -> Job | None:
        """The job if it belongs to this client; another client's job reads as absent (as `JobClient.get`)."""
        raw = await self._redis().hgetall(self.records._job(job_id))
        return visible_to(Job.model_validate(raw) if raw else None, client)

    @contextlib.asynccontextmanager
    async def watching(self, job_ids: list[str]) -> AsyncIterator[asyncio.Event]:
        """An event set when one of ``job_ids`` is announced as ended. Use it as: clear, read the
        records, wait; an end announced after the clear is never missed, whenever the read happens."""
        loop = asyncio.get_running_loop()
        announcements = self._announcements.get(loop)
        if announcements is None:
            announcements = self._announcements[loop] = _Announcements(self.url, self.records.finished_channel)
        event = announcements.watch(job_ids)
        try:
            try:  # subscribed already, except for the very first wait of this loop
                await asyncio.wait_for(announcements.ready.wait(), SAFETY_READ_S)
            except TimeoutError:
                pass
            yield event
        finally:
            announcements.unwatch(job_ids, event)

    async def wait(self, client: str, job_id: str, timeout_s: float) -> Job | None:
        """The job once it has ended; None when it has not within ``timeout_s``. Wakes on the announcement."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        async with self.watching([job_id]) as ended:
            while True:
                ended.clear()
                job = await self.get(client, job_id)
                if job is None or job.status.terminal:
                    return job
                left = deadline - loop.time()
                if left <= 0:
                    return None
                await wait_event(ended, min(left, SAFETY_READ_S))

    async def aclose(self) -> None:
        """Close this loop's connections (at application shutdown)."""
        loop = asyncio.get_running_loop()
        announcements = self._announcements.pop(loop, None)
        if announcements is not None:
            await announcements.aclose()
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.connection_pool.disconnect()
