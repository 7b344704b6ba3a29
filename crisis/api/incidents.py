from collections import Counter

import sqlalchemy as sa
from flask import abort, jsonify, request
from flask_login import current_user
from sqlalchemy.orm import selectinload

from crisis.api import bp
from crisis.auth.permissions import requires, role_of_request
from crisis.extensions import db
from crisis.incidents import service
from crisis.messages.service import LANDED_SMS, message_json
from crisis.models import (
    Incident,
    Message,
    MessageState,
    SmsRecipient,
    Subscriber,
    SubscriberStatus,
    User,
)


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


# The console's incident page: its messages (the state a page rebuilds on every (re)connect),
# who the recipients of a draft would be, and how many approvals wait (the top bar's count).


def messages_payload(incident: Incident) -> dict:
    """The incident's messages, newest first, and the names of the people who wrote or approved them."""
    messages = list(db.session.scalars(
        sa.select(Message).where(Message.incident_id == incident.id)
        .options(selectinload(Message.deliveries))
        .order_by(Message.created_at.desc(), Message.id.desc())
    ))
    people = {m.author_id for m in messages} | {m.approver_id for m in messages}
    people.discard(None)
    names = {}
    if people:
        for user in db.session.scalars(sa.select(User).where(User.id.in_(people))):
            names[str(user.id)] = user.name or user.email
    return {"messages": [message_json(m) for m in messages], "users": names}


@bp.get("/incidents/<int:incident_id>/messages")
@requires("incident.view")
def incident_messages(incident_id: int):
    incident = db.session.get(Incident, incident_id) or abort(404)
    return jsonify(messages_payload(incident))


@bp.get("/incidents/<int:incident_id>/recipients")
@requires("incident.view")
def incident_recipients(incident_id: int):
    """How many subscribers an SMS to these areas would reach, per language (the composer's cost).

    The rule is texts.recipient_ids': active subscribers in any of the areas, synthetic ones for a
    drill and real ones for a live incident. With `supersedes` (a correction or cancel), it is
    the original's rule instead: those it reached who have not stopped since.
    """
    incident = db.session.get(Incident, incident_id) or abort(404)
    try:
        area_ids = {int(v) for v in request.args.get("area_ids", "").split(",") if v.strip()}
        supersedes = request.args.get("supersedes", type=int)
    except ValueError:
        return jsonify(error="area_ids: comma-separated area ids"), 422
    if supersedes is not None:
        original = db.session.get(Message, supersedes)
        if original is None or original.incident_id != incident.id:
            abort(404)
        rows = db.session.execute(
            sa.select(Subscriber.language)
            .join(SmsRecipient, SmsRecipient.subscriber_id == Subscriber.id)
            .where(SmsRecipient.message_id == original.id,
                   SmsRecipient.state.in_(LANDED_SMS),
                   Subscriber.status == SubscriberStatus.active)
        ).scalars()
        by_language = Counter(rows)
    else:
        by_language = Counter()
        if area_ids:
            query = sa.select(Subscriber.language, Subscriber.area_ids).where(
                Subscriber.status == SubscriberStatus.active,
                Subscriber.synthetic.is_(incident.is_drill),
            )
            for language, areas in db.session.execute(query):
                if area_ids & set(areas or []):
                    by_language[language] += 1
    return jsonify(count=sum(by_language.values()), by_language=dict(by_language))


@bp.get("/approvals")
@requires("message.approve")
def approvals_waiting():
    """The messages waiting for a second person, oldest first (the top bar's count)."""
    ids = list(db.session.scalars(
        sa.select(Message.id).where(Message.state == MessageState.pending_approval)
        .order_by(Message.submitted_at)
    ))
    return jsonify(count=len(ids), message_ids=ids)
