"""CAP 1.2 (OASIS Common Alerting Protocol) for every published message, at /cap/<message_id>.xml.

Other systems pick up our alerts from here (and from /cap.atom, crisis.public.feeds). Built with
lxml in the schema's element order. Times are whole seconds with the Europe/Amsterdam offset,
never `Z`; polygons are `lat,lon` pairs (GeoJSON stores `lon,lat`), closed; drills are `Exercise`
and are served here for the drill's own systems, never listed in the public feed.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import abort, current_app
from lxml import etree

from crisis.extensions import db
from crisis.messages.texts import update_url
from crisis.models import Area, Incident, IncidentMode, Message, PublicPost
from crisis.public import bp, data
from crisis.public.cache import Rendered, public_cache

NS = "urn:oasis:names:tc:emergency:cap:1.2"
MIMETYPE = "application/cap+xml"
CATEGORIES = {"Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport",
              "Infra", "CBRNE", "Other"}
URGENCIES = {"Immediate", "Expected", "Future", "Past", "Unknown"}
SEVERITIES = {"Extreme", "Severe", "Moderate", "Minor", "Unknown"}
CERTAINTIES = {"Observed", "Likely", "Possible", "Unlikely", "Unknown"}
LANGUAGE_TAGS = {"nl": "nl-NL", "en": "en-GB"}
ZONE = ZoneInfo("Europe/Amsterdam")
# CAP forbids spaces, commas and the restricted characters < and & in identifiers and senders.
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9._:@/-]+")


def _clean(value: str) -> str:
    return _NOT_ALLOWED.sub("-", value).strip("-")


def sender() -> str:
    """CAP_SENDER, or `crisis@<host of PUBLIC_URL>`."""
    configured = current_app.config.get("CAP_SENDER")
    if configured:
        return _clean(str(configured))
    host = urlsplit(current_app.config["PUBLIC_URL"]).hostname or "localhost"
    return _clean(f"crisis@{host}")


def identifier(message_id: int) -> str:
    """`crisis-<host>-<message id>`: unique per sender, only characters CAP allows."""
    host = urlsplit(current_app.config["PUBLIC_URL"]).hostname or "localhost"
    return _clean(f"crisis-{host}-{message_id}")


def cap_time(moment: datetime) -> str:
    """Whole seconds with the numeric Europe/Amsterdam offset, e.g. 2026-03-01T14:05:00+01:00."""
    return moment.astimezone(ZONE).replace(microsecond=0).isoformat()


def reference(message_id: int, sent: datetime) -> str:
    """One entry of <references>: `sender,identifier,sent`."""
    return f"{sender()},{identifier(message_id)},{cap_time(sent)}"


def _coordinate(value: float) -> str:
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def cap_polygon(polygon: list | None) -> str | None:
    """The outer ring of a GeoJSON polygon as CAP wants it: `lat,lon` pairs, space-separated, closed.

    GeoJSON stores `[lon, lat]`; CAP needs at least four pairs with the first repeated last.
    """
    if not polygon:
        return None
    ring = polygon[0] if isinstance(polygon[0], list) and polygon[0] and isinstance(
        polygon[0][0], list) else polygon
    points = [(float(p[1]), float(p[0])) for p in ring if isinstance(p, list | tuple) and len(p) >= 2]
    if not points:
        return None
    if points[0] != points[-1]:
        points.append(points[0])
    if len(points) < 4:
        return None
    return " ".join(f"{_coordinate(lat)},{_coordinate(lon)}" for lat, lon in points)


def _sub(parent, name: str, text: str | None = None):
    element = etree.SubElement(parent, f"{{{NS}}}{name}")
    if text is not None:
        element.text = text
    return element


def _choice(value: str, allowed: set[str], fallback: str) -> str:
    return value if value in allowed else fallback


def build_alert(post: PublicPost, message: Message, incident: Incident) -> bytes:
    """The CAP 1.2 document of one published message."""
    kind = message.kind.value
    earlier = data.earlier_posts(incident.id, post)
    references: list[tuple[int, datetime]] = []
    if message.supersedes_id:
        original = data.post_of(message.supersedes_id)
        if original is not None:
            references.append((message.supersedes_id, original.published_at))
    if not references and kind != "alert":
        references = [(p.message_id, p.published_at) for p, _ in earlier]
    if kind == "cancel":
        msg_type = "Cancel"
    elif kind == "alert" or not references:
        msg_type = "Alert"
    else:
        msg_type = "Update"

    alert = etree.Element(f"{{{NS}}}alert", nsmap={None: NS})
    _sub(alert, "identifier", identifier(message.id))
    _sub(alert, "sender", sender())
    _sub(alert, "sent", cap_time(post.published_at))
    drill = incident.mode is IncidentMode.drill
    _sub(alert, "status", "Exercise" if drill else "Actual")
    _sub(alert, "msgType", msg_type)
    _sub(alert, "scope", "Public")
    if drill:
        _sub(alert, "note", current_app.config["DRILL_MARKERS"].get("en", "EXERCISE:").rstrip(":"))
    if references and msg_type != "Alert":
        _sub(alert, "references", " ".join(reference(mid, sent) for mid, sent in references))
    _sub(alert, "incidents", _clean(f"crisis-{urlsplit(current_app.config['PUBLIC_URL']).hostname}"
                                    f"-incident-{incident.id}"))

    areas = _areas(message, incident)
    primary = message.language or incident.language or "nl"
    texts = {primary: post.body}
    for lang, text in sorted((post.translations or {}).items()):
        if lang != primary and lang in LANGUAGE_TAGS and isinstance(text, str) and text.strip():
            texts[lang] = text
    for lang, description in texts.items():
        _info(alert, incident, message, post, lang, description, lang == primary, areas)
    return etree.tostring(alert, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _info(alert, incident: Incident, message: Message, post: PublicPost, lang: str,
          description: str, primary: bool, areas: list[Area]) -> None:
    info = _sub(alert, "info")
    _sub(info, "language", LANGUAGE_TAGS.get(lang, lang))
    _sub(info, "category", _choice(incident.cap_category, CATEGORIES, "Other"))
    _sub(info, "event", incident.cap_event or incident.title)
    if message.kind.value == "all_clear":
        _sub(info, "responseType", "AllClear")
    _sub(info, "urgency", _choice(incident.cap_urgency, URGENCIES, "Unknown"))
    _sub(info, "severity", _choice(incident.severity.value, SEVERITIES, "Unknown"))
    _sub(info, "certainty", _choice(incident.cap_certainty, CERTAINTIES, "Unknown"))
    if current_app.config.get("PUBLIC_SITE_NAME"):
        _sub(info, "senderName", current_app.config["PUBLIC_SITE_NAME"])
    _sub(info, "headline", (post.headline or incident.title)[:160])
    _sub(info, "description", description)
    if primary and message.instruction:
        _sub(info, "instruction", message.instruction)
    _sub(info, "web", update_url(incident, message.id))
    for area in areas:
        element = _sub(info, "area")
        _sub(element, "areaDesc", area.name)
        polygon = cap_polygon(area.polygon)
        if polygon:
            _sub(element, "polygon", polygon)
        for postcode in area.postcodes or []:
            geocode = _sub(element, "geocode")
            _sub(geocode, "valueName", "postcode")
            _sub(geocode, "value", str(postcode))


def _areas(message: Message, incident: Incident) -> list[Area]:
    if message.area_ids:
        found = {a.id: a for a in db.session.scalars(
            sa.select(Area).where(Area.id.in_(message.area_ids)))}
        return [found[i] for i in message.area_ids if i in found]
    return list(incident.areas)


def render_cap(message_id: int, *, drill: bool = False) -> Rendered | None:
    """The CAP document of a published, not withdrawn post: of a live incident, or a drill's."""
    found = data.published_post(message_id)
    if found is None or found[0].withdrawn_at is not None:
        return None
    if (found[2].mode is IncidentMode.drill) is not drill:
        return None
    body = build_alert(*found)
    return Rendered(body, MIMETYPE, hashlib.sha256(body).hexdigest()[:32])


@bp.get("/cap/<int:message_id>.xml")
def cap_document(message_id: int):
    from crisis.public.views import respond, settings_key

    # Live documents from the shared cache: no query while nothing public changed.
    rendered = public_cache().get(("cap", message_id, settings_key()),
                                  lambda marker: render_cap(message_id))
    if rendered is not None:
        return respond(rendered, cors=True)
    # A drill's: its own systems may read it; it is not public, so no shared cache keeps it.
    drill = render_cap(message_id, drill=True)
    if drill is None:
        abort(404)
    return respond(drill, private=True, cors=True)
