"""JSON API under /api/v1: bearer tokens or the console session (then with a CSRF token)."""

from flask import Blueprint, g

from crisis.extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)


@bp.before_request
def csrf_for_sessions():
    # A token is not sent by the browser on its own, so only cookie-authenticated calls need CSRF.
    if g.get("api_token") is None:
        from flask_login import current_user

        current_user.is_authenticated  # noqa: B018  (runs the token loader, which sets g.api_token)
        if g.get("api_token") is None:
            csrf.protect()


from crisis.api import drills, incidents, messages, reactions, subscribers  # noqa: E402,F401
