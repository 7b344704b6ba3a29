"""Runbook-driven incidents and drills: checklist, injects, stopping a drill, the report."""

from flask import Blueprint

bp = Blueprint("drills", __name__, url_prefix="/console")

from crisis.drills import views  # noqa: E402,F401
