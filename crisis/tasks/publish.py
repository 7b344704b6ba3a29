"""Publishing one message: the dispatch, and one task per channel on the `publish` queue.

A task claims its delivery row with a conditional UPDATE (queued/retrying → sending), so a task
delivered twice, or re-driven by the sweep, publishes at most once. A retry first asks the
provider whether the earlier attempt landed (`find`) before it sends again.
"""

from __future__ import annotations

import logging
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

import sqlalchemy as sa
from celery import shared_task
from flask import current_app

from channels.base import (
    ChannelError,
    Outbound,
    PermanentChannelError,
    Receipt,
    TransientChannelError,
)
from crisis import audit, live
from crisis.channel_runtime import channels_for
from crisis.extensions import db
from crisis.messages import texts
from crisis.models import (
    Delivery,
    DeliveryEvent,
    DeliveryState,
    IncidentStatus,
    Message,
    MessageKind,
    MessageState,
)
from crisis.models.types import utcnow
from crisis.tasks.enqueue import send

log = logging.getLogger(__name__)
CLAIMABLE = (DeliveryState.queued, DeliveryState.retrying)
SHORT_WAIT = 30.0  # longer waits are left to the sweep (a due time in the row), never a countdown


@shared_task(name="crisis.tasks.publish.publish_delivery", ignore_result=True)
def publish_delivery(delivery_id: int) -> None:
    delivery = claim(delivery_id)
    if delivery is None:
        return
    message = delivery.message
    channel = channels_for(message.incident).get(delivery.channel)
    if channel is None:
        reason = channels_for(message.incident).missing.get(delivery.channel, "not configured")
        return settle_failure(delivery, PermanentChannelError(reason, "not_configured"))
    outbound = build_outbound(delivery)
    try:
        receipt = channel.find(outbound) if delivery.attempts > 1 else None
        if receipt is None:
            receipt = perform(channel, delivery, outbound)
    except TransientChannelError as exc:
        settle_retry(delivery, exc)
    except ChannelError as exc:
        settle_failure(delivery, exc)
    else:
        settle_accepted(delivery, receipt)


def claim(delivery_id: int) -> Delivery | None:
    """Move a due delivery to `sending` and commit, or return None if another task has it."""
    now = utcnow()
    claimed = db.session.execute(
        sa.update(Delivery)
        .where(
            Delivery.id == delivery_id,
            Delivery.state.in_(CLAIMABLE),
            sa.or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
        )
        .values(state=DeliveryState.sending, attempts=Delivery.attempts + 1, attempted_at=now,
                next_attempt_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        db.session.rollback()
        return None
    delivery = db.session.get(Delivery, delivery_id, populate_existing=True)
    if delivery.message.state is MessageState.stopped:
        _transition(delivery, DeliveryState.cancelled, reason="stopped")
        db.session.commit()
        return None
    _transition(delivery, DeliveryState.sending)
    db.session.commit()
    _emit(delivery)
    return delivery


def build_outbound(delivery: Delivery) -> Outbound:
    message = delivery.message
    draft = texts.draft_for(message)
    rendering = texts.RENDERERS[delivery.channel].render(draft)
    return Outbound(
        key=f"delivery-{delivery.id}",
        text=rendering.text,
        link=draft.link,
        title=message.headline or message.incident.title,
        reply_to=_reply_to(delivery),
        attempted_at=delivery.attempted_at,
        meta={
            "incident_slug": message.incident.slug,
            "message_id": message.id,
            "translations": message.translations,
            "kind": message.kind.value,
        },
    )


def _reply_to(delivery: Delivery) -> Receipt | None:
    """X updates thread under the incident's first post; corrections answer what they correct."""
    if delivery.channel != "x":
        return None
    message = delivery.message
    if message.supersedes_id:
        original = db.session.get(Message, message.supersedes_id).delivery("x")
        if original is not None and original.provider_id:
            return Receipt(original.provider_id, original.url)
    first = db.session.scalars(
        sa.select(Delivery)
        .join(Message)
        .where(Message.incident_id == message.incident_id, Delivery.channel == "x",
               Delivery.provider_id.is_not(None), Delivery.id != delivery.id)
        .order_by(Delivery.accepted_at)
        .limit(1)
    ).first()
    return Receipt(first.provider_id, first.url) if first else None


def perform(channel, delivery: Delivery, outbound: Outbound) -> Receipt:
    """Publish, and for corrections also amend the original where the provider allows it.

    The amendment (edit the Facebook post, delete the original X post) runs beside the publish,
    so a correction takes one provider round trip, not two.
    """
    amend = _amendment(channel, delivery, outbound)
    if amend is None:
        return channel.publish(outbound)
    with ThreadPoolExecutor(max_workers=1) as pool:
        amended = pool.submit(amend)
        receipt = channel.publish(outbound)
        amended.result()  # a failed amendment raises here: the retry finds the correction first
    if delivery.channel == "x":
        _transition(_original_delivery(delivery), DeliveryState.retracted, by=delivery.id)
    return receipt


def _original_delivery(delivery: Delivery) -> Delivery | None:
    message = delivery.message
    if message.kind not in (MessageKind.correction, MessageKind.cancel) or not message.supersedes_id:
        return None
    original = db.session.get(Message, message.supersedes_id).delivery(delivery.channel)
    return original if original is not None and original.provider_id else None


def _amendment(channel, delivery: Delivery, outbound: Outbound):
    original = _original_delivery(delivery)
    if original is None:
        return None
    receipt = Receipt(original.provider_id, original.url)
    if delivery.channel == "facebook":
        edited = replace(outbound, text=_superseded_text(original, delivery.message, outbound.link))
        return lambda: channel.edit(receipt, edited)
    if delivery.channel == "x" and delivery.message.delete_original:
        return lambda: channel.retract(receipt)
    return None


SUPERSEDED = {
    "nl": {"correction": "GECORRIGEERD – lees de correctie", "cancel": "INGETROKKEN – lees waarom"},
    "en": {"correction": "CORRECTED – read the correction", "cancel": "CANCELLED – read why"},
}


def _superseded_text(original: Delivery, follow_up: Message, link: str | None) -> str:
    """The original post, edited: a notice and a link to the correction first, then its text."""
    labels = SUPERSEDED.get(follow_up.language, SUPERSEDED["nl"])
    old_text = build_outbound(original).text
    notice = f"{labels[follow_up.kind.value]}: {link}" if link else labels[follow_up.kind.value]
    return f"{notice}\n\n{old_text}"


def lock_message(message_id: int) -> None:
    """Take the message's row lock before any other (delivery, audit head): one lock order for
    every task that settles a channel, so concurrent channels never deadlock (PostgreSQL)."""
    db.session.execute(sa.select(Message.id).where(Message.id == message_id).with_for_update())


def settle_accepted(delivery: Delivery, receipt: Receipt) -> None:
    lock_message(delivery.message_id)
    delivery.provider_id, delivery.url = receipt.provider_id, receipt.url
    delivery.accepted_at, delivery.last_error, delivery.error_code = utcnow(), None, None
    _transition(delivery, DeliveryState.accepted, provider_id=receipt.provider_id)
    audit.record("delivery.accepted", target=delivery, message=delivery.message_id,
                 channel=delivery.channel)
    refresh_message(delivery.message)
    db.session.commit()
    _emit(delivery)


def settle_retry(delivery: Delivery, exc: TransientChannelError) -> None:
    config = current_app.config
    if delivery.attempts >= int(config["PUBLISH_MAX_ATTEMPTS"]):
        return settle_failure(delivery, exc, code="retries_exhausted")
    backoff = min(float(config["PUBLISH_BACKOFF_MAX_SECONDS"]), 2.0 ** delivery.attempts)
    wait = max(exc.retry_after or 0.0, backoff * random.uniform(0.5, 1.0))
    delivery.next_attempt_at = utcnow() + timedelta(seconds=wait)
    delivery.last_error, delivery.error_code = str(exc)[:500], "transient"
    _transition(delivery, DeliveryState.retrying, wait=round(wait, 1), error=str(exc)[:200])
    db.session.commit()
    _emit(delivery)
    if wait <= SHORT_WAIT:
        send(publish_delivery, delivery.id, countdown=wait)


def settle_failure(delivery: Delivery, exc: ChannelError, code: str | None = None) -> None:
    lock_message(delivery.message_id)
    code = code or getattr(exc, "code", "error")
    # "duplicate" means the provider already has this text: an earlier attempt probably landed.
    state = DeliveryState.unknown if code == "duplicate" else DeliveryState.failed
    delivery.last_error, delivery.error_code = str(exc)[:500], code
    _transition(delivery, state, code=code, error=str(exc)[:200])
    audit.record(f"delivery.{state.value}", target=delivery, message=delivery.message_id,
                 channel=delivery.channel, code=code)
    refresh_message(delivery.message)
    db.session.commit()
    _emit(delivery)


def _transition(delivery: Delivery, state: DeliveryState, **detail) -> None:
    delivery.state = state
    delivery.events.append(DeliveryEvent(state=state.value, attempt=delivery.attempts,
                                         detail=detail))


SETTLED = {DeliveryState.accepted, DeliveryState.delivered, DeliveryState.retracted,
           DeliveryState.failed, DeliveryState.unknown, DeliveryState.cancelled}


def refresh_message(message: Message) -> None:
    """Derive the message's state once every channel has settled.

    Channel tasks finish concurrently: the message row is re-read under a lock (PostgreSQL;
    SQLite serialises writers anyway) and the deliveries' states come from the database, so the
    last task to settle always sees every other task's result, and a Stop made meanwhile wins.
    """
    db.session.flush()
    db.session.expire_all()  # other tasks' deliveries and a Stop may have committed meanwhile
    db.session.refresh(message, with_for_update=True)
    if message.state is not MessageState.sending:
        return
    states = list(db.session.scalars(sa.select(Delivery.state).where(
        Delivery.message_id == message.id)))
    if any(state not in SETTLED for state in states):
        return
    landed = [state for state in states if state.landed]
    if len(landed) == len(states):
        message.state = MessageState.sent
    elif landed:
        message.state = MessageState.partially_failed
    else:
        message.state = MessageState.failed
    message.finished_at = utcnow()
    if message.kind is MessageKind.all_clear and landed:
        incident = message.incident
        incident.status, incident.resolved_at = IncidentStatus.resolved, utcnow()
    live.message_changed(message)


def _emit(delivery: Delivery) -> None:
    from crisis.messages.service import delivery_json

    live.emit("delivery.updated", delivery_json(delivery), incident_id=delivery.message.incident_id)
