"""Enqueue Celery tasks only after the database transaction that needs them has committed.

A task sent before commit may run before its rows exist, or for rows a rollback then discards.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crisis.extensions import db

_KEY = "crisis_after_commit"


def after_commit(task, *args: Any, **options: Any) -> None:
    """Send `task.apply_async(args, **options)` once the current session commits."""
    db.session().info.setdefault(_KEY, []).append((task, args, options))


@sa.event.listens_for(Session, "after_commit")
def _send_pending(session: Session) -> None:
    for task, args, options in session.info.pop(_KEY, []):
        task.apply_async(args=args, **options)


@sa.event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction) -> None:
    session.info.pop(_KEY, None)
