"""The Facebook page webhook: comments and replies on the page's posts.

GET answers Meta's subscription check; POST carries comment events signed with the app secret
(`X-Hub-Signature-256`, an HMAC of the raw body). A bad signature is refused before anything is
parsed or stored; a malformed body is answered 400 and logged, never 500.
"""

from __future__ import annotations

import logging

from flask import current_app, request

from channels import facebook as fb
from channels.factory import sandbox_settings
from crisis.reactions import ingest
from crisis.webhooks import bp, ingest_signed_json, signer

log = logging.getLogger(__name__)


@bp.get("/facebook")
def facebook_verify():
    # The sandbox's token too: a drill's sandbox subscribes like Meta does (it stores nothing).
    tokens = [current_app.config.get("FACEBOOK_VERIFY_TOKEN"), sandbox_settings()["FACEBOOK_VERIFY_TOKEN"]]
    for token in [str(t) for t in tokens if t]:
        challenge = fb.verify_subscription(request.args, token)
        if challenge is not None:
            return challenge, 200, {"Content-Type": "text/plain; charset=utf-8"}
    log.warning("refused a Facebook subscription check with a wrong verify token")
    return {"error": "verification failed"}, 403


@bp.post("/facebook")
def facebook_event():
    raw = request.get_data(cache=True)  # the signature covers these exact bytes
    header = request.headers.get("X-Hub-Signature-256")
    source = signer(lambda secret: fb.verify_signature(raw, header, secret),
                    current_app.config.get("FACEBOOK_APP_SECRET"),
                    sandbox_settings()["FACEBOOK_APP_SECRET"])
    return ingest_signed_json("Facebook", source, fb.parse_webhook, ingest.ingest_comment)
