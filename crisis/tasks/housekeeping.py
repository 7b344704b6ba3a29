"""Periodic upkeep."""

from __future__ import annotations

from celery import shared_task

from crisis.extensions import db
from crisis.models import Heartbeat
from crisis.models.types import utcnow


@shared_task(name="crisis.tasks.housekeeping.heartbeat", ignore_result=True)
def heartbeat() -> None:
    """A no-op beat runs on a worker: the row's time proves both are alive (see /healthz)."""
    row = db.session.get(Heartbeat, "beat") or Heartbeat(name="beat")
    row.at = utcnow()
    db.session.add(row)
    db.session.commit()
