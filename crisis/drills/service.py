"""Incidents from runbooks, and what makes a drill a drill.

A drill is enforced where channels are built (channels.factory) and where its data is chosen:
its SMS go to synthetic subscribers (the same counts per area as the real list, numbers in a
range no resident has), its injects are rows with due times that beat plays through the sandbox,
and "stop the drill: real incident" ends it at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from crisis import audit, live
from crisis.extensions import db
from crisis.incidents import service as incidents
from crisis.messages import service as messages
from crisis.models import (
    Area,
    ChecklistItem,
    DrillInject,
    Incident,
    IncidentStatus,
    InjectState,
    Message,
    MessageState,
    Subscriber,
    SubscriberStatus,
    User,
)
from crisis.models.types import utcnow
from crisis.runbooks import Runbook

# Dutch machine-to-machine numbers: never a resident's phone, so a drill cannot text one.
SYNTHETIC_PREFIX = "+3197099"


def runbook_library():
    return current_app.extensions["runbooks"]


def start_from_runbook(runbook: Runbook, *, mode: str, actor: User, title: str | None = None,
                       area_codes: list[str] | None = None) -> Incident:
    """Create an incident with the runbook's classification, checklist and (drills) injects."""
    codes = area_codes or runbook.areas
    areas = _areas(codes)
    incident = incidents.create_incident(
        title=title or runbook.title, mode=mode, actor_id=actor.id,
        severity=runbook.severity.value, area_ids=[a.id for a in areas],
        language=runbook.language, event=runbook.cap.event)
    incident.runbook_id = runbook.id
    incident.cap_category = runbook.cap.category.value
    incident.cap_urgency = runbook.cap.urgency.value
    incident.cap_certainty = runbook.cap.certainty.value
    for position, step in enumerate(runbook.checklist):
        db.session.add(ChecklistItem(
            incident_id=incident.id, step_id=step.id, title=step.title, role=step.role,
            phase=step.phase, target_minutes=step.target_minutes, depends_on=list(step.depends_on),
            position=position))
    if incident.is_drill:
        incident.exercise_leader_id = actor.id
        schedule_injects(incident, runbook, start=incident.created_at)
        ensure_synthetic_subscribers()
    audit.record("incident.from_runbook", actor_id=actor.id, target=incident, runbook=runbook.id)
    return incident


def _areas(codes: list[str]) -> list[Area]:
    query = sa.select(Area)
    if "all" not in codes:
        query = query.where(Area.code.in_(codes))
    return list(db.session.scalars(query.order_by(Area.name)))


def schedule_injects(incident: Incident, runbook: Runbook, start: datetime) -> int:
    """One row per reaction copy, each with its own due time across the inject's spread."""
    count = 0
    for inject in runbook.injects:
        for reaction in inject.reactions:
            for index in range(reaction.count):
                offset = inject.at_minute * 60 + (
                    reaction.spread_seconds * index / reaction.count if reaction.count > 1 else 0)
                db.session.add(DrillInject(
                    incident_id=incident.id, inject_id=inject.id, channel=inject.channel.value
                    if hasattr(inject.channel, "value") else str(inject.channel),
                    at_minute=inject.at_minute, due_at=start + timedelta(seconds=offset),
                    reactions=[{"text": reaction.text,
                                "author": _author(inject.authors, count)}]))
                count += 1
    return count


def _author(authors: list[str], index: int) -> str:
    return authors[index % len(authors)] if authors else f"Inwoner {index + 1}"


def add_inject(incident: Incident, actor: User, *, channel: str, text: str, minutes_from_now: float,
               count: int = 1, spread_seconds: int = 0) -> list[DrillInject]:
    """The exercise leader plays the public: an extra inject during the drill."""
    if not incident.is_drill:
        raise messages.WorkflowError("injects exist only in drills", 422)
    if channel not in ("x", "facebook", "sms", "form") or not text.strip() or count < 1:
        raise messages.WorkflowError("channel: x, facebook, sms or form; text; count >= 1", 422)
    start = utcnow() + timedelta(minutes=max(0.0, minutes_from_now))
    rows = [DrillInject(incident_id=incident.id, inject_id="leader", channel=channel,
                        at_minute=0, due_at=start + timedelta(seconds=spread_seconds * i / count),
                        reactions=[{"text": text.strip(), "author": f"Inwoner {i + 1}"}])
            for i in range(count)]
    db.session.add_all(rows)
    audit.record("drill.inject_added", actor_id=actor.id, target=incident, count=count)
    _drill_changed(incident)
    return rows


def pause_injects(incident: Incident, actor: User, paused: bool) -> None:
    """Pause or resume the injects; resuming shifts what is pending by the time paused."""
    if paused == incident.injects_paused:
        return
    now = utcnow()
    if paused:
        incident.injects_paused = True
        db.session.execute(sa.update(DrillInject).where(
            DrillInject.incident_id == incident.id, DrillInject.state == InjectState.pending
        ).values(state=InjectState.paused))
        incident.injects_paused_at = now
    else:
        incident.injects_paused = False
        shift = max(timedelta(0), now - (incident.injects_paused_at or now))
        incident.injects_paused_at = None
        for inject in db.session.scalars(sa.select(DrillInject).where(
                DrillInject.incident_id == incident.id, DrillInject.state == InjectState.paused)):
            inject.state, inject.due_at = InjectState.pending, inject.due_at + shift
    audit.record("drill.injects_paused" if paused else "drill.injects_resumed",
                 actor_id=actor.id, target=incident)
    _drill_changed(incident)


def stop_drill(incident: Incident, actor: User, reason: str = "real incident") -> dict[str, Any]:
    """"Stop the drill: real incident": halt its sends and injects now, and tell the team."""
    if not incident.is_drill:
        raise messages.WorkflowError("only a drill can be stopped this way", 422)
    stopped = []
    for message in db.session.scalars(sa.select(Message).where(
            Message.incident_id == incident.id,
            Message.state.in_((MessageState.sending, MessageState.scheduled)))):
        messages.stop(message, actor)
        stopped.append(message.id)
    for message in db.session.scalars(sa.select(Message).where(
            Message.incident_id == incident.id, Message.state == MessageState.pending_approval)):
        message.state = MessageState.withdrawn
    cancelled = db.session.execute(sa.update(DrillInject).where(
        DrillInject.incident_id == incident.id,
        DrillInject.state.in_((InjectState.pending, InjectState.paused)),
    ).values(state=InjectState.cancelled)).rowcount
    incident.ended_at, incident.ended_reason = utcnow(), reason[:200]
    incident.status = IncidentStatus.closed
    audit.record("drill.stopped", actor_id=actor.id, target=incident, messages=len(stopped))
    payload = {"incident_id": incident.id, "title": incident.title, "ended_reason": reason,
               "stopped_messages": stopped, "cancelled_injects": cancelled}
    live.after_commit("drill.stopped", payload)  # the whole team, on every page
    _drill_changed(incident)
    return payload


def _drill_changed(incident: Incident) -> None:
    live.after_commit("drill.updated", drill_json(incident), incident_id=incident.id)


def drill_json(incident: Incident) -> dict[str, Any]:
    counts = dict(db.session.execute(sa.select(DrillInject.state, sa.func.count()).where(
        DrillInject.incident_id == incident.id).group_by(DrillInject.state)).all())
    return {
        "incident_id": incident.id,
        "paused": incident.injects_paused,
        "ended_at": incident.ended_at.isoformat() if incident.ended_at else None,
        "ended_reason": incident.ended_reason,
        "injects": {state.value: counts.get(state, 0) for state in InjectState},
        "next_due": _iso(db.session.scalar(sa.select(sa.func.min(DrillInject.due_at)).where(
            DrillInject.incident_id == incident.id, DrillInject.state == InjectState.pending))),
    }


def _iso(value):
    return value.isoformat() if value else None


def ensure_synthetic_subscribers() -> int:
    """Mirror the real list (areas and language per subscriber) with synthetic numbers.

    Rebuilt when the counts per area differ, so a drill's SMS volume matches a real send.
    """
    real = db.session.execute(sa.select(Subscriber.area_ids, Subscriber.language).where(
        Subscriber.status == SubscriberStatus.active, Subscriber.synthetic.is_(False))).all()
    wanted = sorted((tuple(sorted(areas or [])), language) for areas, language in real)
    have = sorted((tuple(sorted(areas or [])), language) for areas, language in db.session.execute(
        sa.select(Subscriber.area_ids, Subscriber.language).where(Subscriber.synthetic.is_(True))))
    if wanted == have:
        return 0
    db.session.execute(sa.delete(Subscriber).where(Subscriber.synthetic.is_(True)))
    rows = [{"phone": f"{SYNTHETIC_PREFIX}{index:06d}", "area_ids": list(areas),
             "language": language, "status": SubscriberStatus.active, "synthetic": True,
             "consent": {"how": "synthetic", "note": "drill stand-in, no person"}}
            for index, (areas, language) in enumerate(wanted)]
    for start in range(0, len(rows), 5000):
        db.session.execute(sa.insert(Subscriber), rows[start:start + 5000])
    return len(rows)


def complete_step(item: ChecklistItem, actor: User, done: bool = True) -> ChecklistItem:
    item.done_at, item.done_by_id = (utcnow(), actor.id) if done else (None, None)
    audit.record("checklist.done" if done else "checklist.reopened", actor_id=actor.id,
                 target=item, incident=item.incident_id)
    incident = db.session.get(Incident, item.incident_id)
    live.after_commit("checklist.updated", checklist_json(incident), incident_id=incident.id)
    return item


def checklist_json(incident: Incident, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    items = list(db.session.scalars(sa.select(ChecklistItem).where(
        ChecklistItem.incident_id == incident.id).order_by(ChecklistItem.position)))
    done = {item.step_id for item in items if item.done_at}
    result = []
    for item in items:
        due = incident.created_at + timedelta(minutes=item.target_minutes)
        result.append({
            "id": item.id, "step_id": item.step_id, "title": item.title, "role": item.role,
            "phase": item.phase, "target_minutes": item.target_minutes, "due_at": due.isoformat(),
            "done_at": _iso(item.done_at),
            "overdue": item.done_at is None and now > due,
            "late": item.done_at is not None and item.done_at > due,
            "blocked_by": [d for d in item.depends_on if d not in done],
        })
    return {"incident_id": incident.id, "items": result,
            "next_overdue": next((i for i in result if i["overdue"]), None)}
