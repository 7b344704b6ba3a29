"""Areas (a municipality's villages or districts) that messages and subscribers are tied to."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crisis.extensions import db
from crisis.models.types import UTCDateTime, utcnow


class Area(db.Model):
    __tablename__ = "areas"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    postcodes: Mapped[list] = mapped_column(sa.JSON, default=list)
    # GeoJSON Polygon coordinates ([[[lon, lat], ...]]), as imported.
    polygon: Mapped[list | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
