"""What the team does with reactions: handle, assign, correct, answer, attach, follow up.

Used by the API and the console alike. Nothing here commits; every change is audited with ids
and codes only (never the public's text or numbers) and told to the consoles after commit.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask_babel import force_locale, gettext

from channels.x import weighted_length
from crisis import audit, live
from crisis.extensions import db
from crisis.messages import service as messages
from crisis.messages import texts
from crisis.models import (
    Cluster,
    Handling,
    Incident,
    Message,
    MessageKind,
    Reaction,
    ReactionChannel,
    Role,
    User,
)
from crisis.models.types import utcnow
from crisis.reactions import ingest
from crisis.reactions.classify import CATEGORIES, normalise

REPLY_LIMITS = {"x": 280, "facebook": 8000, "sms": 1600}
FOLLOW_UP_QUESTIONS = 6


class ReactionError(Exception):
    """A change that is not allowed; `status` is the HTTP status the API answers with."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.status = status


def update(reaction: Reaction, actor: User, fields: dict[str, Any]) -> Reaction:
    """Change handling, assignee or category; unknown fields and bad values are refused (422)."""
    unknown = set(fields) - {"handling", "assignee_id", "category"}
    if unknown:
        raise ReactionError(f"{sorted(unknown)[0]}: unknown field", 422)
    changes: dict[str, Any] = {}
    if "category" in fields:
        category = fields["category"]
        if category not in CATEGORIES:
            raise ReactionError("category: one of " + ", ".join(CATEGORIES), 422)
        if category != reaction.category:
            triggers = dict(reaction.triggers or {})
            triggers.setdefault("corrected_from", [reaction.category or "other"])
            reaction.triggers = triggers
            reaction.category = category
            changes["category"] = category
    if "assignee_id" in fields:
        assignee_id = fields["assignee_id"]
        if assignee_id is not None:
            if not isinstance(assignee_id, int) or isinstance(assignee_id, bool):
                raise ReactionError("assignee_id: a user id or null", 422)
            assignee = db.session.get(User, assignee_id)
            if assignee is None or not assignee.active or assignee.role < Role.editor:
                raise ReactionError("assignee_id: not a team member who can handle reactions", 422)
        if assignee_id != reaction.assignee_id:
            reaction.assignee_id = assignee_id
            changes["assignee"] = assignee_id
            if assignee_id is not None and reaction.handling is Handling.new:
                reaction.handling = Handling.assigned
            elif assignee_id is None and reaction.handling is Handling.assigned:
                reaction.handling = Handling.new
    if "handling" in fields:
        try:
            handling = Handling(fields["handling"])
        except ValueError:
            raise ReactionError("handling: one of " + ", ".join(h.value for h in Handling),
                                422) from None
        if handling is Handling.assigned and reaction.assignee_id is None:
            reaction.assignee_id = actor.id  # "assigned" to nobody means: to me
            changes["assignee"] = actor.id
        if handling is not reaction.handling:
            reaction.handling = handling
            changes["handling"] = handling.value
    if reaction.handling is Handling.handled and reaction.handled_at is None:
        reaction.handled_at = utcnow()
    elif reaction.handling is not Handling.handled:
        reaction.handled_at = None
    if changes:
        audit.record("reaction.updated", actor_id=actor.id, target=reaction,
                     incident=reaction.incident_id, **changes)
        changed(reaction)
    return reaction


def changed(reaction: Reaction) -> None:
    """Tell the consoles (after commit) and keep the cluster's open count right."""
    db.session.flush()
    live.after_commit("reaction.updated", ingest.reaction_json(reaction), incident_id=reaction.incident_id)
    if reaction.cluster_id is not None:
        ingest.refresh_open_counts([reaction.cluster_id], emit=True)


def request_reply(reaction: Reaction, actor: User, text: Any) -> Reaction:
    """Queue an answer on the reaction's own channel; the task sends it after commit."""
    from crisis.tasks.enqueue import after_commit
    from crisis.tasks.reactions import send_reply

    if not isinstance(text, str) or not text.strip():
        raise ReactionError("text: write the answer first", 422)
    text = text.strip()
    if not ingest.can_reply(reaction):
        raise ReactionError("this reaction cannot be answered on its channel", 422)
    channel = reaction.channel.value
    incident = db.session.get(Incident, reaction.incident_id)
    marker = texts.marker(incident, reaction.language or incident.language)
    sent = f"{marker} {text}" if marker else text  # what the channel gets (a drill's is marked)
    length = weighted_length(sent)[0] if channel == "x" else len(sent)
    if length > REPLY_LIMITS[channel]:
        raise ReactionError(f"text: too long ({length} of {REPLY_LIMITS[channel]})", 422)
    if reaction.reply_provider_id:
        raise ReactionError("this reaction was already answered")
    if reaction.reply_text and not reaction.reply_error:
        raise ReactionError("an answer to this reaction is being sent")
    reaction.reply_text = text
    reaction.replied_by_id = actor.id
    reaction.replied_at = None
    reaction.reply_error = None
    audit.record("reaction.reply_requested", actor_id=actor.id, target=reaction,
                 incident=reaction.incident_id, channel=channel)
    after_commit(send_reply, reaction.id)
    changed(reaction)
    return reaction


def attach(reaction: Reaction, incident: Incident, actor: User) -> Reaction:
    """Move a reaction from the inbox to an incident; it is then classified and clustered there."""
    from crisis.tasks.enqueue import after_commit
    from crisis.tasks.reactions import process_reaction

    if reaction.incident_id is not None:
        raise ReactionError("this reaction already belongs to an incident")
    if not ingest.may_attach_to(incident, drill=reaction.drill):
        raise ReactionError("reactions cannot be attached to this incident", 422)
    reaction.incident_id = incident.id
    reaction.drill = incident.is_drill
    reaction.cluster_id = None
    reaction.processed_at = None  # processed again, now for the incident
    audit.record("reaction.attached", actor_id=actor.id, target=reaction, incident=incident.id)
    after_commit(process_reaction, reaction.id)
    return reaction


def follow_up_text(cluster: Cluster, incident: Incident) -> str:
    """A draft follow-up listing the cluster's open questions, in the incident's language."""
    rows = db.session.scalars(
        sa.select(Reaction.text)
        .where(Reaction.cluster_id == cluster.id, Reaction.handling != Handling.handled,
               Reaction.removed_at.is_(None))
        .order_by(Reaction.id.desc()).limit(200)
    )
    questions, seen = [], set()
    for text in rows:
        line = " ".join((text or "").split())[:200]
        key = normalise(line)
        if line and key not in seen:
            seen.add(key)
            questions.append(line)
        if len(questions) == FOLLOW_UP_QUESTIONS:
            break
    with force_locale(incident.language):
        intro = gettext("Many of you ask about: %(topic)s. We are finding out and will answer "
                        "as soon as we can.", topic=cluster.label.rstrip("?") or gettext("this"))
        heading = gettext("Questions we received:")
    lines = [intro]
    if questions:
        lines += ["", heading, *(f"- {q}" for q in questions)]
    return "\n".join(lines)


def create_follow_up(cluster: Cluster, actor: User) -> Message:
    """A draft update answering the cluster (for the composer; it still needs an approval)."""
    incident = db.session.get(Incident, cluster.incident_id)
    message = messages.create_draft(incident, actor, {
        "kind": MessageKind.update.value, "body": follow_up_text(cluster, incident)})
    audit.record("cluster.follow_up", actor_id=actor.id, target=cluster, incident=incident.id,
                 message=message.id)
    return message


def reactions_query(incident_id: int | None, filters: dict[str, Any]) -> sa.Select:
    """The feed's query: newest first, narrowed by channel, category, cluster, handling, time."""
    query = sa.select(Reaction)
    query = query.where(Reaction.incident_id.is_(None) if incident_id is None
                        else Reaction.incident_id == incident_id)
    if filters.get("channel"):
        query = query.where(Reaction.channel.in_([ReactionChannel(c) for c in filters["channel"]]))
    if filters.get("category"):
        query = query.where(Reaction.category.in_(filters["category"]))
    if filters.get("urgency"):
        query = query.where(Reaction.urgency.in_(filters["urgency"]))
    if filters.get("cluster_id") is not None:
        query = query.where(Reaction.cluster_id == filters["cluster_id"])
    handling = filters.get("handling")
    if handling == "open":
        query = query.where(Reaction.handling != Handling.handled, Reaction.removed_at.is_(None))
    elif handling:
        query = query.where(Reaction.handling == Handling(handling))
    if filters.get("since") is not None:
        query = query.where(Reaction.received_at >= filters["since"])
    if filters.get("before_id") is not None:
        query = query.where(Reaction.id < filters["before_id"])
    if filters.get("after_id") is not None:
        query = query.where(Reaction.id > filters["after_id"])
    return query.order_by(Reaction.id.desc())
