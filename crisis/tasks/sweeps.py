"""The periodic sweep (beat): due scheduled messages, due retries, and reconciliation.

Everything that must happen later is a row with a due time, so nothing is lost or repeated when a
worker dies: the sweep finds it. What a crash left `sending` is never sent again blindly: the
sweep asks the provider (`find`) and marks it accepted when found, else `unknown`.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa
from celery import shared_task
from flask import current_app

from channels.base import ChannelError
from crisis import audit, live
from crisis.channel_runtime import channels_for
from crisis.extensions import db
from crisis.messages import service
from crisis.models import (
    Delivery,
    DeliveryState,
    Message,
    MessageState,
    RecipientState,
    SmsRecipient,
)
from crisis.models.types import utcnow
from crisis.tasks import publish, sms
from crisis.tasks.enqueue import send

log = logging.getLogger(__name__)


def stale_after() -> timedelta:
    # Longer than any provider call can take (timeouts are 10 s): a row older than this in
    # `sending` was left by a worker that died.
    return timedelta(seconds=float(current_app.config.get("STALE_SENDING_SECONDS", 60)))


@shared_task(name="crisis.tasks.sweeps.sweep", ignore_result=True)
def sweep() -> dict[str, int]:
    return {
        "scheduled": send_due_scheduled(),
        "deliveries": redrive_deliveries(),
        "reconciled": reconcile_deliveries(),
        "sms_batches": redrive_sms(),
        "sms_reconciled": reconcile_recipients(),
    }


def send_due_scheduled() -> int:
    due = list(db.session.scalars(sa.select(Message.id).where(
        Message.state == MessageState.scheduled, Message.scheduled_for <= utcnow())))
    for message_id in due:
        # Claim by a conditional update, so two sweeps never start the same message twice.
        claimed = db.session.execute(
            sa.update(Message).where(Message.id == message_id,
                                     Message.state == MessageState.scheduled)
            .values(state=MessageState.approved)
            .execution_options(synchronize_session=False)).rowcount
        if not claimed:
            continue
        message = db.session.get(Message, message_id, populate_existing=True)
        service.start_sending(message)
        live.message_changed(message)
        db.session.commit()
    return len(due)


def redrive_deliveries() -> int:
    """Queued rows whose task was lost, and retries that are due."""
    now = utcnow()
    rows = db.session.scalars(sa.select(Delivery.id).join(Message).where(
        Message.state == MessageState.sending,
        Delivery.channel != "sms",
        sa.or_(
            sa.and_(Delivery.state == DeliveryState.retrying, Delivery.next_attempt_at <= now),
            sa.and_(Delivery.state == DeliveryState.queued,
                    Delivery.created_at <= now - timedelta(seconds=5)),
        ),
    )).all()
    for delivery_id in rows:
        send(publish.publish_delivery, delivery_id)
    sms_rows = db.session.scalars(sa.select(Message.id).join(Delivery).where(
        Message.state == MessageState.sending, Delivery.channel == "sms",
        Delivery.state.in_((DeliveryState.queued, DeliveryState.retrying)),
        Delivery.created_at <= now - timedelta(seconds=5))).all()
    for message_id in sms_rows:
        send(sms.sms_fanout, message_id)
    return len(rows) + len(sms_rows)


def reconcile_deliveries() -> int:
    stale = list(db.session.scalars(sa.select(Delivery).where(
        Delivery.state == DeliveryState.sending, Delivery.channel != "sms",
        Delivery.attempted_at <= utcnow() - stale_after())))
    for delivery in stale:
        channel = channels_for(delivery.message.incident).get(delivery.channel)
        try:
            receipt = channel.find(publish.build_outbound(delivery)) if channel else None
        except ChannelError as exc:
            log.warning("reconcile of delivery %s postponed: %s", delivery.id, exc)
            continue
        if receipt is not None:
            publish.settle_accepted(delivery, receipt)
        else:
            delivery.error_code = "unknown"
            publish._transition(delivery, DeliveryState.unknown, reason="not found after a crash")
            audit.record("delivery.unknown", target=delivery, message=delivery.message_id)
            publish.refresh_message(delivery.message)
            db.session.commit()
            publish._emit(delivery)
    return len(stale)


def redrive_sms() -> int:
    """Queued recipients of sending messages whose batch task was lost or whose wait is over."""
    now = utcnow()
    message_ids = db.session.scalars(sa.select(SmsRecipient.message_id).join(Message).where(
        Message.state == MessageState.sending, SmsRecipient.state == RecipientState.queued,
        SmsRecipient.updated_at <= now - timedelta(seconds=10),
        sa.or_(SmsRecipient.next_attempt_at.is_(None), SmsRecipient.next_attempt_at <= now),
    ).distinct()).all()
    count = 0
    for message_id in message_ids:
        # Touch the rows first, so the next sweep does not enqueue them again while they wait.
        db.session.execute(sa.update(SmsRecipient).where(
            SmsRecipient.message_id == message_id, SmsRecipient.state == RecipientState.queued
        ).values(updated_at=now))
        db.session.commit()
        count += sms.enqueue_batches(message_id, only_due=True)
    for message_id in db.session.scalars(sa.select(Message.id).join(Delivery).where(
            Message.state == MessageState.sending, Delivery.channel == "sms",
            Delivery.state == DeliveryState.sending)).all():
        sms.finish_if_done(message_id)
    return count


def reconcile_recipients(limit: int = 5000) -> int:
    """Ask Twilio about recipients a crash left `sending`, in bulk: one listing per message."""
    stale = list(db.session.scalars(sa.select(SmsRecipient).where(
        SmsRecipient.state == RecipientState.sending,
        SmsRecipient.attempted_at <= utcnow() - stale_after()).limit(limit)))
    by_message: dict[int, list[SmsRecipient]] = {}
    for recipient in stale:
        by_message.setdefault(recipient.message_id, []).append(recipient)
    for message_id, recipients in by_message.items():
        message = db.session.get(Message, message_id)
        channel = channels_for(message.incident).get("sms")
        since = min(r.attempted_at for r in recipients) - timedelta(seconds=5)
        found = {}
        try:
            # Match the exact text per language: an earlier message to the same number is not it.
            for language in {r.language for r in recipients}:
                numbers = [r.phone for r in recipients if r.phone and r.language == language]
                found.update(channel.find_many(numbers, since, text=sms._text(message, language)))
        except ChannelError as exc:
            log.warning("reconcile of %d recipients postponed: %s", len(recipients), exc)
            continue
        for recipient in recipients:
            receipt = found.get(recipient.phone)
            if receipt is not None:
                recipient.state, recipient.provider_sid = RecipientState.accepted, receipt.provider_id
            else:
                recipient.state, recipient.error_code = RecipientState.unknown, "not_found"
        db.session.commit()
        sms.finish_if_done(message_id)
    return len(stale)
