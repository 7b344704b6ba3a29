"""Write the static snapshot of the public pages after public content changed.

Enqueued after commit (crisis.public.cache.changed) with a short countdown, so a burst of publishes
makes one snapshot: the task compares the content's change marker with the snapshot's and does
nothing when they match. Safe to run twice, and two at once (a file lock orders them).
"""

from __future__ import annotations

import logging

from celery import shared_task
from flask import current_app

log = logging.getLogger(__name__)


@shared_task(name="crisis.tasks.snapshot.write_snapshot", ignore_result=True)
def write_snapshot() -> None:
    from crisis.public import snapshot

    written = snapshot.write(current_app._get_current_object())
    if written is not None:
        log.info("public snapshot written to %s", written)
