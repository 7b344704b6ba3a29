"""What residents see: the current situation, each incident's timeline and each update.

Complete without JavaScript; with it, the pages poll /status.json (small, ETag'd, cacheable) and
refresh themselves. Every response is rendered once per change (crisis.public.cache) and answered
with an ETag and `Cache-Control: public`, so a crowd of phones and any proxy in front cost little.
Drills never appear here. Dutch by default, English with `?lang=en`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from flask import Response, current_app, render_template, request, send_from_directory, session
from flask_babel import force_locale, format_datetime, gettext

from crisis.messages.texts import update_url
from crisis.public import bp, data
from crisis.public.cache import Rendered, public_cache
from crisis.public.page import page_context

HTML = "text/html"


def settings_key() -> tuple:
    """The settings a rendering depends on, part of every cache key."""
    config = current_app.config
    return (config["PUBLIC_URL"], config["PUBLIC_POLL_SECONDS"], config.get("PUBLIC_SITE_NAME"))


def _language() -> tuple[str, bool]:
    """(language, personal): `?lang=` first, then a language chosen in this browser's session.

    The session is only read when the browser sent one, so anonymous pages stay shareable.
    """
    languages = current_app.config["LANGUAGES"]
    asked = request.args.get("lang")
    if asked in languages:
        return asked, False
    if current_app.config["SESSION_COOKIE_NAME"] in request.cookies:
        chosen = session.get("language")
        if chosen in languages:
            return chosen, True
    return current_app.config["BABEL_DEFAULT_LOCALE"], False


def respond(rendered: Rendered, *, private: bool = False, cors: bool = False) -> Response:
    """The cached bytes with their ETag; 304 when the client already has them."""
    max_age = int(current_app.config["PUBLIC_CACHE_SECONDS"])
    headers = {"Cache-Control": f"{'private' if private else 'public'}, max-age={max_age}",
               **rendered.headers}
    if cors:
        headers["Access-Control-Allow-Origin"] = "*"
        headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    if rendered.status == 200:
        headers["ETag"] = f'"{rendered.etag}"'
        if request.if_none_match.contains_weak(rendered.etag):
            return Response(status=304, headers=headers)
    return Response(rendered.body, status=rendered.status, mimetype=rendered.mimetype,
                    headers=headers)


# ---- rendering -------------------------------------------------------------------------------


def when(moment: datetime | None) -> str:
    """A time as residents read it, in Europe/Amsterdam: '3 maart 2026, 14:05'."""
    return format_datetime(moment, "d MMMM y, HH:mm") if moment else ""


def kind_label(kind: str) -> str:
    labels = {
        "alert": gettext("Warning"),
        "update": gettext("Update"),
        "correction": gettext("Correction"),
        "cancel": gettext("Cancelled"),
        "all_clear": gettext("All clear"),
    }
    return labels.get(kind, gettext("Update"))


def _html(template: str, lang: str, marker: tuple, *, status: int = 200, **context) -> Rendered:
    with force_locale(lang):
        body = render_template(
            template,
            **page_context(lang, data.version_of(marker)),
            when=when,
            kind_label=kind_label,
            **context,
        ).encode()
    return Rendered(body, HTML, hashlib.sha256(body).hexdigest()[:32], status=status)


def _not_found(lang: str, marker: tuple) -> Rendered:
    return _html("public/not_found.html", lang, marker, status=404, page="not-found")


def render_index(lang: str, marker: tuple) -> Rendered:
    return _html("public/index.html", lang, marker, page="index", incidents=data.load_incidents())


def _one_incident(slug: str) -> data.IncidentView | None:
    found = data.load_incidents(slug=slug, include_closed=True, require_visible=False)
    return found[0] if found else None


def render_incident(slug: str, lang: str, marker: tuple) -> Rendered:
    incident = _one_incident(slug)
    if incident is None:
        return _not_found(lang, marker)
    return _html("public/incident.html", lang, marker, page="incident", incident=incident)


def render_update(slug: str, message_id: int, lang: str, marker: tuple) -> Rendered:
    incident = _one_incident(slug)
    post = incident.post(message_id) if incident else None
    if post is None:
        return _not_found(lang, marker)
    return _html("public/update.html", lang, marker, page="update", incident=incident, post=post,
                 status=410 if post.withdrawn else 200)


def status_payload(marker: tuple) -> dict:
    """What the pages and the embedded banner poll: the incidents and each one's latest update."""
    incidents = []
    for incident in data.load_incidents():
        latest = incident.latest
        incidents.append({
            "slug": incident.slug,
            "title": incident.title,
            "status": incident.status,
            "language": incident.language,
            "url": f"{current_app.config['PUBLIC_URL'].rstrip('/')}/incidents/{incident.slug}",
            "latest": {
                "id": latest.id,
                "kind": latest.kind,
                "published_at": latest.published_at.replace(microsecond=0).isoformat(),
                "headline": latest.headline,
                "text": latest.body,
                "instruction": latest.instruction,
                "translations": latest.translations,
                "url": update_url(incident, latest.id),
            },
        })
    return {"version": data.version_of(marker), "incidents": incidents}


def render_status(marker: tuple) -> Rendered:
    body = json.dumps(status_payload(marker), ensure_ascii=False, sort_keys=True,
                      separators=(",", ":")).encode()
    return Rendered(body, "application/json", hashlib.sha256(body).hexdigest()[:32])


# ---- routes ----------------------------------------------------------------------------------


@bp.get("/")
def index():
    lang, private = _language()
    rendered = public_cache().get(("index", lang, settings_key()),
                                  lambda marker: render_index(lang, marker))
    return respond(rendered, private=private)


@bp.get("/incidents/<slug>")
def incident(slug: str):
    lang, private = _language()
    rendered = public_cache().get(("incident", slug, lang, settings_key()),
                                  lambda marker: render_incident(slug, lang, marker))
    return respond(rendered, private=private)


@bp.get("/incidents/<slug>/updates/<int:message_id>")
def update(slug: str, message_id: int):
    lang, private = _language()
    rendered = public_cache().get(("update", slug, message_id, lang, settings_key()),
                                  lambda marker: render_update(slug, message_id, lang, marker))
    return respond(rendered, private=private)


@bp.get("/status.json")
def status():
    rendered = public_cache().get(("status", settings_key()), render_status)
    return respond(rendered, cors=True)


@bp.get("/embed.js")
def embed():
    """The banner other sites embed: a static file, served with CORS so any site may load it."""
    response = send_from_directory(current_app.static_folder, "embed.js",
                                   mimetype="application/javascript",
                                   max_age=int(current_app.config["PUBLIC_CACHE_SECONDS"]) * 30)
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
