"""The sandbox's control API: reset, faults, injected public reactions."""

from __future__ import annotations

import hmac

from flask import Blueprint, abort, current_app, jsonify, request

bp = Blueprint("sandbox_control", __name__, url_prefix="/_sandbox")


def require_token() -> None:
    """Refuse control calls without the configured token (no token configured: open)."""
    token = current_app.config.get("SANDBOX_TOKEN")
    if not token:
        return
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), str(token).encode()):
        abort(401)


def providers():
    from channels.sandbox import PROVIDERS

    return PROVIDERS


@bp.before_app_request
def guard_control_paths():
    if request.path.startswith("/_sandbox"):
        require_token()


@bp.post("/reset")
def reset():
    for name in providers():
        current_app.extensions[f"sandbox_{name}"].reset()
    current_app.extensions["sandbox_faults"].clear()
    return jsonify(ok=True)


@bp.post("/faults")
def set_faults():
    """Body: {"provider": "x"|"facebook"|"twilio", ...Fault fields or `<kind>_for` seconds}."""
    spec = request.get_json(silent=True)
    if not isinstance(spec, dict) or spec.get("provider") not in providers():
        return jsonify(error="provider must be one of " + ", ".join(providers())), 400
    try:
        fault = current_app.extensions["sandbox_faults"].set(spec["provider"], spec)
    except (TypeError, ValueError) as exc:
        return jsonify(error=str(exc)), 400
    return jsonify(ok=True, fault=fault.__dict__)


@bp.get("/faults")
def fault_counts():
    """How many faults were served since the last reset, per provider and kind."""
    return jsonify(current_app.extensions["sandbox_faults"].counts())


@bp.post("/inject")
def inject():
    """Body: {"channel": "x"|"facebook"|"sms", ...}: a public reaction, sent the provider's way."""
    spec = request.get_json(silent=True)
    names = {"x": "x", "facebook": "facebook", "sms": "twilio", "twilio": "twilio"}
    if not isinstance(spec, dict) or spec.get("channel") not in names:
        return jsonify(error="channel must be one of x, facebook, sms"), 400
    store = current_app.extensions[f"sandbox_{names[spec['channel']]}"]
    try:
        result = store.inject(spec, current_app.config)
    except ValueError as exc:
        return jsonify(error=str(exc)), 400
    return jsonify(result), 202
