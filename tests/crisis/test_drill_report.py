"""The after-action report's figures come from the recorded timeline (a fixed clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crisis.drills import report
from crisis.extensions import db
from crisis.models import (
    ChecklistItem,
    Delivery,
    DeliveryState,
    Handling,
    Incident,
    IncidentMode,
    Message,
    MessageKind,
    MessageState,
    Reaction,
    ReactionChannel,
)

T0 = datetime(2026, 3, 1, 14, 0, tzinfo=UTC)


def at(minutes: float, seconds: float = 0) -> datetime:
    return T0 + timedelta(minutes=minutes, seconds=seconds)


def _message(incident, kind, drafted, submitted, approved, accepted, supersedes=None):
    message = Message(incident=incident, kind=kind, body="x", channels=["x", "sms"],
                      state=MessageState.sent, created_at=drafted, submitted_at=submitted,
                      approved_at=approved, supersedes_id=supersedes)
    for channel, when in accepted.items():
        message.deliveries.append(Delivery(channel=channel, state=DeliveryState.accepted,
                                           accepted_at=when))
    db.session.add(message)
    db.session.flush()
    return message


def test_figures_from_a_recorded_drill(ctx):
    incident = Incident(title="Oefening brand", slug="oefening-brand", mode=IncidentMode.drill,
                        created_at=T0, ended_at=at(60))
    db.session.add(incident)
    db.session.flush()
    alert = _message(incident, MessageKind.alert, at(2), at(6), at(8),
                     {"x": at(8, 20), "sms": at(9)})
    _message(incident, MessageKind.correction, at(20), at(21), at(25),
             {"x": at(25, 10), "sms": at(25, 40)}, supersedes=alert.id)
    for step, target, done in (("a", 10, at(9)), ("b", 15, at(20)), ("c", 30, None)):
        db.session.add(ChecklistItem(incident_id=incident.id, step_id=step, title=step,
                                     target_minutes=target, done_at=done))
    for i, (category, handled) in enumerate([("question", at(12)), ("question", None),
                                             ("question", at(30)), ("help", at(13)),
                                             ("rumour", None)]):
        db.session.add(Reaction(channel=ReactionChannel.sms, provider_id=f"r{i}",
                                incident_id=incident.id, text="...", category=category,
                                received_at=at(10 + i), handled_at=handled,
                                handling=Handling.handled if handled else Handling.new))
    db.session.flush()

    result = report.build(incident, now=at(90))
    figures = result.figures
    assert figures["time_to_first_message_s"] == 8 * 60 + 20  # the first post on X
    assert figures["approval_time_median_s"] == (120 + 240) / 2  # 2 and 4 minutes
    assert figures["fan_out_time_median_s"] == (60 + 40) / 2  # approval to last channel
    assert figures["time_to_correction_median_s"] == (25 * 60 + 10) - (8 * 60 + 20)
    assert figures["share_questions_answered"] == round(2 / 3, 3)
    assert figures["handling_time_median_s"] == 120.0  # 2, 18 and 0 minutes
    assert (figures["checklist_on_time"], figures["checklist_done"], figures["checklist_steps"]) \
        == (1, 2, 3)
    kinds = [event.kind for event in result.timeline]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert kinds.count("accepted") == 4 and kinds.count("step") == 2
    late = next(e for e in result.timeline if e.kind == "step" and e.label == "b")
    assert late.detail["late"] is True
    assert sum(bucket["total"] for bucket in result.reactions_per_bucket) == 5
    assert len(result.reactions_per_bucket) == 13  # 60 minutes in 5-minute buckets, inclusive
