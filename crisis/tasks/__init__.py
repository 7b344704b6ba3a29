"""Celery tasks. Each takes ids, is safe to run twice, and is enqueued only after commit."""

from crisis.tasks import (  # noqa: F401
    drills,
    housekeeping,
    publish,
    reactions,
    sms,
    snapshot,
    sweeps,
)
