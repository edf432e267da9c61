"""The Celery application: broker, queues and the at-least-once delivery settings.

The API imports this module only to *send* tasks by name, so it never loads
torch; the worker entry point imports `workers.tasks` as well.
"""

from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from dermq.settings import Settings, get_settings

RUN_JOB_TASK = "dermq.run_job"


def create_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("dermq", broker=settings.effective_broker_url)
    app.conf.update(
        # Each queue its own direct exchange and routing key; interactive first (consumption order).
        task_queues=[Queue(q, Exchange(q, type="direct"), routing_key=q)
                     for q in (settings.queue_interactive, settings.queue_batch)],
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
    )
    return app


celery_app = create_celery()
