"""How dermq's Celery apps are built: broker, queues and the at-least-once delivery settings.

No app exists at import time: each process builds its own from its settings with
`create_celery(settings)`. The API builds one only to *send* tasks by name (the
constants below), so it never imports `workers.tasks` and never loads torch. The
worker entry point (`dermq worker`, dermq/cli/serve.py) builds the worker's app,
imports `workers.tasks` (shared tasks: they register on the app when it is
finalized) and runs it.
"""

from __future__ import annotations

import json
import ssl
from urllib.parse import urlsplit

import redis
from celery import Celery
from kombu import Exchange, Queue
from kombu.transport import redis as kombu_redis

from core.settings import Settings

RUN_JOB_TASK = "dermq.run_job"
DELIVER_WEBHOOK_TASK = "dermq.deliver_webhook"


class _RedisChannel(kombu_redis.Channel):
    """kombu's Redis channel, except that a detached channel reports a connection error.

    When the broker goes away, Celery collects the lost connection (which detaches
    the transport from it) and then closes it. A channel whose first close failed,
    because Redis was down, is closed a second time, and restoring its unacknowledged
    messages then builds a pool from the detached transport: an AttributeError
    ("'NoneType' object has no attribute 'hostname'") that is no connection error, so
    the worker's consumer died instead of reconnecting. As a connection error it is
    ignored like the others; the messages stay in Redis' unacked set and the
    visibility-timeout sweep delivers them again.
    """

    def _connparams(self, asynchronous: bool = False) -> dict:
        if self.connection.client is None:
            raise redis.exceptions.ConnectionError("the broker connection was closed")
        return super()._connparams(asynchronous=asynchronous)


class RedisTransport(kombu_redis.Transport):
    Channel = _RedisChannel


def task_ids_in_redis_broker(app: Celery, queues: list[str]) -> set[str] | None:
    """The ids of every task message a Redis broker holds (waiting in ``queues`` or delivered and unacked);
    None for another broker.

    kombu's Redis consumer pops a message (BRPOP) before it records it as unacked, so a worker killed in
    between takes the message with it. AMQP has no such gap: its broker requeues what a closed connection
    held. The queues are read before the unacked set, the way a message moves, so one in transit between
    them is at worst counted missing (and sent again: a duplicate, which the job's lease drops).
    """
    with app.connection_for_read() as conn:
        if not isinstance(conn.transport, kombu_redis.Transport):
            return None
        channel = conn.default_channel
        client = channel.client
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            for priority in channel.priority_steps:
                pipe.lrange(channel._q_for_pri(queue, priority), 0, -1)
        waiting = [json.loads(raw) for answer in pipe.execute() for raw in answer]
        unacked = [json.loads(value)[0] for value in client.hvals(channel.unacked_key)]  # [message, exchange, key]
    return {task_id for message in (*waiting, *unacked) if (task_id := message.get("headers", {}).get("id"))}


def _transport_config(broker_url: str) -> dict:
    """Use `RedisTransport` for a Redis broker; other brokers keep kombu's transport."""
    scheme = urlsplit(broker_url).scheme
    if scheme not in ("redis", "rediss"):
        return {}
    config: dict = {"broker_transport": f"{__name__}:RedisTransport"}
    if scheme == "rediss":
        # kombu derives TLS from the scheme only when it picks the transport itself; verify
        # the server's certificate, as redis-py does for the job store on the same URL.
        config["broker_use_ssl"] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    return config


def create_celery(settings: Settings) -> Celery:
    """A Celery app configured from ``settings``; it carries the dermq tasks only once `workers.tasks` is imported."""
    app = Celery("dermq", broker=settings.effective_broker_url)
    app.conf.update(
        # Each queue its own direct exchange and routing key; interactive first, then webhook deliveries.
        task_queues=[Queue(q, Exchange(q, type="direct"), routing_key=q)
                     for q in settings.worker_queues],
        task_default_queue=settings.queue_batch,
        # Job records live in our own store; Celery's result backend would duplicate them.
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        # At-least-once: acknowledge after the task ran, requeue when the worker dies under it.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_retry_on_startup=True,
        # A broker outage is waited out, however long: a worker never gives up reconnecting.
        broker_connection_retry=True,
        broker_connection_max_retries=None,
        broker_transport_options={
            # Redis: a message not acknowledged within this time is redelivered (a worker was killed).
            "visibility_timeout": settings.visibility_timeout_s,
            # Redis: poll queues in the declared order, so interactive work always goes first.
            "queue_order_strategy": "priority",
            # Sweep for abandoned messages every few seconds rather than every 100 s.
            "unacked_restore_interval": max(1, min(10, settings.visibility_timeout_s // 2)),
            "unacked_restore_throttle": 1,
            # A broker that vanished without closing TCP must not hang a publish forever.
            "socket_timeout": 30,
            "socket_connect_timeout": 5,
            "health_check_interval": 10,
        },
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        **_transport_config(settings.effective_broker_url),
    )
    return app
