"""Log in, log out, the second factor, and the interface language."""

from __future__ import annotations

from urllib.parse import urlsplit

import segno
from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from crisis import audit
from crisis.auth import accounts, bp
from crisis.auth.forms import LoginForm, TotpForm
from crisis.auth.permissions import requires
from crisis.extensions import db, limiter
from crisis.models import User
from crisis.models.types import utcnow


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _safe_next(default: str) -> str:
    """Only local paths: an open redirect after login would help phishing."""
    target = request.args.get("next") or ""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        user = db.session.scalar(db.select(User).filter_by(email=email))
        if user is None or not user.active or not user.check_password(form.password.data):
            audit.record("login.failed", actor_id=user.id if user else None)
            db.session.commit()
            flash(_("Unknown e-mail address or wrong password."), "error")
            return render_template("auth/login.html", form=form), 401
        language = session.get("language")  # chosen on the login page: keep it
        session.clear()
        if language:
            session["language"] = language
        session.permanent = True
        login_user(user)
        user.last_login_at = utcnow()
        audit.record("login", actor_id=user.id)
        db.session.commit()
        if user.totp_enabled or user.role.needs_totp:
            return redirect(url_for("auth.totp", next=_safe_next(url_for("console.index"))))
        return redirect(_safe_next(url_for("console.index")))
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@requires("account.self")
def logout():
    user = current_user._get_current_object()
    audit.record("logout", actor_id=user.id)
    accounts.end_sessions(user)
    db.session.commit()
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/account/totp", methods=["GET", "POST"])
@requires("account.self")
@limiter.limit(_login_limit, methods=["POST"])
def totp():
    """Enrol (first time: a QR code) or pass the second factor for this session."""
    user = current_user._get_current_object()
    enrolling = not user.totp_enabled
    if enrolling:
        secret = session.get("totp_pending") or accounts.new_totp_secret()
        session["totp_pending"] = secret
    else:
        secret = user.totp_secret
    form = TotpForm()
    if form.validate_on_submit():
        if not accounts.totp_matches(secret, form.code.data):
            audit.record("totp.failed", actor_id=user.id)
            db.session.commit()
            flash(_("That code is not right. Try the newest code."), "error")
        else:
            if enrolling:
                user.totp_secret, user.totp_enabled_at = secret, utcnow()
                session.pop("totp_pending", None)
                audit.record("totp.enrolled", actor_id=user.id)
            else:
                audit.record("totp.passed", actor_id=user.id)
            db.session.commit()
            session["totp_ok"] = True
            return redirect(_safe_next(url_for("console.index")))
    qr = None
    if enrolling:
        uri = f"otpauth://totp/crisis:{user.email}?secret={secret}&issuer=crisis"
        qr = segno.make(uri, error="m").svg_data_uri(scale=5, dark="#000", light="#fff")
    return render_template(
        "auth/totp.html", form=form, enrolling=enrolling, qr=qr, secret=secret if enrolling else None
    )


@bp.post("/language")
def language():
    choice = request.form.get("language", "")
    if choice not in current_app.config["LANGUAGES"]:
        abort(400)
    session["language"] = choice
    if current_user.is_authenticated:
        current_user.locale = choice
        db.session.commit()
    return redirect(_safe_next(url_for("console.index")))
