"""Runbook-driven incidents: the checklist and, for drills, the injects the exercise leader plays."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crisis.extensions import db
from crisis.models.types import UTCDateTime, str_enum, utcnow


class ChecklistItem(db.Model):
    __tablename__ = "checklist_items"
    __table_args__ = (sa.UniqueConstraint("incident_id", "step_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(sa.ForeignKey("incidents.id", ondelete="CASCADE"),
                                             index=True)
    step_id: Mapped[str] = mapped_column(sa.String(80))
    title: Mapped[str] = mapped_column(sa.String(300))
    role: Mapped[str] = mapped_column(sa.String(80), default="")
    phase: Mapped[str] = mapped_column(sa.String(80), default="")
    target_minutes: Mapped[int] = mapped_column(default=0)
    depends_on: Mapped[list] = mapped_column(sa.JSON, default=list)
    position: Mapped[int] = mapped_column(default=0)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    done_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))


class InjectState(enum.Enum):
    pending = "pending"
    paused = "paused"
    playing = "playing"
    played = "played"
    cancelled = "cancelled"


class DrillInject(db.Model):
    """One inject: a row with a due time that beat plays (never a Celery countdown)."""

    __tablename__ = "drill_injects"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(sa.ForeignKey("incidents.id", ondelete="CASCADE"),
                                             index=True)
    inject_id: Mapped[str] = mapped_column(sa.String(80), default="")
    channel: Mapped[str] = mapped_column(sa.String(16))
    at_minute: Mapped[float] = mapped_column(default=0.0)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    reactions: Mapped[list] = mapped_column(sa.JSON, default=list)  # [{text, count, spread_seconds}]
    state: Mapped[InjectState] = mapped_column(str_enum(InjectState), default=InjectState.pending,
                                               index=True)
    played_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When a sweep took it for playing: one `playing` far longer than a play takes was left by a
    # worker that died, and goes back to `pending`.
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
