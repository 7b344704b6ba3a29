"""Send Celery tasks through the Flask app's own Celery, and only after the commit that needs them.

A task sent before commit may run before its rows exist, or for rows a rollback then discards.
Tasks are shared tasks: sent through their proxy they would go to whichever Celery app was made
the process default last, so they are always looked up on the current Flask app's Celery.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from crisis.extensions import db

_KEY = "crisis_after_commit"


def send(task, *args: Any, **options: Any) -> None:
    """`task.apply_async(args, **options)` on this Flask app's Celery (its broker, its queues)."""
    own_task(task).apply_async(args=args, **options)


def after_commit(task, *args: Any, **options: Any) -> None:
    """`send(task, *args, **options)` once the current session commits."""
    db.session().info.setdefault(_KEY, []).append((own_task(task), args, options))


def own_task(task):
    """The app's own instance of a shared task (a sender without a task name is kept as it is)."""
    name = getattr(task, "name", None)
    return current_app.extensions["celery"].tasks[name] if name else task


@sa.event.listens_for(Session, "after_commit")
def _send_pending(session: Session) -> None:
    for task, args, options in session.info.pop(_KEY, []):
        task.apply_async(args=args, **options)


@sa.event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction) -> None:
    session.info.pop(_KEY, None)
