"""SMS subscribers and the per-message recipient rows of the SMS fan-out."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crisis.extensions import db
from crisis.models.types import UTCDateTime, str_enum, utcnow


class SubscriberStatus(enum.Enum):
    pending = "pending"  # signed up, number not yet confirmed
    active = "active"
    stopped = "stopped"


class Subscriber(db.Model):
    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(sa.String(20), unique=True)  # E.164
    area_ids: Mapped[list] = mapped_column(sa.JSON, default=list)
    language: Mapped[str] = mapped_column(sa.String(8), default="nl")
    status: Mapped[SubscriberStatus] = mapped_column(
        str_enum(SubscriberStatus), default=SubscriberStatus.pending, index=True
    )
    # Drill subscribers: sandbox numbers with the same counts per area as the real list.
    synthetic: Mapped[bool] = mapped_column(default=False, index=True)
    consent: Mapped[dict] = mapped_column(sa.JSON, default=dict)  # what, when, how
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RecipientState(enum.Enum):
    queued = "queued"
    sending = "sending"
    accepted = "accepted"
    sent = "sent"
    delivered = "delivered"
    undelivered = "undelivered"
    failed = "failed"
    skipped = "skipped"  # the subscriber stopped before we got to them
    cancelled = "cancelled"  # sending was halted
    unknown = "unknown"  # a crash left it in flight: reconcile with the provider

    @property
    def rank(self) -> int:
        """Status callbacks only move a recipient forward along this order."""
        return _RANK[self]


_RANK = {
    RecipientState.queued: 0,
    RecipientState.sending: 1,
    RecipientState.unknown: 2,
    RecipientState.accepted: 3,
    RecipientState.sent: 4,
    RecipientState.delivered: 5,
    RecipientState.undelivered: 5,
    RecipientState.failed: 5,
    RecipientState.skipped: 5,
    RecipientState.cancelled: 5,
}


class SmsRecipient(db.Model):
    """One per (message, subscriber); the number is copied so erasure can blank it later."""

    __tablename__ = "sms_recipients"
    __table_args__ = (
        sa.UniqueConstraint("message_id", "subscriber_id"),
        sa.Index("ix_sms_recipients_message_state", "message_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("messages.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("subscribers.id", ondelete="SET NULL")
    )
    # Indexed: an SMS reply finds the latest message its sender got by it.
    phone: Mapped[str | None] = mapped_column(sa.String(20), index=True)
    language: Mapped[str] = mapped_column(sa.String(8), default="nl")
    state: Mapped[RecipientState] = mapped_column(
        str_enum(RecipientState), default=RecipientState.queued
    )
    provider_sid: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    error_code: Mapped[str | None] = mapped_column(sa.String(16))
    segments: Mapped[int] = mapped_column(default=1)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
