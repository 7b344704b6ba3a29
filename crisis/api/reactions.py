"""Reactions and clusters over the API: the feed's data, handling, answers and follow-ups."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from flask import abort, jsonify, request
from flask_login import current_user

from crisis.api import bp
from crisis.auth.permissions import requires
from crisis.extensions import db
from crisis.messages.service import message_json
from crisis.models import Cluster, Handling, Incident, Reaction, ReactionChannel, Role, User
from crisis.reactions import ingest, service
from crisis.reactions.classify import CATEGORIES, URGENCIES

PAGE_SIZE, MAX_PAGE = 100, 500
MAX_CLUSTERS = 100
BUCKET = ingest.BUCKET_SECONDS


@bp.errorhandler(service.ReactionError)
def reaction_error(exc: service.ReactionError):
    db.session.rollback()
    return jsonify(error=str(exc)), exc.status


def _json_body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400, "a JSON object is required")
    return data


def _list_arg(name: str, allowed) -> list[str]:
    values = [v for raw in request.args.getlist(name) for v in raw.split(",") if v]
    bad = [v for v in values if v not in allowed]
    if bad:
        raise service.ReactionError(f"{name}: one of " + ", ".join(allowed), 422)
    return values


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise service.ReactionError(f"{name}: a number", 422) from None


def _filters() -> dict:
    handling = request.args.get("handling") or None
    if handling and handling != "open" and handling not in {h.value for h in Handling}:
        raise service.ReactionError("handling: open or one of " + ", ".join(h.value for h in Handling), 422)
    since = request.args.get("since") or None
    if since is not None:
        try:
            since = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            raise service.ReactionError("since: an ISO 8601 time", 422) from None
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
    return {
        "channel": _list_arg("channel", [c.value for c in ReactionChannel]),
        "category": _list_arg("category", CATEGORIES),
        "urgency": _list_arg("urgency", URGENCIES),
        "cluster_id": _int_arg("cluster_id"),
        "handling": handling,
        "since": since,
        "before_id": _int_arg("before_id"),
        "after_id": _int_arg("after_id"),
    }


def _names(user_ids) -> dict[str, str]:
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    users = db.session.scalars(sa.select(User).where(User.id.in_(ids)))
    return {str(u.id): u.name or u.email for u in users}


def reactions_page(incident_id: int | None):
    limit = min(max(_int_arg("limit") or PAGE_SIZE, 1), MAX_PAGE)
    rows = list(db.session.scalars(service.reactions_query(incident_id, _filters()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    labels = dict(db.session.execute(
        sa.select(Cluster.id, Cluster.label).where(Cluster.id.in_({r.cluster_id for r in rows}))
    ).all()) if rows else {}
    return jsonify(
        reactions=[ingest.reaction_json(r, labels.get(r.cluster_id)) for r in rows],
        next_before_id=rows[-1].id if more else None,
        users=_names({r.assignee_id for r in rows} | {r.replied_by_id for r in rows}),
    )


def _bucket_of(column):
    """The 5-minute bucket number (epoch seconds // 300) of a timestamp column, in SQL."""
    if db.session.get_bind().dialect.name == "postgresql":
        return sa.cast(sa.func.floor(sa.extract("epoch", column) / BUCKET), sa.Integer)
    # SQLite keeps UTC times as text; strftime('%s') reads them as UTC.
    return sa.cast(sa.func.strftime("%s", column), sa.Integer) / BUCKET


def _incident(incident_id: int) -> Incident:
    return db.session.get(Incident, incident_id) or abort(404)


def _reaction(reaction_id: int) -> Reaction:
    return db.session.get(Reaction, reaction_id) or abort(404)


@bp.get("/incidents/<int:incident_id>/reactions")
@requires("incident.view")
def list_reactions(incident_id: int):
    """Newest first; `?channel=x,sms&category=&cluster_id=&handling=open&urgency=high&since=`,
    paginated with `before_id` (the `next_before_id` of the previous page)."""
    _incident(incident_id)
    return reactions_page(incident_id)


@bp.get("/reactions/inbox")
@requires("incident.view")
def inbox_reactions():
    """Reactions not attached to any incident, newest first."""
    return reactions_page(None)


@bp.get("/reactions/<int:reaction_id>")
@requires("incident.view")
def get_reaction(reaction_id: int):
    reaction = _reaction(reaction_id)
    data = ingest.reaction_json(reaction)
    data["users"] = _names([reaction.assignee_id, reaction.replied_by_id])
    return jsonify(data)


@bp.patch("/reactions/<int:reaction_id>")
@requires("incident.update")
def update_reaction(reaction_id: int):
    """Body: any of {"handling": "handled", "assignee_id": 3 | null, "category": "rumour"}."""
    reaction = service.update(_reaction(reaction_id), current_user, _json_body())
    db.session.commit()
    return jsonify(ingest.reaction_json(reaction))


@bp.post("/reactions/<int:reaction_id>/reply")
@requires("message.draft")
def reply(reaction_id: int):
    """Body: {"text": "..."}; sent on the reaction's own channel by a task (202)."""
    reaction = service.request_reply(_reaction(reaction_id), current_user, _json_body().get("text"))
    db.session.commit()
    return jsonify(ingest.reaction_json(reaction)), 202


@bp.post("/reactions/<int:reaction_id>/attach")
@requires("incident.update")
def attach(reaction_id: int):
    """Body: {"incident_id": 7}: move an inbox reaction to an incident."""
    incident_id = _json_body().get("incident_id")
    if not isinstance(incident_id, int):
        return jsonify(error="incident_id: a number"), 422
    reaction = service.attach(_reaction(reaction_id), _incident(incident_id), current_user)
    db.session.commit()
    return jsonify(ingest.reaction_json(reaction))


@bp.get("/reactions/assignees")
@requires("incident.view")
def assignees():
    """The team members a reaction can be assigned to."""
    users = db.session.scalars(sa.select(User).where(User.active.is_(True)).order_by(User.name, User.email))
    return jsonify(users=[{"id": u.id, "name": u.name or u.email} for u in users if u.role >= Role.editor])


@bp.get("/incidents/<int:incident_id>/clusters")
@requires("incident.view")
def list_clusters(incident_id: int):
    """The incident's clusters, most open questions first, then the biggest."""
    _incident(incident_id)
    clusters = db.session.scalars(
        sa.select(Cluster).where(Cluster.incident_id == incident_id)
        .order_by(Cluster.open_count.desc(), Cluster.count.desc(), Cluster.id).limit(MAX_CLUSTERS))
    return jsonify(clusters=[ingest.cluster_json(c) for c in clusters])


@bp.post("/clusters/<int:cluster_id>/follow-up")
@requires("message.draft")
def follow_up(cluster_id: int):
    """Create a draft update listing the cluster's open questions; load it in the composer."""
    cluster = db.session.get(Cluster, cluster_id) or abort(404)
    message = service.create_follow_up(cluster, current_user)
    db.session.commit()
    return jsonify(message_json(message, with_texts=True)), 201


@bp.get("/incidents/<int:incident_id>/reactions/stats")
@requires("incident.view")
def reaction_stats(incident_id: int):
    """Volume per channel per 5 minutes over the last `hours` (default 3), and the category mix."""
    _incident(incident_id)
    hours = min(max(_int_arg("hours") or 3, 1), 48)
    now = int(datetime.now(UTC).timestamp())
    end = now - now % BUCKET
    start = end - (hours * 3600 // BUCKET - 1) * BUCKET
    since = datetime.fromtimestamp(start, UTC)
    volume = {c.value: [0] * ((end - start) // BUCKET + 1) for c in ReactionChannel}
    bucket = _bucket_of(Reaction.received_at)
    rows = db.session.execute(
        sa.select(Reaction.channel, bucket, sa.func.count())
        .where(Reaction.incident_id == incident_id, Reaction.received_at >= since)
        .group_by(Reaction.channel, bucket))
    for channel, index, count in rows:
        index = int(index) - start // BUCKET
        if 0 <= index < len(volume[channel.value]):
            volume[channel.value][index] += int(count)
    categories = dict(db.session.execute(
        sa.select(Reaction.category, sa.func.count()).where(
            Reaction.incident_id == incident_id, Reaction.category.is_not(None))
        .group_by(Reaction.category)).all())
    top = {}
    for cluster in db.session.scalars(sa.select(Cluster).where(Cluster.incident_id == incident_id)
                                      .order_by(Cluster.count.desc())):
        top.setdefault(cluster.category, {"label": cluster.label, "count": cluster.count})
    return jsonify(bucket_seconds=BUCKET, start=since.isoformat(),
                   end=datetime.fromtimestamp(end, UTC).isoformat(),
                   volume=volume, categories=categories, top_clusters=top)
