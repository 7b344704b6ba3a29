"""What the website channel publishes: the updates the public pages show."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crisis.extensions import db
from crisis.models.types import UTCDateTime, utcnow


class PublicPost(db.Model):
    __tablename__ = "public_posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(64), unique=True)  # the delivery that made it
    incident_id: Mapped[int] = mapped_column(sa.ForeignKey("incidents.id", ondelete="CASCADE"),
                                             index=True)
    message_id: Mapped[int | None] = mapped_column(sa.ForeignKey("messages.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(sa.String(16), default="update")
    headline: Mapped[str] = mapped_column(sa.String(200), default="")
    body: Mapped[str] = mapped_column(sa.Text)
    translations: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    corrected_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("public_posts.id"))

    incident = relationship("Incident")
