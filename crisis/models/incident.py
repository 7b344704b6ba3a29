"""Incidents: what the team is handling, live or as a drill."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crisis.extensions import db
from crisis.models.area import Area
from crisis.models.types import UTCDateTime, str_enum, utcnow


class IncidentMode(enum.Enum):
    live = "live"
    drill = "drill"


class IncidentStatus(enum.Enum):
    active = "active"
    resolved = "resolved"  # an all-clear went out; the public pages say so
    closed = "closed"  # archived


class Severity(enum.Enum):
    """CAP 1.2 severity values."""

    extreme = "Extreme"
    severe = "Severe"
    moderate = "Moderate"
    minor = "Minor"
    unknown = "Unknown"


incident_areas = sa.Table(
    "incident_areas",
    db.metadata,
    sa.Column("incident_id", sa.ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("area_id", sa.ForeignKey("areas.id", ondelete="CASCADE"), primary_key=True),
)


class Incident(db.Model):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(80), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    mode: Mapped[IncidentMode] = mapped_column(str_enum(IncidentMode))
    status: Mapped[IncidentStatus] = mapped_column(
        str_enum(IncidentStatus), default=IncidentStatus.active
    )
    language: Mapped[str] = mapped_column(sa.String(8), default="nl")
    severity: Mapped[Severity] = mapped_column(str_enum(Severity), default=Severity.unknown)
    cap_category: Mapped[str] = mapped_column(sa.String(16), default="Safety")
    cap_event: Mapped[str] = mapped_column(sa.String(120), default="")
    cap_urgency: Mapped[str] = mapped_column(sa.String(16), default="Unknown")
    cap_certainty: Mapped[str] = mapped_column(sa.String(16), default="Unknown")
    runbook_id: Mapped[str | None] = mapped_column(sa.String(80))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Drills: the exercise leader, and when (and why) the drill was ended early.
    exercise_leader_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    injects_paused: Mapped[bool] = mapped_column(default=False)
    injects_paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_reason: Mapped[str | None] = mapped_column(sa.String(200))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    areas: Mapped[list[Area]] = relationship(secondary=incident_areas)

    @property
    def is_drill(self) -> bool:
        return self.mode is IncidentMode.drill
