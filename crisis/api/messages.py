"""Messages over the API: the same workflow and rules as the console."""

from __future__ import annotations

from flask import abort, jsonify, request
from flask_login import current_user

from channels.preview import preview as channel_preview
from crisis.api import bp
from crisis.auth.permissions import requires
from crisis.extensions import db
from crisis.messages import service
from crisis.models import CHANNELS, Incident, Message, MessageKind


def _json_body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400, "a JSON object is required")
    return data


def _message(message_id: int) -> Message:
    return db.session.get(Message, message_id) or abort(404)


def _result(message: Message, status: int = 200):
    db.session.commit()
    return jsonify(service.message_json(message, with_texts=True)), status


@bp.errorhandler(service.WorkflowError)
def workflow_error(exc: service.WorkflowError):
    db.session.rollback()
    return jsonify(error=str(exc)), exc.status


@bp.post("/preview")
@requires("message.draft")
def preview():
    data = _json_body()
    body, channels = data.get("body"), data.get("channels", list(CHANNELS))
    if not isinstance(body, str) or not isinstance(channels, list) or not set(channels) <= set(
        CHANNELS
    ):
        return jsonify(error="body: text; channels: a list of " + ", ".join(CHANNELS)), 422
    link = data.get("link") if isinstance(data.get("link"), str) else None
    return jsonify(channel_preview(body, channels, link=link))


@bp.post("/incidents/<int:incident_id>/messages")
@requires("message.draft")
def create_message(incident_id: int):
    incident = db.session.get(Incident, incident_id) or abort(404)
    message = service.create_draft(incident, current_user, _json_body())
    return _result(message, 201)


@bp.get("/messages/<int:message_id>")
@requires("incident.view")
def get_message(message_id: int):
    return jsonify(service.message_json(_message(message_id), with_texts=True))


@bp.patch("/messages/<int:message_id>")
@requires("message.draft")
def update_message(message_id: int):
    data = _json_body()
    version = data.pop("version", None)
    if not isinstance(version, int):
        return jsonify(error="version: the version you loaded is required"), 422
    return _result(service.update_draft(_message(message_id), current_user, data, version))


@bp.post("/messages/<int:message_id>/submit")
@requires("message.draft")
def submit(message_id: int):
    return _result(service.submit(_message(message_id), current_user))


@bp.post("/messages/<int:message_id>/approve")
@requires("message.approve")
def approve(message_id: int):
    data = _json_body()
    message = service.approve(
        _message(message_id), current_user, str(data.get("approval_hash", "")),
        confirmation=data.get("confirmation"),
    )
    return _result(message)


@bp.post("/messages/<int:message_id>/break-glass")
@requires("message.break_glass")
def break_glass(message_id: int):
    data = _json_body()
    message = service.approve(_message(message_id), current_user,
                              str(data.get("approval_hash", "")),
                              break_glass=str(data.get("reason", "")),
                              confirmation=data.get("confirmation"))
    return _result(message)


@bp.post("/messages/<int:message_id>/reject")
@requires("message.approve")
def reject(message_id: int):
    reason = str(_json_body().get("reason", ""))
    return _result(service.reject(_message(message_id), current_user, reason))


@bp.post("/messages/<int:message_id>/withdraw")
@requires("message.draft")
def withdraw(message_id: int):
    return _result(service.withdraw(_message(message_id), current_user))


@bp.post("/messages/<int:message_id>/stop")
@requires("message.draft")
def stop(message_id: int):
    message = _message(message_id)
    outcome = service.stop(message, current_user)
    db.session.commit()
    return jsonify(message=service.message_json(message), **outcome)


@bp.post("/messages/<int:message_id>/correct")
@requires("message.draft")
def correct(message_id: int):
    data = request.get_json(silent=True) or {}
    message = service.follow_up(_message(message_id), current_user, MessageKind.correction, data)
    return _result(message, 201)


@bp.post("/messages/<int:message_id>/cancel")
@requires("message.draft")
def cancel(message_id: int):
    data = request.get_json(silent=True) or {}
    message = service.follow_up(_message(message_id), current_user, MessageKind.cancel, data)
    return _result(message, 201)


@bp.post("/deliveries/<int:delivery_id>/retry")
@requires("message.draft")
def retry_delivery(delivery_id: int):
    message = service.retry_delivery(delivery_id, current_user)
    return _result(message)
