"""What the public answers: reactions on every channel, grouped into clusters per incident."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crisis.extensions import db
from crisis.models.types import UTCDateTime, str_enum, utcnow


class ReactionChannel(enum.Enum):
    x = "x"
    facebook = "facebook"
    sms = "sms"
    form = "form"  # the question/report form on the public pages


class Handling(enum.Enum):
    new = "new"
    assigned = "assigned"
    escalated = "escalated"
    handled = "handled"


class Reaction(db.Model):
    """One per (channel, provider id): a webhook delivered twice is stored once."""

    __tablename__ = "reactions"
    __table_args__ = (
        sa.UniqueConstraint("channel", "provider_id"),
        sa.Index("ix_reactions_incident_received", "incident_id", "received_at"),
        # Only the few reactions still waiting for processing: what the processing sweep reads.
        sa.Index("ix_reactions_unprocessed", "incident_id", "received_at",
                 postgresql_where=sa.text("processed_at IS NULL"),
                 sqlite_where=sa.text("processed_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[ReactionChannel] = mapped_column(str_enum(ReactionChannel))
    provider_id: Mapped[str] = mapped_column(sa.String(128))
    # None: not attached to an incident yet (the inbox).
    incident_id: Mapped[int | None] = mapped_column(sa.ForeignKey("incidents.id", ondelete="CASCADE"))
    delivery_id: Mapped[int | None] = mapped_column(sa.ForeignKey("deliveries.id", ondelete="SET NULL"))
    message_id: Mapped[int | None] = mapped_column(sa.ForeignKey("messages.id", ondelete="SET NULL"))
    in_reply_to: Mapped[str | None] = mapped_column(sa.String(128))  # the provider id it answers
    author_name: Mapped[str] = mapped_column(sa.String(200), default="")
    # How to answer on the reaction's own channel (an X user id, a phone number); personal data.
    author_ref: Mapped[str | None] = mapped_column(sa.String(200))
    text: Mapped[str] = mapped_column(sa.Text, default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    drill: Mapped[bool] = mapped_column(default=False)
    category: Mapped[str | None] = mapped_column(sa.String(16), index=True)
    urgency: Mapped[str | None] = mapped_column(sa.String(8))
    sentiment: Mapped[str | None] = mapped_column(sa.String(8))
    language: Mapped[str | None] = mapped_column(sa.String(8))
    triggers: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    cluster_id: Mapped[int | None] = mapped_column(sa.ForeignKey("clusters.id", ondelete="SET NULL"),
                                                   index=True)
    handling: Mapped[Handling] = mapped_column(str_enum(Handling), default=Handling.new)
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reply_text: Mapped[str | None] = mapped_column(sa.Text)
    reply_provider_id: Mapped[str | None] = mapped_column(sa.String(128))
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    replied_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    reply_error: Mapped[str | None] = mapped_column(sa.String(200))  # why the last reply failed
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # classified, clustered


class Cluster(db.Model):
    """Reactions on one theme in one incident: the basis of a suggested follow-up."""

    __tablename__ = "clusters"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(sa.ForeignKey("incidents.id", ondelete="CASCADE"),
                                             index=True)
    key: Mapped[int] = mapped_column()  # the clusterer's own id within the incident
    label: Mapped[str] = mapped_column(sa.String(200), default="")
    category: Mapped[str | None] = mapped_column(sa.String(16))
    count: Mapped[int] = mapped_column(default=0)
    open_count: Mapped[int] = mapped_column(default=0)
    series: Mapped[list] = mapped_column(sa.JSON, default=list)  # reactions per 5 minutes
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    __table_args__ = (sa.UniqueConstraint("incident_id", "key"),)


class ClustererState(db.Model):
    """The incremental clusterer's state per incident, so every worker continues the same one."""

    __tablename__ = "clusterer_states"

    incident_id: Mapped[int] = mapped_column(sa.ForeignKey("incidents.id", ondelete="CASCADE"),
                                             primary_key=True)
    state: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}
