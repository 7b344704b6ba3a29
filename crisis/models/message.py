"""Messages: one text the team wrote, its approval, and where it went."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crisis.extensions import db
from crisis.models.types import UTCDateTime, str_enum, utcnow

CHANNELS = ("x", "facebook", "sms", "website")


class MessageKind(enum.Enum):
    alert = "alert"
    update = "update"
    correction = "correction"
    cancel = "cancel"
    all_clear = "all_clear"


class MessageState(enum.Enum):
    draft = "draft"
    pending_approval = "pending_approval"
    approved = "approved"
    rejected = "rejected"
    scheduled = "scheduled"
    sending = "sending"
    sent = "sent"
    partially_failed = "partially_failed"
    failed = "failed"
    withdrawn = "withdrawn"  # a scheduled message taken back before it went
    stopped = "stopped"  # sending halted by the team

    @property
    def editable(self) -> bool:
        return self in (MessageState.draft, MessageState.pending_approval, MessageState.rejected)


class Message(db.Model):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(sa.ForeignKey("incidents.id", ondelete="CASCADE"),
                                             index=True)
    kind: Mapped[MessageKind] = mapped_column(str_enum(MessageKind), default=MessageKind.update)
    state: Mapped[MessageState] = mapped_column(str_enum(MessageState), default=MessageState.draft)
    language: Mapped[str] = mapped_column(sa.String(8), default="nl")
    headline: Mapped[str] = mapped_column(sa.String(200), default="")
    body: Mapped[str] = mapped_column(sa.Text, default="")
    instruction: Mapped[str] = mapped_column(sa.Text, default="")
    translations: Mapped[dict] = mapped_column(sa.JSON, default=dict)  # {"en": "..."}
    overrides: Mapped[dict] = mapped_column(sa.JSON, default=dict)  # {"x": "...", "sms": "..."}
    channels: Mapped[list] = mapped_column(sa.JSON, default=list)
    area_ids: Mapped[list] = mapped_column(sa.JSON, default=list)
    # Subscriber ids fixed when the approver saw the count; the SMS fan-out sends to exactly these.
    recipient_snapshot: Mapped[list] = mapped_column(sa.JSON, default=list)
    recipient_count: Mapped[int] = mapped_column(default=0)
    approval_hash: Mapped[str | None] = mapped_column(sa.String(64))
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    approver_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    break_glass_reason: Mapped[str | None] = mapped_column(sa.Text)
    rejection_reason: Mapped[str | None] = mapped_column(sa.Text)
    supersedes_id: Mapped[int | None] = mapped_column(sa.ForeignKey("messages.id"))
    delete_original: Mapped[bool] = mapped_column(default=False)  # corrections on X
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sending_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Optimistic locking: two editors saving the same version, the second is told to reload.
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

    incident = relationship("Incident")
    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="message", order_by="Delivery.id", cascade="all, delete-orphan"
    )
    supersedes: Mapped[Message | None] = relationship(remote_side=[id])

    def delivery(self, channel: str) -> Delivery | None:
        return next((d for d in self.deliveries if d.channel == channel), None)


class DeliveryState(enum.Enum):
    queued = "queued"
    sending = "sending"
    retrying = "retrying"
    accepted = "accepted"
    delivered = "delivered"
    failed = "failed"
    unknown = "unknown"  # the provider may have it: reconcile, never resend blindly
    retracted = "retracted"
    cancelled = "cancelled"  # stopped before it started

    @property
    def landed(self) -> bool:
        return self in (DeliveryState.accepted, DeliveryState.delivered, DeliveryState.retracted)


class Delivery(db.Model):
    """One per (message, channel): the outbox row a publish task claims."""

    __tablename__ = "deliveries"
    __table_args__ = (sa.UniqueConstraint("message_id", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("messages.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(sa.String(16))
    state: Mapped[DeliveryState] = mapped_column(
        str_enum(DeliveryState), default=DeliveryState.queued, index=True
    )
    attempts: Mapped[int] = mapped_column(default=0)
    # Indexed: a reaction (an X reply, a Facebook comment) finds the delivery it answers by it.
    provider_id: Mapped[str | None] = mapped_column(sa.String(128), index=True)
    url: Mapped[str | None] = mapped_column(sa.String(500))
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    error_code: Mapped[str | None] = mapped_column(sa.String(64))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    message: Mapped[Message] = relationship(back_populates="deliveries")
    events: Mapped[list[DeliveryEvent]] = relationship(
        back_populates="delivery", order_by="DeliveryEvent.id", cascade="all, delete-orphan"
    )


class DeliveryEvent(db.Model):
    """Every transition of a delivery; a retry is a new attempt here, never a state going back."""

    __tablename__ = "delivery_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        sa.ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    state: Mapped[str] = mapped_column(sa.String(16))
    attempt: Mapped[int] = mapped_column(default=0)
    detail: Mapped[dict] = mapped_column(sa.JSON, default=dict)

    delivery: Mapped[Delivery] = relationship(back_populates="events")
