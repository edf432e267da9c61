"""No Celery app exists at import time: each process builds its own from its settings.

The API and the modules it imports only name the tasks (and build a sending app when the API starts);
the tasks are shared and register on the app of the worker, whose entry point builds it
(tests/dermq/test_serve.py checks the entry point).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from core.settings import Settings
from workers.celery_app import DELIVER_WEBHOOK_TASK, RUN_JOB_TASK, create_celery, task_ids_in_redis_broker

# Run in a fresh interpreter: the test process has long imported workers.tasks and built apps.
# celery._state keeps every app built in the process (a weak set): the one place to see whether an import built one.
IMPORTS_BUILD_NO_APP = textwrap.dedent("""
    import sys
    from celery import _state

    import workers.celery_app, workers.job_client, workers.webhooks
    import api.main

    assert not hasattr(workers.celery_app, "celery_app"), "workers.celery_app builds an app at import time again"
    apps = list(_state._get_active_apps())
    assert not apps, f"importing the API built Celery apps: {apps}"
    assert "workers.tasks" not in sys.modules, "the API imports the worker's tasks"

    api.main.create_app()  # the API's own app, built at start-up: it only sends
    apps = list(_state._get_active_apps())
    assert apps, "the API built no app to send tasks with"
    for app in apps:  # reading app.tasks finalizes it: any imported shared task would register now
        assert not [name for name in app.tasks if name.startswith("dermq.")], f"{app} carries the worker's tasks"
    assert "workers.tasks" not in sys.modules, "the API imports the worker's tasks"
    assert "torch" not in sys.modules, "the API loads torch"
    print("ok")
""")


def test_importing_the_api_builds_no_celery_app_and_no_worker_tasks(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DERMQ_")}
    env |= {"DERMQ_DATA_DIR": str(tmp_path), "DERMQ_REDIS_URL": "redis://127.0.0.1:1/0"}
    done = subprocess.run([sys.executable, "-c", IMPORTS_BUILD_NO_APP], env=env, capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_create_celery_takes_its_broker_from_the_settings_it_is_given() -> None:
    with pytest.raises(TypeError):
        create_celery()  # type: ignore[call-arg]  (no app from the global settings behind a caller's back)
    settings = Settings(broker_url="redis://broker.example:6390/4", queue_interactive="qi", queue_batch="qb")
    app = create_celery(settings)
    assert app.conf.broker_url == "redis://broker.example:6390/4"
    assert [q.name for q in app.conf.task_queues] == settings.worker_queues
    assert app.conf.task_default_queue == "qb"


def test_the_shared_tasks_register_on_each_app_that_is_built() -> None:
    import workers.tasks  # noqa: F401  (what the worker entry point imports)

    one = create_celery(Settings(broker_url="redis://127.0.0.1:1/1"))
    two = create_celery(Settings(broker_url="redis://127.0.0.1:1/2"))
    for app in (one, two):
        assert {RUN_JOB_TASK, DELIVER_WEBHOOK_TASK} <= set(app.tasks)
        assert app.tasks[RUN_JOB_TASK].app is app and app.tasks[DELIVER_WEBHOOK_TASK].app is app


def test_the_task_ids_a_redis_broker_holds_are_read_from_its_queues_and_unacked_set(redis_url: str) -> None:
    tag = uuid.uuid4().hex[:8]
    settings = Settings(broker_url=redis_url, queue_interactive=f"qi-{tag}", queue_batch=f"qb-{tag}",
                        queue_webhooks=f"qw-{tag}")
    app = create_celery(settings)
    for task_id, queue in (("waiting", settings.queue_batch), ("urgent", settings.queue_interactive),
                           ("taken", settings.queue_batch), ("lost", settings.queue_interactive)):
        app.send_task(RUN_JOB_TASK, args=[task_id], task_id=f"{task_id}-{tag}", queue=queue)
    assert task_ids_in_redis_broker(app, settings.worker_queues) == {f"{t}-{tag}" for t in
                                                                     ("waiting", "urgent", "taken", "lost")}
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        client = channel.client
        taken = None
        try:
            # A consumer took "taken" (delivered, not acknowledged yet), and one was killed as it popped "lost".
            taken = channel.basic_get(settings.queue_batch, no_ack=False)
            client.rpop(settings.queue_interactive)
            assert taken is not None and taken.headers["id"] == f"waiting-{tag}"  # the oldest first
            assert task_ids_in_redis_broker(app, settings.worker_queues) == {f"{t}-{tag}" for t in
                                                                             ("waiting", "taken", "lost")}
        finally:
            client.delete(*(channel._q_for_pri(q, p) for q in settings.worker_queues for p in channel.priority_steps))
            if taken is not None:
                client.hdel(channel.unacked_key, taken.delivery_tag)
                client.zrem(channel.unacked_index_key, taken.delivery_tag)


def test_another_broker_holds_no_task_ids_dermq_reads() -> None:
    app = create_celery(Settings(broker_url="amqp://guest:guest@127.0.0.1:5672//"))
    assert task_ids_in_redis_broker(app, ["q"]) is None
