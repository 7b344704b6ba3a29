"""Where a poller is: the provider's cursor, when the provider said to wait, and who is polling."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crisis.extensions import db
from crisis.models.types import UTCDateTime, utcnow


class PollState(db.Model):
    """One row per poller and account (`key`, e.g. "x.mentions:<user id>")."""

    __tablename__ = "poll_states"

    key: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    since_id: Mapped[str | None] = mapped_column(sa.String(64))  # the newest id already read
    wait_until: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the provider said wait
    # A poll in progress holds the row until then, so two beats or workers never poll at once.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(sa.String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
