"""Creating and finding incidents, shared by the console, the API and the CLI."""

from __future__ import annotations

import re
import secrets
import unicodedata

import sqlalchemy as sa

from crisis import audit
from crisis.extensions import db
from crisis.models import Area, Incident, IncidentMode, Severity
from crisis.models.types import utcnow


class IncidentError(ValueError):
    """Input that cannot make an incident; the message names the field."""


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60] or "incident"


def _unique_slug(title: str) -> str:
    base = f"{slugify(title)}-{utcnow():%Y%m%d}"
    slug = base
    while db.session.scalar(sa.select(Incident.id).where(Incident.slug == slug)) is not None:
        slug = f"{base}-{secrets.token_hex(2)}"
    return slug


def create_incident(
    *,
    title: str,
    mode: str,
    actor_id: int | None,
    severity: str = "Unknown",
    area_ids: list[int] | None = None,
    language: str = "nl",
    event: str = "",
) -> Incident:
    title = (title or "").strip()
    if not 3 <= len(title) <= 200:
        raise IncidentError("title: between 3 and 200 characters")
    try:
        incident_mode = IncidentMode(mode)
    except ValueError:
        raise IncidentError("mode: 'live' or 'drill'") from None
    try:
        incident_severity = Severity(severity)
    except ValueError:
        raise IncidentError("severity: one of " + ", ".join(s.value for s in Severity)) from None
    areas = _areas(area_ids or [])
    incident = Incident(
        title=title,
        slug=_unique_slug(title),
        mode=incident_mode,
        severity=incident_severity,
        language=language if language in ("nl", "en") else "nl",
        cap_event=event or title,
        created_by_id=actor_id,
        areas=areas,
    )
    db.session.add(incident)
    db.session.flush()
    audit.record("incident.created", actor_id=actor_id, target=incident, mode=incident_mode.value)
    return incident


def _areas(area_ids: list[int]) -> list[Area]:
    if not area_ids:
        return []
    areas = list(db.session.scalars(sa.select(Area).where(Area.id.in_(area_ids))))
    if len(areas) != len(set(area_ids)):
        raise IncidentError("areas: unknown area id")
    return areas


def incidents_for_console() -> list[Incident]:
    query = sa.select(Incident).order_by(Incident.status, Incident.created_at.desc())
    return list(db.session.scalars(query))


def incident_json(incident: Incident) -> dict:
    return {
        "id": incident.id,
        "slug": incident.slug,
        "title": incident.title,
        "mode": incident.mode.value,
        "status": incident.status.value,
        "severity": incident.severity.value,
        "language": incident.language,
        "areas": [area.code for area in incident.areas],
        "created_at": incident.created_at.isoformat(),
    }
