"""Provider webhooks. Every request's signature is checked before anything is read or stored;
a malformed one is answered with the right status and logged, never a 500."""

import json
import logging
from collections.abc import Callable, Iterable

from flask import Blueprint, request

from crisis.extensions import csrf, db, limiter

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)  # providers sign their requests; there is no browser session to protect
limiter.exempt(bp)


@bp.record_once
def _install_lane(state) -> None:
    from crisis.webhooks import lane

    lane.install(state.app)


@limiter.request_filter
def _is_webhook() -> bool:
    # Exempt, and not even counted: the limiter's per-request bookkeeping costs a webhook ~1 ms.
    return request.blueprint == "webhooks"


# What parsing a provider's JSON can raise on a body that is valid JSON of the wrong shape.
MALFORMED = (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError,
             OverflowError, OSError)

log = logging.getLogger(__name__)


def signer(verify: Callable[[str], bool], live_secret: object, sandbox_secret: str) -> str | None:
    """Who signed the request, as its `source` (see crisis.reactions.ingest.source_of), or None.

    The sandbox's secrets are public (they ship with the code), so unless live channels are
    pointed at the sandbox (demo, training), a sandbox signature may only touch drill data.
    """
    from crisis.reactions.ingest import source_of

    if live_secret and verify(str(live_secret)):
        return "provider"
    if verify(sandbox_secret):
        return source_of(sandbox_signed=True)
    return None


def autocommit() -> None:
    """Let this request's statements each commit on their own.

    For a webhook whose write is one statement (an INSERT that ignores a duplicate, a
    forward-only UPDATE): there is nothing to keep atomic, and a transaction costs two more
    round trips to the database (BEGIN and COMMIT) on the busiest path. Call it before the
    request's first statement: the session's connection takes the setting when it is checked out.
    """
    db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def ingest_signed_json(provider: str, source: str | None,
                       parse: Callable[[dict], Iterable], ingest_one: Callable) -> tuple:
    """A signed JSON webhook: 403 for a bad signature, 400 (logged) for a malformed body, else
    every event parsed from it is stored with its source, in one commit."""
    if source is None:
        log.warning("refused a %s webhook with a bad signature", provider)
        return {"error": "invalid signature"}, 403
    try:
        payload = json.loads(request.get_data(cache=True))
        if not isinstance(payload, dict):
            raise ValueError("not a JSON object")
        events = parse(payload)
    except MALFORMED as exc:
        log.warning("refused a malformed %s webhook: %s", provider, exc)
        return {"error": "malformed payload"}, 400
    for event in events:
        ingest_one(event, source=source)
    db.session.commit()
    return {"ok": True}, 200


from crisis.webhooks import facebook, twilio, x  # noqa: E402,F401
