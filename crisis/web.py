"""Cross-cutting web concerns: security headers, health, errors, template helpers."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import Flask, current_app, jsonify, render_template, request, session
from flask_babel import format_datetime, get_locale
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from crisis.extensions import db

log = logging.getLogger(__name__)

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)


def init_app(app: Flask) -> None:
    app.after_request(_security_headers)
    app.before_request(_keep_session_alive)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(CSRFError, _csrf_error)
    app.add_url_rule("/healthz", "healthz", healthz)
    app.jinja_env.filters["local_time"] = local_time
    app.context_processor(_template_globals)


def _security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def _keep_session_alive() -> None:
    # A permanent session with a refresh on each request is an idle timeout, not an absolute one.
    # Only an existing session: marking an empty one would set a cookie on every public page.
    if session:
        session.permanent = True


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.is_json or request.path.startswith(
        "/webhooks/"
    )


def _http_error(error: HTTPException):
    if _wants_json():
        return jsonify(error=error.name, detail=error.description), error.code
    return render_template("error.html", error=error), error.code


def _csrf_error(error: CSRFError):
    log.info("refused a request without a valid CSRF token: %s %s", request.method, request.path)
    if _wants_json():
        return jsonify(error="CSRF token missing or invalid", detail=error.description), 400
    return render_template("error.html", error=error), 400


def local_time(value: datetime | None, fmt: str = "medium") -> str:
    """Stored in UTC, shown in Europe/Amsterdam (Babel's configured zone)."""
    if value is None:
        return ""
    return format_datetime(value, fmt)


def _template_globals():
    return {"current_locale": str(get_locale() or "nl")}


def healthz():
    """Database, broker, worker and beat state; 503 when any is down."""
    checks = {
        "database": _check_database(),
        "broker": _check_broker(),
        "worker": _check_worker(),
        "beat": _check_beat(),
    }
    healthy = all(check["ok"] for check in checks.values())
    return jsonify(ok=healthy, **checks), 200 if healthy else 503


def _check_database() -> dict:
    try:
        db.session.execute(sa.text("SELECT 1"))
        return {"ok": True, "dialect": db.engine.dialect.name}
    except sa.exc.SQLAlchemyError as exc:
        return {"ok": False, "error": type(exc).__name__}


def _celery():
    return current_app.extensions["celery"]


def _check_broker() -> dict:
    celery = _celery()
    try:
        with celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return {"ok": True, "transport": conn.transport_cls}
    except Exception as exc:  # noqa: BLE001  (any broker failure means "down", named below)
        return {"ok": False, "error": type(exc).__name__}


def _check_worker() -> dict:
    embedded = current_app.extensions.get("crisis_embedded")
    if embedded is not None:
        return {"ok": embedded.worker_alive(), "mode": "embedded"}
    # Beat's heartbeat task only runs when a worker takes it: a fresh row proves both.
    return _check_beat()


def _check_beat() -> dict:
    from crisis.models import Heartbeat

    try:
        row = db.session.get(Heartbeat, "beat")
    except sa.exc.SQLAlchemyError as exc:  # the database is down: say so, do not answer 500
        return {"ok": False, "error": type(exc).__name__}
    if row is None:
        return {"ok": False, "last": None}
    age = datetime.now(UTC) - row.at
    limit = timedelta(seconds=6 * float(current_app.config["HEARTBEAT_SECONDS"]))
    return {"ok": age <= limit, "last": row.at.isoformat(), "age_seconds": round(age.total_seconds())}
