"""Provider webhooks. Every request's signature is checked before anything is read or stored;
a malformed one is answered with the right status and logged, never a 500."""

from flask import Blueprint, request

from crisis.extensions import csrf, limiter

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)  # providers sign their requests; there is no browser session to protect
limiter.exempt(bp)


@limiter.request_filter
def _is_webhook() -> bool:
    # Exempt, and not even counted: the limiter's per-request bookkeeping costs a webhook ~1 ms.
    return request.blueprint == "webhooks"


# What parsing a provider's JSON can raise on a body that is valid JSON of the wrong shape.
MALFORMED = (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError,
             OverflowError, OSError)

from crisis.webhooks import facebook, twilio, x  # noqa: E402,F401
