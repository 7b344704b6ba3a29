"""Runbook-driven incidents and drills: checklist, injects, stopping a drill, the report."""

from flask import Blueprint

from crisis.celery_app import schedule

bp = Blueprint("drills", __name__, url_prefix="/console")


@bp.record_once
def _schedule_injects(state) -> None:
    """Beat plays due injects as a task of their own: a slow sandbox never holds up the sweep
    (scheduled messages, retries, reconciliation)."""
    seconds = float(state.app.config["SWEEP_SECONDS"])
    # As the sweep: a short period, so a busy queue may hold a run a few periods.
    schedule(state.app, "drill-injects", "crisis.tasks.drills.play_due_injects", seconds,
             expires=seconds * 5)


from crisis.drills import views  # noqa: E402,F401
