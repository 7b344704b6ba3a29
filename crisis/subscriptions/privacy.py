"""What we hold about one phone number: export it (AVG art. 15/20), erase it (art. 17), and purge
on schedule what the privacy statement says we keep only for a while.

Where a number can be: the subscriber row (with its consent record), its verification codes,
the per-message SMS recipient rows (the number is copied there), and reactions sent from it
(`author_ref`). The audit chain holds ids only, so it needs no erasure and stays verifiable.
When the channels talk to the sandbox, its records of the number are erased through its control
API as well. What remains after erasure are anonymous delivery counts: recipient rows with no
number, no subscriber and no provider id, keeping their state and segments.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import requests
import sqlalchemy as sa
from flask import current_app

from crisis import audit
from crisis.extensions import db
from crisis.models import (
    Area,
    Message,
    Reaction,
    SmsRecipient,
    Subscriber,
    SubscriberStatus,
    VerificationCode,
)
from crisis.models.types import utcnow
from crisis.subscriptions import setting

log = logging.getLogger(__name__)
SANDBOX_TIMEOUT = 5.0


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _recipient_filter(phone: str, subscriber: Subscriber | None):
    condition = SmsRecipient.phone == phone
    if subscriber is not None:
        condition = sa.or_(condition, SmsRecipient.subscriber_id == subscriber.id)
    return condition


def export(phone: str) -> dict[str, Any]:
    """Everything we hold about `phone` (E.164), as JSON-ready data.

    Not included: the keyed hash of the address a code was asked from (it identifies a network
    address, not this person) and the code hashes; sandbox records are not ours.
    """
    subscriber = db.session.scalar(sa.select(Subscriber).where(Subscriber.phone == phone))
    data: dict[str, Any] = {
        "phone": phone,
        "generated_at": utcnow().isoformat(),
        "subscriber": None,
        "verification_codes": [],
        "sms_messages": [],
        "reactions": [],
    }
    if subscriber is not None:
        areas = {a.id: a for a in db.session.scalars(
            sa.select(Area).where(Area.id.in_(subscriber.area_ids or [])))}
        data["subscriber"] = {
            "id": subscriber.id,
            "phone": subscriber.phone,
            "status": subscriber.status.value,
            "areas": [{"id": i, "code": areas[i].code if i in areas else None,
                       "name": areas[i].name if i in areas else None}
                      for i in subscriber.area_ids or []],
            "language": subscriber.language,
            "synthetic": subscriber.synthetic,
            "consent": subscriber.consent,
            "created_at": _iso(subscriber.created_at),
            "confirmed_at": _iso(subscriber.confirmed_at),
            "stopped_at": _iso(subscriber.stopped_at),
        }
        codes = db.session.scalars(sa.select(VerificationCode).where(
            VerificationCode.subscriber_id == subscriber.id).order_by(VerificationCode.id))
        data["verification_codes"] = [
            {"id": c.id, "created_at": _iso(c.created_at), "expires_at": _iso(c.expires_at),
             "attempts": c.attempts, "used_at": _iso(c.used_at)} for c in codes]
    rows = db.session.execute(
        sa.select(SmsRecipient, Message.incident_id)
        .join(Message, Message.id == SmsRecipient.message_id)
        .where(_recipient_filter(phone, subscriber))
        .order_by(SmsRecipient.id)
    ).all()
    data["sms_messages"] = [
        {"message_id": r.message_id, "incident_id": incident_id, "state": r.state.value,
         "language": r.language, "segments": r.segments, "attempts": r.attempts,
         "provider_sid": r.provider_sid, "error_code": r.error_code,
         "attempted_at": _iso(r.attempted_at), "updated_at": _iso(r.updated_at)}
        for r, incident_id in rows]
    reactions = db.session.scalars(
        sa.select(Reaction).where(Reaction.author_ref == phone).order_by(Reaction.id))
    data["reactions"] = [
        {"id": r.id, "channel": r.channel.value, "incident_id": r.incident_id,
         "message_id": r.message_id, "received_at": _iso(r.received_at),
         "author_name": r.author_name, "text": r.text, "category": r.category,
         "handling": r.handling.value, "reply_text": r.reply_text,
         "replied_at": _iso(r.replied_at)}
        for r in reactions]
    data["held"] = bool(data["subscriber"] or data["sms_messages"] or data["reactions"])
    return data


def erase(phone: str, *, actor_id: int | None = None, via: str = "api") -> dict[str, Any]:
    """Erase `phone` everywhere we hold it; commits. Returns counts (and the sandbox's answer).

    Idempotent: erasing a number we do not hold changes nothing and reports zeros.
    """
    subscriber = db.session.scalar(sa.select(Subscriber).where(Subscriber.phone == phone))
    subscriber_id = subscriber.id if subscriber is not None else None
    result: dict[str, Any] = {"subscribers": 0, "verification_codes": 0, "sms_recipients": 0,
                              "reactions": 0, "sandbox": None}
    if subscriber is not None:
        result["verification_codes"] = db.session.execute(
            sa.delete(VerificationCode).where(VerificationCode.subscriber_id == subscriber.id)
        ).rowcount
    # Only anonymous delivery counts remain: state and segments stay, who it went to does not.
    result["sms_recipients"] = db.session.execute(
        sa.update(SmsRecipient).where(_recipient_filter(phone, subscriber))
        .values(phone=None, subscriber_id=None, provider_sid=None,
                updated_at=SmsRecipient.updated_at)  # keep the times, not who
        .execution_options(synchronize_session=False)
    ).rowcount
    result["reactions"] = db.session.execute(
        sa.update(Reaction).where(Reaction.author_ref == phone)
        .values(author_ref=None, author_name="", text="", reply_text=None, triggers={})
        .execution_options(synchronize_session=False)
    ).rowcount
    if subscriber is not None:
        db.session.delete(subscriber)
        result["subscribers"] = 1
    audit.record("subscriber.erased", actor_id=actor_id,
                 target=("subscribers", subscriber_id) if subscriber_id else None, via=via,
                 **{k: v for k, v in result.items() if k != "sandbox"})
    db.session.commit()
    result["sandbox"] = _erase_in_sandbox(phone)
    return result


def _erase_in_sandbox(phone: str) -> dict[str, Any] | None:
    """The sandbox keeps what it was sent: erase the number there too when we talk to it."""
    url = current_app.config.get("SANDBOX_URL")
    if not url:
        return None
    headers = {}
    token = current_app.config.get("SANDBOX_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    target = f"{url.rstrip('/')}/_sandbox/twilio/numbers/{quote(phone, safe='')}"
    try:
        response = requests.delete(target, headers=headers, timeout=SANDBOX_TIMEOUT)
        response.raise_for_status()
        return {"ok": True, **response.json()}
    except (requests.RequestException, ValueError) as exc:
        log.warning("could not erase a number in the sandbox: %s", type(exc).__name__)
        return {"ok": False, "error": type(exc).__name__}


def purge(now: datetime | None = None) -> dict[str, int]:
    """Apply the retention periods of the privacy statement; commits.

    - a sign-up not confirmed within SUBSCRIBE_PENDING_HOURS is erased;
    - a number stopped more than SUBSCRIBE_STOPPED_RETENTION_DAYS ago is erased;
    - numbers on recipient rows older than SMS_RECIPIENT_RETENTION_DAYS are blanked;
    - used or expired verification codes older than a day are deleted.
    """
    now = now or utcnow()
    pending_before = now - timedelta(hours=float(setting("SUBSCRIBE_PENDING_HOURS")))
    stopped_before = now - timedelta(days=float(setting("SUBSCRIBE_STOPPED_RETENTION_DAYS")))
    phones = list(db.session.scalars(sa.select(Subscriber.phone).where(sa.or_(
        sa.and_(Subscriber.status == SubscriberStatus.pending,
                Subscriber.created_at < pending_before),
        sa.and_(Subscriber.status == SubscriberStatus.stopped,
                Subscriber.stopped_at < stopped_before),
    ))))
    for phone in phones:
        erase(phone, via="retention")
    recipients_before = now - timedelta(days=float(setting("SMS_RECIPIENT_RETENTION_DAYS")))
    blanked = db.session.execute(
        sa.update(SmsRecipient)
        .where(SmsRecipient.updated_at < recipients_before, SmsRecipient.phone.is_not(None))
        .values(phone=None, provider_sid=None, updated_at=SmsRecipient.updated_at)
        .execution_options(synchronize_session=False)
    ).rowcount
    codes = db.session.execute(
        sa.delete(VerificationCode).where(VerificationCode.expires_at < now - timedelta(days=1))
    ).rowcount
    db.session.commit()
    return {"erased": len(phones), "recipients_blanked": blanked, "codes_deleted": codes}
