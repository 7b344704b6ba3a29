"""The embedded default: a Celery worker, beat and the channel sandbox inside the web process.

The same task code as production runs here; only the transport differs (kombu's in-memory
broker instead of Redis), so the demo needs nothing installed or started besides itself.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from celery.beat import Service as BeatService
from celery.concurrency.thread import TaskPool
from flask import Flask
from werkzeug.serving import make_server

log = logging.getLogger(__name__)


class OwnAppThreadPool(TaskPool):
    """Celery's thread pool, running each task under this worker's own Celery app.

    Celery looks a task up by name in the process's *current* app, which is the last one created
    when one process holds several (the tests): without this, another app's copy of the task
    would run, against that app's config and broker.
    """

    def on_apply(self, target, args=None, kwargs=None, callback=None, accept_callback=None, **_):
        app = self.app

        def run(*a, **kw):
            app.set_current()  # thread-local: this pool's threads only
            return target(*a, **kw)

        return super().on_apply(run, args, kwargs, callback, accept_callback)


class Embedded:
    """Starts and watches the in-process worker, beat and sandbox."""

    def __init__(self, app: Flask, worker_concurrency: int = 4):
        self.app = app
        self.celery = app.extensions["celery"]
        self.concurrency = worker_concurrency
        self.threads: dict[str, threading.Thread] = {}
        app.extensions["crisis_embedded"] = self

    def start(self, sandbox_port: int | None = None) -> None:
        self._thread("worker", self._run_worker)
        self._thread("beat", self._run_beat)
        if sandbox_port is not None:
            self._start_sandbox(sandbox_port)

    def worker_alive(self) -> bool:
        thread = self.threads.get("worker")
        return bool(thread and thread.is_alive())

    def _thread(self, name: str, target) -> None:
        thread = threading.Thread(target=target, name=f"crisis-{name}", daemon=True)
        self.threads[name] = thread
        thread.start()

    def _run_worker(self) -> None:
        worker = self.celery.WorkController(
            app=self.celery,
            pool_cls=OwnAppThreadPool,
            concurrency=self.concurrency,
            queues=self.celery.crisis_queues,
            hostname="embedded@crisis",
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            loglevel="WARNING",
        )
        worker.start()

    def _run_beat(self) -> None:
        schedule = Path(self.app.instance_path) / "beat-schedule"
        BeatService(self.celery, max_interval=1, schedule_filename=str(schedule)).start()

    def _start_sandbox(self, port: int) -> None:
        from channels.sandbox import create_sandbox_app

        sandbox = create_sandbox_app(
            {"CONSOLE_URL": self.app.config["PUBLIC_URL"], "SANDBOX_TOKEN": None}
        )
        server = make_server("127.0.0.1", port, sandbox, threaded=True)
        self.threads["sandbox"] = threading.Thread(
            target=server.serve_forever, name="crisis-sandbox", daemon=True
        )
        self.threads["sandbox"].start()
