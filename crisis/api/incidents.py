from flask import abort, jsonify, request
from flask_login import current_user

from crisis.api import bp
from crisis.auth.permissions import requires, role_of_request
from crisis.extensions import db
from crisis.incidents import service
from crisis.models import Incident


@bp.get("/me")
@requires("account.self")
def me():
    return jsonify(id=current_user.id, email=current_user.email, role=role_of_request().value)


@bp.get("/incidents")
@requires("incident.view")
def list_incidents():
    return jsonify(incidents=[service.incident_json(i) for i in service.incidents_for_console()])


@bp.get("/incidents/<int:incident_id>")
@requires("incident.view")
def get_incident(incident_id: int):
    incident = db.session.get(Incident, incident_id) or abort(404)
    return jsonify(service.incident_json(incident))


@bp.post("/incidents")
@requires("incident.create")
def create_incident():
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return jsonify(error="a JSON object is required"), 400
    try:
        incident = service.create_incident(
            title=str(data.get("title", "")),
            mode=str(data.get("mode", "")),
            severity=str(data.get("severity", "Unknown")),
            language=str(data.get("language", "nl")),
            area_ids=_int_list(data.get("area_ids")),
            actor_id=current_user.id,
        )
    except service.IncidentError as exc:
        return jsonify(error=str(exc)), 422
    db.session.commit()
    return jsonify(service.incident_json(incident)), 201


def _int_list(value) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
        raise service.IncidentError("area_ids: a list of area ids")
    return value
