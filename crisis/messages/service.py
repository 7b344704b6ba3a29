"""The message workflow: draft → submit → approve (a second person) → send, and what follows.

Every function here is used by the console and the API alike, so both follow the same rules
(no self-approval, the approval bound to a hash of what goes out, audit entries for each step).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from crisis import audit, live
from crisis.extensions import db
from crisis.messages import texts
from crisis.models import (
    CHANNELS,
    Delivery,
    DeliveryEvent,
    DeliveryState,
    Incident,
    IncidentStatus,
    Message,
    MessageKind,
    MessageState,
    RecipientState,
    SmsRecipient,
    Subscriber,
    SubscriberStatus,
    User,
)
from crisis.models.types import utcnow


class WorkflowError(Exception):
    """A step that is not allowed now; `status` is the HTTP status the API answers with."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.status = status


EDITABLE_FIELDS = ("headline", "body", "instruction", "translations", "overrides", "channels",
                   "area_ids", "kind", "scheduled_for", "delete_original")


def create_draft(incident: Incident, author: User, fields: dict[str, Any]) -> Message:
    if incident.status is IncidentStatus.closed:
        raise WorkflowError("this incident is closed")
    message = Message(incident=incident, author_id=author.id, language=incident.language,
                      channels=list(CHANNELS), area_ids=[a.id for a in incident.areas])
    _apply(message, fields)
    db.session.add(message)
    db.session.flush()
    audit.record("message.drafted", actor_id=author.id, target=message, incident=incident.id)
    return message


def update_draft(message: Message, editor: User, fields: dict[str, Any], version: int) -> Message:
    """Save an edit; `version` is what the editor loaded, so a concurrent edit is not overwritten."""
    if version != message.version:
        raise WorkflowError("someone else changed this message: reload it and edit again")
    if not message.state.editable:
        raise WorkflowError(f"a message that is {message.state.value} cannot be edited")
    _apply(message, fields)
    if message.state is not MessageState.draft:
        # An edit after submit (or after a rejection) needs a new submit and a new approval.
        message.state = MessageState.draft
        message.approval_hash = None
    db.session.flush()
    audit.record("message.edited", actor_id=editor.id, target=message)
    return message


def _apply(message: Message, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        if name not in EDITABLE_FIELDS:
            raise WorkflowError(f"{name}: unknown field", 422)
        setattr(message, name, _clean(name, value))


def _clean(name: str, value: Any) -> Any:
    if name in ("headline", "body", "instruction"):
        if not isinstance(value, str):
            raise WorkflowError(f"{name}: text expected", 422)
        return value.strip()
    if name == "kind":
        try:
            return MessageKind(value)
        except ValueError:
            raise WorkflowError("kind: " + ", ".join(k.value for k in MessageKind), 422) from None
    if name == "channels":
        if not isinstance(value, list) or not set(value) <= set(CHANNELS):
            raise WorkflowError("channels: a list of " + ", ".join(CHANNELS), 422)
        return [c for c in CHANNELS if c in value]
    if name == "area_ids":
        if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
            raise WorkflowError("area_ids: a list of area ids", 422)
        return sorted(set(value))
    if name in ("translations", "overrides"):
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise WorkflowError(f"{name}: an object of texts", 422)
        allowed = ("en", "nl") if name == "translations" else CHANNELS
        if not set(value) <= set(allowed):
            raise WorkflowError(f"{name}: keys must be in " + ", ".join(allowed), 422)
        return {k: v.strip() for k, v in value.items() if v.strip()}
    if name == "scheduled_for":
        return _when(value)
    if name == "delete_original":
        return bool(value)
    return value


def _when(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise WorkflowError("scheduled_for: an ISO 8601 time with an offset", 422) from None
    if moment.tzinfo is None:
        raise WorkflowError("scheduled_for: give the time zone offset", 422)
    return moment


def submit(message: Message, user: User) -> Message:
    if message.state not in (MessageState.draft, MessageState.rejected):
        raise WorkflowError(f"a message that is {message.state.value} cannot be submitted")
    found = texts.problems(message)
    if found:
        raise WorkflowError("; ".join(found), 422)
    snapshot = (follow_up_recipients(message) if message.supersedes_id and "sms" in message.channels
                else texts.recipient_ids(message))
    message.recipient_snapshot, message.recipient_count = snapshot, len(snapshot)
    message.approval_hash = texts.approval_hash(message)
    message.state, message.submitted_at = MessageState.pending_approval, utcnow()
    message.rejection_reason = None
    db.session.flush()
    audit.record("message.submitted", actor_id=user.id, target=message,
                 recipients=message.recipient_count)
    live.after_commit("approval.requested", {"message_id": message.id,
                                             "incident_id": message.incident_id})
    live.message_changed(message)
    return message


def approve(message: Message, approver: User, seen_hash: str, *, break_glass: str | None = None,
            confirmation: str | None = None) -> Message:
    """Approve exactly what the approver saw (`seen_hash`); the author never approves alone."""
    if message.state is not MessageState.pending_approval:
        raise WorkflowError(f"a message that is {message.state.value} cannot be approved")
    if message.author_id == approver.id and not break_glass:
        raise WorkflowError("you wrote this message: a second person must approve it", 403)
    if break_glass is not None and len(break_glass.strip()) < 10:
        raise WorkflowError("break-glass: write down why no second person can approve", 422)
    current = texts.approval_hash(message)
    if seen_hash != message.approval_hash or current != message.approval_hash:
        raise WorkflowError("the message changed since you looked at it: review it again")
    if not message.incident.is_drill and (
        (confirmation or "").strip().casefold() != message.incident.title.strip().casefold()
    ):
        # A live send is confirmed differently from a drill: the approver types the name.
        raise WorkflowError("type the incident's name to confirm a live send", 422)
    message.approver_id, message.approved_at = approver.id, utcnow()
    message.break_glass_reason = break_glass.strip() if break_glass else None
    audit.record("message.break_glass" if break_glass else "message.approved",
                 actor_id=approver.id, target=message, hash=current)
    if message.scheduled_for and message.scheduled_for > utcnow():
        message.state = MessageState.scheduled
    else:
        start_sending(message)
    db.session.flush()
    live.message_changed(message)
    return message


def reject(message: Message, approver: User, reason: str) -> Message:
    if message.state is not MessageState.pending_approval:
        raise WorkflowError(f"a message that is {message.state.value} cannot be rejected")
    if not reason or len(reason.strip()) < 3:
        raise WorkflowError("reason: say why, so the author can fix it", 422)
    message.state, message.rejection_reason = MessageState.rejected, reason.strip()
    message.approval_hash = None
    audit.record("message.rejected", actor_id=approver.id, target=message)
    live.message_changed(message)
    return message


def withdraw(message: Message, user: User) -> Message:
    if message.state is not MessageState.scheduled:
        raise WorkflowError("only a scheduled message can be withdrawn")
    message.state, message.finished_at = MessageState.withdrawn, utcnow()
    audit.record("message.withdrawn", actor_id=user.id, target=message)
    live.message_changed(message)
    return message


def start_sending(message: Message) -> None:
    """The outbox: create the deliveries in this transaction; their tasks are sent after commit.

    One task per channel, all at once (no dispatch hop in between): a slow channel never delays
    another, and the first post goes out one broker round trip after the approval.
    """
    from crisis.tasks.enqueue import after_commit
    from crisis.tasks.publish import publish_delivery
    from crisis.tasks.sms import sms_fanout

    message.state, message.sending_at = MessageState.sending, utcnow()
    for channel in message.channels:
        if message.delivery(channel) is None:
            delivery = Delivery(channel=channel, state=DeliveryState.queued)
            delivery.events.append(DeliveryEvent(state="queued", attempt=0))
            message.deliveries.append(delivery)
    db.session.flush()
    audit.record("message.sending", target=message, channels=",".join(message.channels))
    for delivery in message.deliveries:
        if delivery.channel == "sms":
            after_commit(sms_fanout, message.id)
        else:
            after_commit(publish_delivery, delivery.id)


def stop(message: Message, user: User) -> dict[str, Any]:
    """Halt a message in flight; report what already went out so a correction can follow."""
    if message.state is MessageState.scheduled:
        withdraw(message, user)
        return {"withdrawn": True, "accepted": {}}
    if message.state is not MessageState.sending:
        raise WorkflowError(f"a message that is {message.state.value} is not sending")
    now = utcnow()
    db.session.execute(
        sa.update(SmsRecipient)
        .where(SmsRecipient.message_id == message.id, SmsRecipient.state == RecipientState.queued)
        .values(state=RecipientState.cancelled, updated_at=now)
    )
    for delivery in message.deliveries:
        if delivery.state in (DeliveryState.queued, DeliveryState.retrying) or (
            delivery.channel == "sms" and not delivery.state.landed
        ):
            delivery.state = DeliveryState.cancelled
            delivery.events.append(DeliveryEvent(state="cancelled", attempt=delivery.attempts,
                                                 detail={"by": user.id}))
    message.state, message.finished_at = MessageState.stopped, now
    audit.record("message.stopped", actor_id=user.id, target=message)
    db.session.flush()
    live.message_changed(message)
    return {"withdrawn": False, "accepted": accepted_summary(message)}


def accepted_summary(message: Message) -> dict[str, Any]:
    summary: dict[str, Any] = {
        d.channel: d.provider_id for d in message.deliveries if d.state.landed
    }
    if "sms" in message.channels:
        summary["sms_recipients"] = sms_counts(message.id).get("accepted_total", 0)
    return summary


LANDED_SMS = (RecipientState.accepted, RecipientState.sent, RecipientState.delivered)


def sms_counts(message_id: int) -> dict[str, int]:
    rows = db.session.execute(
        sa.select(SmsRecipient.state, sa.func.count())
        .where(SmsRecipient.message_id == message_id)
        .group_by(SmsRecipient.state)
    ).all()
    counts = {state.value: 0 for state in RecipientState}
    for state, count in rows:
        counts[state.value] = count
    counts["accepted_total"] = sum(counts[s.value] for s in LANDED_SMS)
    counts["total"] = sum(count for _, count in rows)
    return counts


def follow_up(original: Message, author: User, kind: MessageKind,
              fields: dict[str, Any] | None = None) -> Message:
    """A correction, cancel or all-clear, bound to where the original went."""
    if kind not in (MessageKind.correction, MessageKind.cancel):
        raise WorkflowError("kind: correction or cancel", 422)
    landed = [d.channel for d in original.deliveries if d.state.landed]
    if not landed:
        raise WorkflowError("the original reached no channel: nothing to correct")
    message = Message(
        incident=original.incident,
        author_id=author.id,
        kind=kind,
        language=original.language,
        supersedes_id=original.id,
        channels=[c for c in CHANNELS if c in landed],
        area_ids=list(original.area_ids),
        headline=original.headline,
        body=_prefill(original, kind),
        translations={},
    )
    _apply(message, {k: v for k, v in (fields or {}).items() if k != "channels"})
    db.session.add(message)
    db.session.flush()
    audit.record(f"message.{kind.value}_drafted", actor_id=author.id, target=message,
                 supersedes=original.id)
    return message


def _prefill(original: Message, kind: MessageKind) -> str:
    label = {"nl": ("CORRECTIE", "INGETROKKEN"), "en": ("CORRECTION", "CANCELLED")}
    correction, cancel = label.get(original.language, label["nl"])
    if kind is MessageKind.correction:
        return f"{correction}: {original.body}"
    return f"{cancel}: " + ("Het eerdere bericht geldt niet meer." if original.language == "nl"
                            else "The earlier message no longer applies.")


def follow_up_recipients(message: Message) -> list[int]:
    """The original's accepted recipients, minus those who stopped since."""
    query = (
        sa.select(SmsRecipient.subscriber_id)
        .join(Subscriber, Subscriber.id == SmsRecipient.subscriber_id)
        .where(
            SmsRecipient.message_id == message.supersedes_id,
            SmsRecipient.state.in_(LANDED_SMS),
            Subscriber.status == SubscriberStatus.active,
        )
    )
    return sorted(db.session.scalars(query))


def message_json(message: Message, *, with_texts: bool = False) -> dict[str, Any]:
    data = {
        "id": message.id,
        "incident_id": message.incident_id,
        "kind": message.kind.value,
        "state": message.state.value,
        "version": message.version,
        "language": message.language,
        "headline": message.headline,
        "body": message.body,
        "translations": message.translations,
        "overrides": message.overrides,
        "channels": message.channels,
        "area_ids": message.area_ids,
        "recipient_count": message.recipient_count,
        "approval_hash": message.approval_hash,
        "author_id": message.author_id,
        "approver_id": message.approver_id,
        "break_glass": bool(message.break_glass_reason),
        "rejection_reason": message.rejection_reason,
        "supersedes_id": message.supersedes_id,
        "scheduled_for": _iso(message.scheduled_for),
        "created_at": _iso(message.created_at),
        "approved_at": _iso(message.approved_at),
        "deliveries": [delivery_json(d) for d in message.deliveries],
    }
    if "sms" in message.channels and message.state not in (
        MessageState.draft, MessageState.pending_approval, MessageState.rejected
    ):
        data["sms"] = sms_counts(message.id)
    if with_texts:
        data["texts"] = texts.rendered(message)
    return data


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "message_id": delivery.message_id,
        "channel": delivery.channel,
        "state": delivery.state.value,
        "attempts": delivery.attempts,
        "provider_id": delivery.provider_id,
        "url": delivery.url,
        "error": delivery.last_error,
        "error_code": delivery.error_code,
        "next_attempt_at": _iso(delivery.next_attempt_at),
        "accepted_at": _iso(delivery.accepted_at),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def retry_delivery(delivery_id: int, user: User) -> Message:
    """The team's "retry this channel": a new attempt in the delivery's log.

    For SMS it resends the recipients left unknown or failed; every retry first asks the provider
    whether the earlier attempt landed, so a retry never doubles a post.
    """
    from crisis.tasks.enqueue import after_commit
    from crisis.tasks.publish import publish_delivery
    from crisis.tasks.sms import sms_fanout

    delivery = db.session.get(Delivery, delivery_id)
    if delivery is None:
        raise WorkflowError("no such delivery", 404)
    message = delivery.message
    if message.state in (MessageState.stopped, MessageState.withdrawn):
        raise WorkflowError(f"a message that is {message.state.value} is not sent again")
    if delivery.channel == "sms":
        resent = db.session.execute(
            sa.update(SmsRecipient)
            .where(SmsRecipient.message_id == message.id,
                   SmsRecipient.state.in_((RecipientState.unknown, RecipientState.failed)))
            .values(state=RecipientState.queued, next_attempt_at=None, updated_at=utcnow())
        ).rowcount
        if not resent and delivery.state is not DeliveryState.failed:
            raise WorkflowError("no SMS recipient is left to resend")
        task = sms_fanout
        detail = {"by": user.id, "recipients": resent}
        args = (message.id,)
    else:
        if delivery.state not in (DeliveryState.failed, DeliveryState.unknown):
            raise WorkflowError(f"a delivery that is {delivery.state.value} needs no retry")
        task, detail, args = publish_delivery, {"by": user.id}, (delivery.id,)
    delivery.state, delivery.next_attempt_at = DeliveryState.retrying, None
    delivery.events.append(DeliveryEvent(state="retry_requested", attempt=delivery.attempts,
                                         detail=detail))
    message.state, message.finished_at = MessageState.sending, None
    audit.record("delivery.retry", actor_id=user.id, target=delivery, channel=delivery.channel)
    db.session.flush()
    after_commit(task, *args)
    live.message_changed(message)
    return message
