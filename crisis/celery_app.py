"""Celery bound to the Flask app (Flask's documented pattern), JSON only.

Without CRISIS_REDIS_URL the broker is kombu's in-memory transport and the demo runs a worker and
beat inside its own process; with it, Redis is the broker and `crisis worker` / `crisis beat` run
the same task code in their own processes.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from celery import Celery, Task
from celery.signals import worker_process_init
from flask import Flask

QUEUES = ("publish", "bulk", "default")


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    redis_url = app.config.get("REDIS_URL")
    # kombu's in-memory broker is one per process: each embedded app gets queues of its own, so
    # two apps in one process (tests) never run each other's tasks against the wrong database.
    suffix = "" if redis_url else f".{uuid.uuid4().hex[:8]}"
    queues = {name: name + suffix for name in QUEUES}
    celery = Celery(app.import_name, task_cls=FlaskTask)
    celery.crisis_queues = list(queues.values())
    celery.conf.update(
        broker_url=redis_url or "memory://localhost/",  # a host: kombu warns without one
        # Polling the in-memory broker every 10 ms lets the demo start tasks within milliseconds.
        broker_transport_options={"polling_interval": 0.01} if not redis_url else {
            "visibility_timeout": 3600,
        },
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        # No remote control: its broadcast channel crashes a worker when Redis restarts (kombu
        # pub/sub), and nothing here needs it; /healthz learns that workers run from heartbeats.
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=queues["default"],
        task_routes={"crisis.tasks.publish.*": {"queue": queues["publish"]},
                     "crisis.tasks.sms.*": {"queue": queues["bulk"]}},
        # A hung provider call must not hold a worker forever; tasks are safe to run again.
        task_soft_time_limit=300,
        task_time_limit=360,
        task_always_eager=bool(app.config.get("CELERY_EAGER")),
        task_eager_propagates=True,
        beat_schedule={
            "heartbeat": {
                "task": "crisis.tasks.housekeeping.heartbeat",
                "schedule": timedelta(seconds=float(app.config["HEARTBEAT_SECONDS"])),
            },
            "sweep": {
                "task": "crisis.tasks.sweeps.sweep",
                "schedule": timedelta(seconds=float(app.config["SWEEP_SECONDS"])),
                "options": {"expires": float(app.config["SWEEP_SECONDS"]) * 5},
            },
            # X mentions and replies (the webhook is optional: it needs an Enterprise account).
            "poll-x": {
                "task": "crisis.tasks.reactions.poll_x",
                "schedule": timedelta(seconds=float(app.config.get("X_POLL_SECONDS", 15))),
                "options": {"expires": float(app.config.get("X_POLL_SECONDS", 15))},
            },
            "sweep-reactions": {
                "task": "crisis.tasks.reactions.sweep_reactions",
                "schedule": timedelta(seconds=30),
                "options": {"expires": 30},
            },
        },
        timezone="UTC",
    )
    celery.set_default()

    @worker_process_init.connect(weak=False)
    def _fresh_connections(**_):
        # A forked pool process must not share the parent's database connections.
        with app.app_context():
            from crisis.extensions import db

            db.engine.dispose(close=False)

    app.extensions["celery"] = celery
    import crisis.tasks  # noqa: F401  (registers the shared tasks)

    return celery


def schedule(app: Flask, name: str, task: str, seconds: float, *, expires: float | None = None) -> None:
    """Add a periodic task to the app's beat, from the feature that owns it.

    A run still queued after `expires` seconds (default: its period) is dropped: a later one does
    the same work. No Celery (an app built without it): nothing to schedule.
    """
    celery = app.extensions.get("celery")
    if celery is None:
        return
    celery.conf.beat_schedule[name] = {"task": task, "schedule": timedelta(seconds=seconds),
                                       "options": {"expires": expires or seconds}}
