"""Twilio's status callbacks and inbound SMS.

The console's busiest requests (two callbacks for every SMS sent, one webhook for every reply):
crisis.webhooks.lane answers them in front of Flask's request machinery and calls these
functions, in an app context, with the request as Twilio made it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app

from channels import sms as sms_channel
from channels.factory import sandbox_settings
from crisis.extensions import db
from crisis.models import IncidentMode, RecipientState, SmsRecipient
from crisis.models.types import utcnow
from crisis.webhooks import autocommit, signer

log = logging.getLogger(__name__)

CALLBACK_STATES = {
    "queued": RecipientState.accepted,
    "accepted": RecipientState.accepted,
    "sending": RecipientState.accepted,
    "sent": RecipientState.sent,
    "delivered": RecipientState.delivered,
    "undelivered": RecipientState.undelivered,
    "failed": RecipientState.failed,
}
# The states a callback may move a recipient from: forward only.
EARLIER = {state: [s for s in RecipientState if s.rank < state.rank] for state in RecipientState}
_RECIPIENTS = SmsRecipient.__table__
_ADVANCE = {
    state: sa.update(_RECIPIENTS)
    .where(_RECIPIENTS.c.provider_sid == sa.bindparam("b_sid"),
           _RECIPIENTS.c.state.in_(EARLIER[state]))
    .values(state=state, updated_at=sa.bindparam("b_now"),
            error_code=sa.func.coalesce(sa.bindparam("b_error", type_=sa.String),
                                        _RECIPIENTS.c.error_code))
    for state in set(CALLBACK_STATES.values())
}


@dataclass(frozen=True)
class TwilioRequest:
    """A webhook as Twilio made it: the URL the app saw, the form, the X-Twilio-Signature."""

    url: str
    form: Mapping[str, str]
    signature: str


# (HTTP status, body: a dict is sent as JSON, headers)
Answer = tuple[int, "dict | str", dict[str, str]]


def signer_of(hook: TwilioRequest) -> str | None:
    """Who signed this Twilio request (see crisis.webhooks.signer), or None: refuse it."""
    url = sms_channel.public_url(hook.url, current_app.config.get("PUBLIC_URL"))
    return signer(lambda token: sms_channel.validate_signature(url, hook.form, hook.signature, token),
                  current_app.config.get("TWILIO_AUTH_TOKEN"), sandbox_settings()["TWILIO_AUTH_TOKEN"])


def status_callback(hook: TwilioRequest) -> Answer:
    """A delivery status: the recipient moves forward to it (never back)."""
    source = signer_of(hook)
    if source is None:
        log.warning("refused a Twilio status callback with a bad signature")
        return 403, {"error": "invalid signature"}, {}
    try:
        update = sms_channel.parse_status_callback(hook.form)
    except ValueError as exc:
        log.warning("refused a malformed Twilio status callback: %s", exc)
        return 400, {"error": str(exc)}, {}
    new_state = CALLBACK_STATES.get(update.status)
    if new_state is None:
        return 204, "", {}
    autocommit()
    if source == "drill":
        recipient = db.session.scalars(
            sa.select(SmsRecipient).where(SmsRecipient.provider_sid == update.message_sid)).first()
        if recipient is not None and not _drill_recipient(recipient):
            log.warning("refused a sandbox-signed status callback for a live message")
            return 403, {"error": "invalid signature"}, {}
    # Callbacks arrive out of order and more than once: a recipient only ever moves forward.
    # One conditional UPDATE, built once: two callbacks per SMS must stay cheap at thousands a minute.
    db.session.execute(_ADVANCE[new_state], {"b_sid": update.message_sid, "b_now": utcnow(),
                                             "b_error": update.error_code})
    db.session.commit()
    return 204, "", {}


def _drill_recipient(recipient: SmsRecipient) -> bool:
    from crisis.models import Incident, Message

    return bool(db.session.scalar(
        sa.select(Incident.mode == IncidentMode.drill).join(Message).where(
            Message.id == recipient.message_id)))


def inbound_sms(hook: TwilioRequest) -> Answer:
    """An SMS from the public: a subscription keyword (a command) or a reaction."""
    from crisis.reactions.ingest import ingest_sms
    from crisis.subscriptions.keywords import handle_keyword, is_keyword

    source = signer_of(hook)
    if source is None:
        log.warning("refused an inbound SMS webhook with a bad signature")
        return 403, {"error": "invalid signature"}, {}
    try:
        inbound = sms_channel.parse_inbound(hook.form)
    except ValueError as exc:
        log.warning("refused a malformed inbound SMS webhook: %s", exc)
        return 400, {"error": str(exc)}, {}
    # A drill's (sandbox-signed) keyword is only a reaction: never a live subscription change.
    if source != "drill" and is_keyword(inbound.body):
        handle_keyword(inbound)  # answers with a confirmation SMS of its own
    else:
        autocommit()
        ingest_sms(inbound, source=source)
    db.session.commit()
    return 200, sms_channel.empty_twiml(), {"Content-Type": "application/xml"}
