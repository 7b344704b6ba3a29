"""Asking for an incident's processing task a few times a second, not once per reaction.

A webhook stores its reaction and answers. Its incident's `process_reaction` is asked for by a
thread of the process, which gathers the incidents of the last `Nudges.seconds` and asks once per
incident (one Redis round trip for the pending mark, see crisis.tasks.reactions). Asked for in
every webhook, that round trip cost 0.17-0.23 ms of ~1 ms of CPU per webhook in one process with
32 threads, and ~4% of the web process's CPU under gunicorn at 700 webhooks a second.

Asking later changes nothing in what the mark guarantees: a mark set or found after the
reaction's commit means a drain reads the reaction. A process that dies with incidents gathered
leaves their reactions to the sweep, as a lost task would.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable

from flask import Flask

log = logging.getLogger(__name__)


class Nudges:
    """`add(app, incident_id, reaction_id)` from any thread; `ask(incident_id, reaction_id)` runs
    once per gathered incident, in an app context, from the process's own thread."""

    def __init__(self, ask: Callable[[int, int], None], seconds: float):
        self.ask = ask
        self.seconds = seconds
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # the parent's thread does not come along
        atexit.register(self.flush)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._waiting: dict[tuple[Flask, int], int] = {}  # (app, incident) -> one of its reactions
        self._thread: threading.Thread | None = None

    def add(self, app: Flask, incident_id: int, reaction_id: int) -> None:
        with self._lock:
            self._waiting.setdefault((app, incident_id), reaction_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="crisis-nudges", daemon=True)
                self._thread.start()
        self._wake.set()

    def flush(self) -> None:
        """Ask for every gathered incident now."""
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for (app, incident_id), reaction_id in waiting.items():
            try:
                with app.app_context():
                    self.ask(incident_id, reaction_id)
            except Exception:  # noqa: BLE001  (the sweep sends what could not be asked for)
                log.warning("could not ask for the processing of incident %s", incident_id,
                            exc_info=True)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(self.seconds)  # let the incident's next webhooks join this one
            self._wake.clear()
            self.flush()
