"""The after-action report: a timeline and the key figures, computed from what was recorded.

Every figure is derived from timestamps in the database (messages, deliveries, checklist,
reactions), so the report of a drill replayed with a fixed clock is exactly reproducible.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from crisis.extensions import db
from crisis.models import (
    ChecklistItem,
    Handling,
    Incident,
    Message,
    MessageKind,
    Reaction,
)

BUCKET = timedelta(minutes=5)


@dataclass
class Event:
    at: datetime
    kind: str  # start, drafted, submitted, approved, accepted, step, end
    label: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    incident: Incident
    figures: dict[str, Any]
    timeline: list[Event]
    reactions_per_bucket: list[dict[str, Any]]
    checklist: list[dict[str, Any]]


def build(incident: Incident, now: datetime) -> Report:
    messages = list(db.session.scalars(sa.select(Message).where(
        Message.incident_id == incident.id).order_by(Message.created_at)))
    items = list(db.session.scalars(sa.select(ChecklistItem).where(
        ChecklistItem.incident_id == incident.id).order_by(ChecklistItem.position)))
    reactions = list(db.session.scalars(sa.select(Reaction).where(
        Reaction.incident_id == incident.id).order_by(Reaction.received_at)))
    end = incident.ended_at or incident.resolved_at or now
    return Report(
        incident=incident,
        figures=figures(incident, messages, items, reactions),
        timeline=timeline(incident, messages, items, end),
        reactions_per_bucket=buckets(incident.created_at, end, reactions),
        checklist=checklist_rows(incident, items),
    )


def _first_accepted(message: Message) -> datetime | None:
    times = [d.accepted_at for d in message.deliveries if d.accepted_at]
    return min(times) if times else None


def _last_accepted(message: Message) -> datetime | None:
    times = [d.accepted_at for d in message.deliveries if d.accepted_at]
    return max(times) if times else None


def _seconds(delta: timedelta | None) -> float | None:
    return round(delta.total_seconds(), 1) if delta is not None else None


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def figures(incident: Incident, messages: list[Message], items: list[ChecklistItem],
            reactions: list[Reaction]) -> dict[str, Any]:
    sent = [m for m in messages if _first_accepted(m)]
    first = min((_first_accepted(m) for m in sent), default=None)
    approvals = [(m.approved_at - m.submitted_at).total_seconds()
                 for m in messages if m.approved_at and m.submitted_at]
    fanouts = [(_last_accepted(m) - m.approved_at).total_seconds()
               for m in sent if m.approved_at and _last_accepted(m) >= m.approved_at]
    by_id = {m.id: m for m in messages}
    corrections = []
    for message in sent:
        original = by_id.get(message.supersedes_id) if message.supersedes_id else None
        if message.kind is MessageKind.correction and original and _first_accepted(original):
            corrections.append((_first_accepted(message) - _first_accepted(original)).total_seconds())
    questions = [r for r in reactions if r.category == "question"]
    answered = [r for r in questions if r.replied_at or r.handling is Handling.handled]
    handling = [(r.handled_at - r.received_at).total_seconds()
                for r in reactions if r.handled_at]
    due = {item.id: incident.created_at + timedelta(minutes=item.target_minutes) for item in items}
    on_time = [item for item in items if item.done_at and item.done_at <= due[item.id]]
    return {
        "time_to_first_message_s": _seconds(first - incident.created_at) if first else None,
        "approval_time_median_s": _median(approvals),
        "fan_out_time_median_s": _median(fanouts),
        "time_to_correction_median_s": _median(corrections),
        "messages_sent": len(sent),
        "questions": len(questions),
        "questions_answered": len(answered),
        "share_questions_answered": round(len(answered) / len(questions), 3) if questions else None,
        "reactions": len(reactions),
        "handling_time_median_s": _median(handling),
        "checklist_steps": len(items),
        "checklist_on_time": len(on_time),
        "checklist_done": sum(1 for item in items if item.done_at),
    }


def timeline(incident: Incident, messages: list[Message], items: list[ChecklistItem],
             end: datetime) -> list[Event]:
    events = [Event(incident.created_at, "start", incident.title)]
    for message in messages:
        label = f"{message.kind.value} #{message.id}"
        events.append(Event(message.created_at, "drafted", label))
        if message.submitted_at:
            events.append(Event(message.submitted_at, "submitted", label))
        if message.approved_at:
            events.append(Event(message.approved_at, "approved", label,
                                {"break_glass": bool(message.break_glass_reason)}))
        for delivery in message.deliveries:
            if delivery.accepted_at:
                events.append(Event(delivery.accepted_at, "accepted", label,
                                    {"channel": delivery.channel}))
    for item in items:
        if item.done_at:
            target = incident.created_at + timedelta(minutes=item.target_minutes)
            events.append(Event(item.done_at, "step", item.title,
                                {"target": target, "late": item.done_at > target}))
    events.append(Event(end, "end", incident.ended_reason or incident.status.value))
    return sorted(events, key=lambda e: e.at)


def buckets(start: datetime, end: datetime, reactions: list[Reaction]) -> list[dict[str, Any]]:
    count = max(1, int((end - start) / BUCKET) + 1)
    rows = [{"start": start + i * BUCKET, "total": 0, "by_channel": {}, "handled": 0}
            for i in range(count)]
    for reaction in reactions:
        index = min(count - 1, max(0, int((reaction.received_at - start) / BUCKET)))
        row = rows[index]
        row["total"] += 1
        channel = reaction.channel.value
        row["by_channel"][channel] = row["by_channel"].get(channel, 0) + 1
        row["handled"] += 1 if reaction.handled_at else 0
    return rows


def checklist_rows(incident: Incident, items: list[ChecklistItem]) -> list[dict[str, Any]]:
    rows = []
    for item in items:
        target = incident.created_at + timedelta(minutes=item.target_minutes)
        rows.append({"title": item.title, "role": item.role, "target": target,
                     "done_at": item.done_at,
                     "minutes_late": round((item.done_at - target).total_seconds() / 60, 1)
                     if item.done_at and item.done_at > target else 0,
                     "on_time": bool(item.done_at and item.done_at <= target)})
    return rows


