"""Runbook-driven incidents and drills: checklist, injects, stopping a drill, the report."""

from datetime import timedelta

from flask import Blueprint

bp = Blueprint("drills", __name__, url_prefix="/console")


@bp.record_once
def _schedule_injects(state) -> None:
    """Beat plays due injects as a task of their own: a slow sandbox never holds up the sweep
    (scheduled messages, retries, reconciliation)."""
    celery = state.app.extensions.get("celery")
    if celery is None:
        return
    seconds = float(state.app.config["SWEEP_SECONDS"])
    celery.conf.beat_schedule["drill-injects"] = {
        "task": "crisis.tasks.drills.play_due_injects",
        "schedule": timedelta(seconds=seconds),
        "options": {"expires": seconds * 5},
    }


from crisis.drills import views  # noqa: E402,F401
