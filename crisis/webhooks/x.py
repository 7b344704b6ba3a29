"""X's Account Activity webhook (optional: X offers it on Enterprise plans; the poller is the default).

GET answers the CRC check; POST carries `tweet_create_events` signed with the consumer secret
(`x-twitter-webhooks-signature`, base64 HMAC-SHA256 of the raw body). A bad signature is refused
before anything is parsed or stored; a malformed body is answered 400 and logged, never 500.
"""

from __future__ import annotations

import logging

from flask import current_app, request

from channels import x as x_channel
from channels.factory import sandbox_settings
from crisis.reactions import ingest
from crisis.webhooks import bp, ingest_signed_json, signer

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


@bp.get("/x")
def x_crc():
    token = request.args.get("crc_token", "")
    if not token or len(token) > 512:
        return {"error": "crc_token required"}, 400
    return x_channel.crc_response(token, _crc_secret())


@bp.post("/x")
def x_event():
    raw = request.get_data(cache=True)  # the signature covers these exact bytes
    header = request.headers.get("x-twitter-webhooks-signature")
    source = signer(lambda secret: x_channel.verify_webhook_signature(raw, header, secret),
                    current_app.config.get("X_API_SECRET"), sandbox_settings()["X_API_SECRET"])
    return ingest_signed_json("X", source, x_channel.parse_webhook_events, ingest.ingest_mention)
