"""Provider webhooks. Every request's signature is checked before anything is read or stored;
a malformed one is answered with the right status and logged, never a 500."""

from flask import Blueprint

from crisis.extensions import csrf, limiter

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)  # providers sign their requests; there is no browser session to protect
limiter.exempt(bp)

from crisis.webhooks import twilio  # noqa: E402,F401
