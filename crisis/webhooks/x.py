"""X's Account Activity webhook (optional: X offers it on Enterprise plans; the poller is the default).

GET answers the CRC check; POST carries `tweet_create_events` signed with the consumer secret
(`x-twitter-webhooks-signature`, base64 HMAC-SHA256 of the raw body). A bad signature is refused
before anything is parsed or stored; a malformed body is answered 400 and logged, never 500.
"""

from __future__ import annotations

import json
import logging

from flask import current_app, request

from channels import x as x_channel
from channels.factory import sandbox_settings
from crisis.extensions import db
from crisis.reactions import ingest
from crisis.webhooks import MALFORMED, bp

log = logging.getLogger(__name__)


def _crc_secret() -> str:
    """The secret X's CRC check is answered with (a check says nothing of who asks: one secret).

    The live account's, unless live channels are pointed at the sandbox or no live X webhook is
    configured, when a sandbox (a drill's) is the only one that can be asking.
    """
    live = current_app.config.get("X_API_SECRET")
    if live and not current_app.config.get("SANDBOX_URL"):
        return str(live)
    return str(sandbox_settings()["X_API_SECRET"])


def _signer(raw: bytes, header: str | None) -> str | None:
    """The reaction's `source` (see crisis.reactions.ingest), or None for a bad signature."""
    live = current_app.config.get("X_API_SECRET")
    if live and x_channel.verify_webhook_signature(raw, header, str(live)):
        return "provider"
    if x_channel.verify_webhook_signature(raw, header, sandbox_settings()["X_API_SECRET"]):
        return ingest.source_of(sandbox_signed=True)
    return None


@bp.get("/x")
def x_crc():
    token = request.args.get("crc_token", "")
    if not token or len(token) > 512:
        return {"error": "crc_token required"}, 400
    return x_channel.crc_response(token, _crc_secret())


@bp.post("/x")
def x_event():
    raw = request.get_data(cache=True)
    header = request.headers.get("x-twitter-webhooks-signature")
    source = _signer(raw, header)
    if source is None:
        log.warning("refused an X webhook with a bad signature")
        return {"error": "invalid signature"}, 403
    try:
        payload = json.loads(raw)
        if not isinstance(payload, dict):
            raise ValueError("not a JSON object")
        mentions = x_channel.parse_webhook_events(payload)
    except MALFORMED as exc:
        log.warning("refused a malformed X webhook: %s", exc)
        return {"error": "malformed payload"}, 400
    for mention in mentions:
        ingest.ingest_mention(mention, source=source)
    db.session.commit()
    return {"ok": True}, 200
