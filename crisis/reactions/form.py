"""The question/report form on the public pages: residents ask without an account.

Its own small blueprint, because the public blueprint is exempt from rate limits (its pages are
cached and cheap) while this form writes to the database: every address may post a few times a
minute (Flask-Limiter). A CSRF token, a honeypot field and a bounded text keep scripts out. The
pages are private (`no-store`): they carry a session's CSRF token, so they are never cached and
never served by the public fast path. Drills never show the form: their reactions come from
the sandbox's injects.
"""

from __future__ import annotations

import hashlib
import logging

import sqlalchemy as sa
from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from crisis.extensions import db, limiter
from crisis.models import Incident, IncidentStatus
from crisis.public.cache import public_cache
from crisis.public.data import version_of
from crisis.public.page import page_context
from crisis.reactions import ingest

log = logging.getLogger(__name__)
bp = Blueprint("questions", __name__)

MIN_TEXT, MAX_TEXT, MAX_NAME = 3, 1000, 80


class QuestionForm(FlaskForm):
    text = TextAreaField(_l("Your question or report"),
                         validators=[DataRequired(), Length(min=MIN_TEXT, max=MAX_TEXT)])
    name = StringField(_l("Your name (optional)"), validators=[Optional(), Length(max=MAX_NAME)])
    # The honeypot: hidden from people (the `hidden` attribute), filled in by scripts.
    website = StringField(_l("Leave this field empty"), validators=[Optional()])


def _limit() -> str:
    return current_app.config.get("QUESTION_RATE_LIMIT", "5 per minute;30 per hour")


def _language() -> str:
    languages = current_app.config["LANGUAGES"]
    asked = request.args.get("lang")
    if asked in languages:
        return asked
    chosen = session.get("language")
    return chosen if chosen in languages else current_app.config["BABEL_DEFAULT_LOCALE"]


def _open_incident(slug: str) -> Incident | None:
    """A live incident the public may ask about: never a drill, never an archived one."""
    incident = db.session.scalars(sa.select(Incident).where(Incident.slug == slug)).first()
    if incident is None or incident.is_drill or incident.status is IncidentStatus.closed:
        return None
    return incident


def _page(template: str, lang: str, status: int = 200, **context):
    version = version_of(public_cache().current_marker(current_app))
    with force_locale(lang):
        body = render_template(template, **page_context(lang, version), max_text=MAX_TEXT,
                               **context)
    # Private and never stored: the page holds this session's CSRF token.
    return body, status, {"Cache-Control": "no-store", "Content-Type": "text/html; charset=utf-8"}


@bp.route("/incidents/<slug>/questions", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"])
def ask(slug: str):
    lang = _language()
    incident = _open_incident(slug)
    if incident is None:
        return _page("public/not_found.html", lang, 404, page="not-found")
    with force_locale(lang):
        form = QuestionForm()
        valid = form.validate_on_submit()
    if valid:
        if form.website.data:
            log.info("question form: honeypot filled, nothing stored")
        else:
            text = form.text.data.strip()
            # One question per session and text: a double click or a resubmitted page stores once.
            key = hashlib.sha256(f"{session.get('csrf_token', '')}|{text}".encode()).hexdigest()
            ingest.ingest_form(incident, text, (form.name.data or "").strip(), f"form-{key[:40]}")
            db.session.commit()
        keep = {"lang": lang} if "lang" in request.args else {}
        return redirect(url_for("questions.thanks", slug=slug, **keep))
    return _page("reactions/question_form.html", lang, 400 if form.errors else 200,
                 page="update", incident=incident, form=form)


@bp.get("/incidents/<slug>/questions/thanks")
def thanks(slug: str):
    lang = _language()
    incident = _open_incident(slug)
    if incident is None:
        return _page("public/not_found.html", lang, 404, page="not-found")
    return _page("reactions/question_thanks.html", lang, page="update", incident=incident)
