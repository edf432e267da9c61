"""Job reads on the API's event loop: GET /jobs/{id} is polled by every waiting client.

The synchronous `RedisJobStore` costs a thread hop per read; this reader asks
the same Redis through redis.asyncio over a bounded pool shared by all
requests, and decodes with the store's own key layout and decoder.
"""

from __future__ import annotations

import asyncio
import weakref

import redis.asyncio as aioredis

from workers.client import JobClient, visible_to
from workers.jobs import Job, _decode

# Enough for the concurrent polls one API process can use; a request beyond it waits for a free connection.
MAX_CONNECTIONS = 64


class JobReader:
    def __init__(self, jobs: JobClient, *, max_connections: int = MAX_CONNECTIONS):
        self.records = jobs.jobs  # the key layout (`_job`) comes from the store itself
        self.url = jobs.settings.effective_redis_url
        self.max_connections = max_connections
        # An asyncio connection belongs to the loop that opened it; a server has one loop, tests may have several.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
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
        return visible_to(_decode(raw) if raw else None, client)

    async def aclose(self) -> None:
        """Close this loop's connections (at application shutdown)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.connection_pool.disconnect()
