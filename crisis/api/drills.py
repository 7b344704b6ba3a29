"""Runbooks and drills over the API: start an incident from a runbook, play the public, stop."""

from __future__ import annotations

from flask import abort, jsonify, request
from flask_login import current_user

from crisis.api import bp
from crisis.auth.permissions import requires
from crisis.drills import service
from crisis.extensions import db
from crisis.incidents.service import incident_json
from crisis.models import Incident


def _incident(incident_id: int) -> Incident:
    return db.session.get(Incident, incident_id) or abort(404)


@bp.get("/runbooks")
@requires("incident.view")
def list_runbooks():
    return jsonify(runbooks=[{"id": r.id, "title": r.title, "incident_types": r.incident_types}
                             for r in service.runbook_library().values()])


@bp.post("/runbooks/<runbook_id>/start")
@requires("incident.create")
def start_runbook(runbook_id: str):
    runbook = service.runbook_library().get(runbook_id) or abort(404)
    data = request.get_json(silent=True) or {}
    if data.get("mode") not in ("live", "drill"):
        return jsonify(error="mode: 'live' or 'drill'"), 422
    incident = service.start_from_runbook(runbook, mode=data["mode"], actor=current_user,
                                          title=str(data.get("title") or "") or None)
    db.session.commit()
    return jsonify(incident_json(incident)), 201


@bp.get("/incidents/<int:incident_id>/checklist")
@requires("incident.view")
def checklist(incident_id: int):
    return jsonify(service.checklist_json(_incident(incident_id)))


@bp.post("/incidents/<int:incident_id>/injects")
@requires("incident.update")
def add_inject(incident_id: int):
    data = request.get_json(silent=True) or {}
    try:
        count, minutes = int(data.get("count", 1)), float(data.get("minutes", 0))
    except (TypeError, ValueError):
        return jsonify(error="count: a number; minutes: a number"), 422
    service.add_inject(_incident(incident_id), current_user, channel=str(data.get("channel", "")),
                       text=str(data.get("text", "")), minutes_from_now=minutes,
                       count=min(count, 500))
    db.session.commit()
    return jsonify(service.drill_json(_incident(incident_id))), 201


@bp.post("/incidents/<int:incident_id>/drill/stop")
@requires("incident.update")
def stop_drill(incident_id: int):
    result = service.stop_drill(_incident(incident_id), current_user,
                                str((request.get_json(silent=True) or {}).get("reason")
                                    or "real incident"))
    db.session.commit()
    return jsonify(result)
