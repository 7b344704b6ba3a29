"""Routes of the subscriptions feature.

Residents (no login): `/subscribe`, `/subscribe/confirm`, `/subscribe/stop`, `/subscribe/privacy`.
Dutch by default, English with `?lang=en`. The sign-up and stop forms answer the same whatever
the number (active, stopped, unknown): nobody learns from them who is on the list. Neither can
they be used to make us text someone else: per-address limits (Flask-Limiter, and keyed hashes
of the address on the code rows), per-number limits, a daily cap on all codes, and CSRF.

Console (admin): `/console/subscribers` (counts; one subscriber by number), the CSV export, an
erasure, and `/console/areas` (edit, GeoJSON import).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import sqlalchemy as sa
from flask import (
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import force_locale, gettext
from flask_limiter.util import get_remote_address
from flask_login import current_user

from crisis import audit
from crisis.auth.permissions import requires
from crisis.csv_safe import to_csv
from crisis.extensions import db, limiter
from crisis.models import Area, Reaction, SmsRecipient, Subscriber, SubscriberStatus, VerificationCode
from crisis.public.page import language_link, page_context
from crisis.subscriptions import areas as area_rules
from crisis.subscriptions import bp, phones, privacy, service, setting
from crisis.subscriptions.forms import LANGUAGE_NAMES, ConfirmForm, StopForm, SubscribeForm

SESSION_KEY = "subscribe"


def _subscribe_limit() -> str:
    return str(setting("SUBSCRIBE_RATE_LIMIT"))


def _confirm_limit() -> str:
    return str(setting("SUBSCRIBE_CONFIRM_RATE_LIMIT"))


# --- rendering the residents' pages --------------------------------------------------------------


def _language() -> str:
    languages = current_app.config["LANGUAGES"]
    asked = request.args.get("lang")
    if asked in languages:
        return asked
    if session.get("language") in languages:
        return session["language"]
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def _version() -> str:
    """The public pages' change marker: their script then only says "newer information" here."""
    from crisis.public.cache import public_cache
    from crisis.public.data import version_of

    return version_of(public_cache().marker())


def _page(template: str, lang: str, status: int = 200, **context: Any) -> Response:
    with force_locale(lang):
        html = render_template(
            template,
            **page_context(lang, _version()),
            # "update": the public script announces news instead of reloading (and emptying) a form.
            page="update",
            sms_number=service.sms_number(),
            retention={
                "pending_hours": setting("SUBSCRIBE_PENDING_HOURS"),
                "stopped_days": setting("SUBSCRIBE_STOPPED_RETENTION_DAYS"),
                "recipient_days": setting("SMS_RECIPIENT_RETENTION_DAYS"),
                "code_minutes": setting("VERIFICATION_TTL_MINUTES"),
            },
            **context,
        )
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"  # forms with a session: never cached
    return response


def _phone_error(reason: str) -> str:
    messages = {
        "region": gettext("Only Dutch mobile numbers can sign up."),
        "not_mobile": gettext("This is not a mobile number: we can only send text messages to a "
                              "mobile number (06 ...)."),
    }
    return messages.get(reason, gettext("This is not a valid mobile number. Example: 06 12345678."))


def _refusal(reason: str) -> str:
    if reason == "daily_cap":
        return gettext("We cannot send any more codes today. Please try again tomorrow, or sign "
                       "up by text message (see below).")
    return gettext("Too many codes were asked for. Please wait an hour and try again.")


@bp.errorhandler(429)
def _too_many(error):
    if not request.path.startswith("/subscribe"):
        return render_template("error.html", error=error), 429
    lang = _language()
    with force_locale(lang):
        message = gettext("Too many attempts from your address. Please wait a while and try again.")
    return _page("public/subscribe_refused.html", lang, status=429, message=message)


def _send_code(phone: str, purpose: str, area_ids: list[int], language: str) -> str | None:
    """Issue and send a code (or, for a stop of a number not on the list, pretend to).

    Returns None when the page may say "we sent a code", or the refusal's reason. The session
    keeps which code to check and what to do then; never the number itself.
    """
    requester = service.requester_key(get_remote_address())
    subscriber = service.find(phone)
    try:
        service.check_limits(subscriber.id if subscriber is not None else None, requester)
    except service.Refused as refused:
        db.session.rollback()
        audit.record("subscriber.code_refused", reason=refused.reason, purpose=purpose)
        db.session.commit()
        return refused.reason
    code_id = None
    if purpose == "subscribe" or (subscriber is not None
                                  and subscriber.status is SubscriberStatus.active):
        if subscriber is None:
            subscriber = service.find_or_create_pending(phone, area_ids, language)
        row, code = service.issue_code(subscriber, requester)
        code_id = row.id
        language_of_text = language if purpose == "subscribe" else subscriber.language
        service.send_sms(phone, service.sms_text("code", language_of_text, code=code), "code")
    session[SESSION_KEY] = {"code_id": code_id, "purpose": purpose, "area_ids": area_ids,
                            "language": language, "masked": phones.mask(phone), "tries": 0}
    db.session.commit()
    return None


def _regions() -> list[str]:
    regions = setting("SUBSCRIBE_REGIONS")
    return [regions] if isinstance(regions, str) else list(regions)


@bp.route("/subscribe", methods=["GET", "POST"])
@limiter.limit(_subscribe_limit, methods=["POST"])
def subscribe():
    lang = _language()
    with force_locale(lang):
        areas = service.all_areas()
        form = SubscribeForm()
        choice = {"areas": [], "language": lang, "errors": {}}
        refusal = None
        if request.method == "POST":
            choice = _choices(areas)
        if form.validate_on_submit() and not choice["errors"]:
            try:
                phone = phones.normalise(form.phone.data, _regions())
            except phones.InvalidPhone as invalid:
                form.phone.errors = [_phone_error(invalid.reason)]
            else:
                reason = _send_code(phone, "subscribe", choice["areas"], choice["language"])
                if reason is None:
                    return redirect(language_link(lang)("subscriptions.confirm"), 303)
                refusal = _refusal(reason)
    status = 429 if refusal else (422 if request.method == "POST" else 200)
    return _page("public/subscribe.html", lang, status=status, form=form, areas=areas,
                 choice=choice, refusal=refusal,
                 languages={code: LANGUAGE_NAMES.get(code, code)
                            for code in current_app.config["LANGUAGES"]})


def _choices(areas: list[Area]) -> dict[str, Any]:
    """The ticked areas (known ids only) and the language, with an error for what is missing."""
    known = {a.id for a in areas}
    chosen = []
    for value in request.form.getlist("areas"):
        if value.isdigit() and int(value) in known and int(value) not in chosen:
            chosen.append(int(value))
    language = request.form.get("language")
    errors = {}
    if not chosen:
        errors["areas"] = gettext("Choose at least one area.")
    if language not in current_app.config["LANGUAGES"]:
        errors["language"] = gettext("Choose a language.")
        language = None
    return {"areas": chosen, "language": language, "errors": errors}


@bp.route("/subscribe/stop", methods=["GET", "POST"])
@limiter.limit(_subscribe_limit, methods=["POST"])
def stop():
    lang = _language()
    refusal = None
    with force_locale(lang):
        form = StopForm()
        if form.validate_on_submit():
            try:
                phone = phones.normalise(form.phone.data, _regions(), mobile_only=False)
            except phones.InvalidPhone as invalid:
                form.phone.errors = [_phone_error(invalid.reason)]
            else:
                reason = _send_code(phone, "stop", [], lang)
                if reason is None:
                    return redirect(language_link(lang)("subscriptions.confirm"), 303)
                refusal = _refusal(reason)
    status = 429 if refusal else (422 if request.method == "POST" else 200)
    return _page("public/subscribe_stop.html", lang, status=status, form=form, refusal=refusal)


@bp.route("/subscribe/confirm", methods=["GET", "POST"])
@limiter.limit(_confirm_limit, methods=["POST"])
def confirm():
    lang = _language()
    pending = session.get(SESSION_KEY)
    if not isinstance(pending, dict):
        return redirect(language_link(lang)("subscriptions.subscribe"))
    error = None
    with force_locale(lang):
        form = ConfirmForm()
        if form.validate_on_submit():
            outcome = _check(pending, form.code.data)
            if outcome in ("subscribed", "stopped"):
                session.pop(SESSION_KEY, None)
                return _page("public/subscribe_done.html", lang, outcome=outcome)
            error = {
                "wrong": gettext("That code is not right. Check the text message and try again."),
                "expired": gettext("This code has expired. Ask for a new code."),
                "exhausted": gettext("Too many wrong codes. Ask for a new code."),
                "used": gettext("This code was used already. Ask for a new code."),
            }[outcome]
            if outcome != "wrong":
                session.pop(SESSION_KEY, None)
    status = 422 if request.method == "POST" else 200
    return _page("public/subscribe_confirm.html", lang, status=status, form=form, error=error,
                 pending=pending, restart=error is not None and SESSION_KEY not in session)


def _check(pending: dict, code: str) -> str:
    """Check the code of this session; on success subscribe or stop. Commits."""
    pending["tries"] = int(pending.get("tries") or 0) + 1
    session[SESSION_KEY] = pending
    row = db.session.get(VerificationCode, pending["code_id"]) if pending.get("code_id") else None
    verdict = service.check_code(row, code)
    if not verdict.ok:
        db.session.commit()  # the wrong try counts
        if verdict.reason == "missing":  # a stop for a number not on the list: look the same
            maximum = int(setting("VERIFICATION_MAX_ATTEMPTS"))
            return "wrong" if pending["tries"] < maximum else "exhausted"
        return verdict.reason
    subscriber = db.session.get(Subscriber, row.subscriber_id)
    if pending.get("purpose") == "stop":
        service.stop(subscriber, how="web")
        db.session.commit()
        return "stopped"
    existing = set(db.session.scalars(sa.select(Area.id).where(
        Area.id.in_(pending.get("area_ids") or []))))
    language = pending.get("language") if pending.get("language") in current_app.config[
        "LANGUAGES"] else "nl"
    service.activate(subscriber, sorted(existing), language, "web", age_16_plus=True)
    service.send_sms(subscriber.phone, service.sms_text(
        "subscribed", language, areas=service.area_names(sorted(existing))), "subscribed")
    db.session.commit()
    return "subscribed"


@bp.get("/subscribe/privacy")
def privacy_statement():
    return _page("public/subscribe_privacy_page.html", _language())


# --- console: subscribers ------------------------------------------------------------------------


def area_status_counts() -> tuple[list[dict[str, Any]], Counter]:
    """Per area (and in total) how many subscribers are active, pending, stopped. No numbers."""
    per_area: dict[int, Counter] = {}
    totals: Counter = Counter()
    rows = db.session.execute(sa.select(Subscriber.area_ids, Subscriber.status).where(
        Subscriber.synthetic.is_(False)))
    for area_ids, status in rows:
        totals[status.value] += 1
        for area_id in set(area_ids or []):
            per_area.setdefault(area_id, Counter())[status.value] += 1
    result = []
    for area in service.all_areas():
        counts = per_area.get(area.id, Counter())
        result.append({"id": area.id, "code": area.code, "name": area.name,
                       **{s.value: counts.get(s.value, 0) for s in SubscriberStatus}})
    return result, totals


@bp.get("/console/subscribers")
@requires("subscribers.manage")
def subscribers():
    counts, totals = area_status_counts()
    synthetic = db.session.scalar(sa.select(sa.func.count()).select_from(Subscriber).where(
        Subscriber.synthetic.is_(True))) or 0
    query = (request.args.get("phone") or "").strip()
    found, details, invalid = None, None, False
    if query:
        try:
            phone = phones.normalise_any(query, _regions())
        except phones.InvalidPhone:
            invalid = True
        else:
            found = service.find(phone)
            details = _details(found) if found is not None else None
            audit.record("subscriber.looked_up", actor_id=current_user.id,
                         target=found if found is not None else None, found=found is not None)
            db.session.commit()
    return render_template("console/subscribers.html", counts=counts, totals=totals,
                           synthetic=synthetic, statuses=[s.value for s in SubscriberStatus],
                           query=query, found=found, details=details, invalid=invalid)


def _details(subscriber: Subscriber) -> dict[str, Any]:
    names = dict(db.session.execute(sa.select(Area.id, Area.name).where(
        Area.id.in_(subscriber.area_ids or []))).all())
    recipients = dict(db.session.execute(
        sa.select(SmsRecipient.state, sa.func.count()).where(
            SmsRecipient.subscriber_id == subscriber.id).group_by(SmsRecipient.state)).all())
    reactions = db.session.scalar(sa.select(sa.func.count()).select_from(Reaction).where(
        Reaction.author_ref == subscriber.phone)) or 0
    return {
        "areas": [names.get(i, f"#{i}") for i in subscriber.area_ids or []],
        "consent": json.dumps(subscriber.consent or {}, indent=2, ensure_ascii=False),
        "messages": {state.value: n for state, n in recipients.items()},
        "reactions": reactions,
    }


@bp.post("/console/subscribers/erase")
@requires("subscribers.manage")
def erase_subscriber():
    raw = (request.form.get("phone") or "").strip()
    try:
        phone = phones.normalise_any(raw, _regions())
    except phones.InvalidPhone:
        flash(gettext("That is not a phone number."), "error")
        return redirect(url_for("subscriptions.subscribers")), 303
    if request.form.get("confirm") != "yes":
        flash(gettext("Tick the box to confirm the erasure."), "error")
        return redirect(url_for("subscriptions.subscribers", phone=phone)), 303
    result = privacy.erase(phone, actor_id=current_user.id, via="console")
    if result["sandbox"] is not None and not result["sandbox"].get("ok"):
        flash(gettext("Erased here, but the sandbox could not be reached: try again."), "error")
    else:
        flash(gettext("Everything held about that number was erased."), "info")
    return redirect(url_for("subscriptions.subscribers")), 303


@bp.get("/console/subscribers.csv")
@requires("subscribers.manage")
def subscribers_csv():
    """`?kind=counts` (default: per area and status) or `?kind=subscribers` (one row each)."""
    kind = request.args.get("kind", "counts")
    if kind == "subscribers":
        names = dict(db.session.execute(sa.select(Area.id, Area.code)).all())
        rows = []
        query = sa.select(Subscriber).where(Subscriber.synthetic.is_(False)).order_by(Subscriber.id)
        for sub in db.session.scalars(query):
            consent = sub.consent or {}
            rows.append([sub.id, sub.phone, sub.status.value,
                         " ".join(names.get(i, str(i)) for i in sub.area_ids or []), sub.language,
                         sub.created_at.isoformat() if sub.created_at else "",
                         sub.confirmed_at.isoformat() if sub.confirmed_at else "",
                         sub.stopped_at.isoformat() if sub.stopped_at else "",
                         consent.get("how", ""), consent.get("when", ""),
                         consent.get("text_version", "")])
        header = ["id", "phone", "status", "areas", "language", "created_at", "confirmed_at",
                  "stopped_at", "consent_how", "consent_when", "consent_text_version"]
    elif kind == "counts":
        counts, totals = area_status_counts()
        statuses = [s.value for s in SubscriberStatus]
        header = ["area_code", "area_name", *statuses]
        rows = [[c["code"], c["name"], *(c[s] for s in statuses)] for c in counts]
        rows.append(["", "total", *(totals.get(s, 0) for s in statuses)])
    else:
        abort(400)
    audit.record("subscribers.csv_exported", actor_id=current_user.id, kind=kind, rows=len(rows))
    db.session.commit()
    filename = f"subscribers-{kind}.csv"
    return Response(to_csv(header, rows), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


# --- console: areas ----------------------------------------------------------------------------


def _area_form_values(area: Area | None) -> dict[str, str]:
    if area is None:
        return {"code": "", "name": "", "postcodes": "", "polygon": ""}
    return {"code": area.code, "name": area.name, "postcodes": ", ".join(area.postcodes or []),
            "polygon": json.dumps({"type": "Polygon", "coordinates": area.polygon})
            if area.polygon else ""}


@bp.route("/console/areas", methods=["GET", "POST"])
@requires("areas.manage")
def areas():
    errors: list[str] = []
    values = _area_form_values(None)
    if request.method == "POST":
        values = {k: request.form.get(k, "") for k in values}
        try:
            data = area_rules.from_form(request.form)
            if _code_taken(data.code):
                raise area_rules.AreaError([f"code: {data.code!r} is already used"])
            area, _created = area_rules.save(data)
        except area_rules.AreaError as exc:
            db.session.rollback()
            errors = exc.errors
        else:
            audit.record("area.created", actor_id=current_user.id, target=area)
            db.session.commit()
            flash(gettext("Area %(name)s saved.", name=area.name), "info")
            return redirect(url_for("subscriptions.areas")), 303
    counts = {c["id"]: c for c in area_status_counts()[0]}
    return render_template("console/areas.html", areas=service.all_areas(), counts=counts,
                           values=values, errors=errors), 422 if errors else 200


def _code_taken(code: str) -> bool:
    return db.session.scalar(sa.select(Area.id).where(Area.code == code.strip())) is not None


@bp.route("/console/areas/<int:area_id>", methods=["GET", "POST"])
@requires("areas.manage")
def edit_area(area_id: int):
    area = db.session.get(Area, area_id) or abort(404)
    errors: list[str] = []
    values = _area_form_values(area)
    if request.method == "POST":
        values = {k: request.form.get(k, "") for k in values}
        try:
            area_rules.save(area_rules.from_form(request.form), area)
        except area_rules.AreaError as exc:
            db.session.rollback()
            area = db.session.get(Area, area_id)
            errors = exc.errors
        else:
            audit.record("area.updated", actor_id=current_user.id, target=area)
            db.session.commit()
            flash(gettext("Area %(name)s saved.", name=area.name), "info")
            return redirect(url_for("subscriptions.areas")), 303
    return render_template("console/area_edit.html", area=area, values=values,
                           errors=errors), 422 if errors else 200


@bp.post("/console/areas/import")
@requires("areas.manage")
def import_areas():
    """A GeoJSON FeatureCollection: as the JSON body, or a file from the console's form."""
    wants_json = request.is_json
    try:
        if wants_json:
            document = request.get_json(silent=True)
        else:
            upload = request.files.get("file")
            raw = upload.read(5_000_001) if upload else (request.form.get("geojson") or "").encode()
            if len(raw) > 5_000_000:
                raise area_rules.AreaError(["file: larger than 5 MB"])
            try:
                document = json.loads(raw.decode("utf-8-sig")) if raw else None
            except (ValueError, UnicodeDecodeError):
                raise area_rules.AreaError(["file: not valid JSON"]) from None
        parsed = area_rules.from_geojson(document)
        created = updated = 0
        for data in parsed:
            area, was_created = area_rules.save(data)
            created += was_created
            updated += not was_created
    except area_rules.AreaError as exc:
        db.session.rollback()
        if wants_json:
            return jsonify(errors=exc.errors), 422
        counts = {c["id"]: c for c in area_status_counts()[0]}
        return render_template("console/areas.html", areas=service.all_areas(), counts=counts,
                               values=_area_form_values(None), errors=[],
                               import_errors=exc.errors), 422
    audit.record("area.imported", actor_id=current_user.id, created=created, updated=updated)
    db.session.commit()
    if wants_json:
        return jsonify(created=created, updated=updated,
                       areas=[{"id": a.id, "code": a.code, "name": a.name}
                              for a in service.all_areas()])
    flash(gettext("Imported: %(created)s new, %(updated)s updated.", created=created,
                  updated=updated), "info")
    return redirect(url_for("subscriptions.areas")), 303
