"""Subscription commands by SMS, called from the inbound webhook (crisis.webhooks.twilio).

- `AANMELDEN <kern>` (Dutch) / `JOIN <area>` (English): subscribe this number to that area (names
  and codes match case- and accent-insensitively, several areas allowed). The SMS itself proves
  the number, so no code is needed; the consent record says `how: "sms"` and keeps the
  MessageSid. Without an area, or with an unknown one, the reply lists the areas.
- `AFMELDEN` / `UITSCHRIJVEN` and Twilio's opt-out words (STOP, STOPALL, UNSUBSCRIBE, CANCEL,
  END, QUIT, REVOKE, OPTOUT): stopped. `START` / `UNSTOP`: active again with the same areas.
- Only a whole message is a command ("stop", " Stop! "), never a sentence ("stop met die
  sirene"): like Twilio, so a resident's reaction is not swallowed.

Not commands, on purpose: `HELP`/`INFO`/`HULP` (in a crisis "HELP" may be a call for help: it goes
to the reaction feed, where the team sees it) and `YES` (Twilio re-opens the line on it, but a
"yes" is no fresh consent; the subscriber stays stopped with us until START or AANMELDEN).

Replies. Twilio answers its own standard keywords: with Advanced Opt-Out on a Messaging Service
the inbound carries `OptOutType` and Twilio has already sent its (configurable) STOP/START reply,
and after STOP it refuses every send to that number (21610) until START. So we send our own
confirmation for AANMELDEN/JOIN and AFMELDEN always, and for STOP/START only when the inbound has
no `OptOutType`. Every reply goes through the SMS channel in a task after the commit, in the
subscriber's language. Every change is audited with ids only.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from channels.sms import InboundSms
from crisis import audit
from crisis.models import SubscriberStatus
from crisis.subscriptions import service

log = logging.getLogger(__name__)

JOIN_WORDS = {"AANMELDEN": "nl", "JOIN": "en"}
STOP_WORDS = {
    # Twilio's standard opt-out words (docs/channels.md §3.7) and the Dutch ones we tell people.
    "STOP": None, "STOPALL": None, "UNSUBSCRIBE": "en", "CANCEL": "en", "END": "en", "QUIT": "en",
    "REVOKE": "en", "OPTOUT": "en", "AFMELDEN": "nl", "UITSCHRIJVEN": "nl",
}
START_WORDS = {"START": None, "UNSTOP": None}
TWILIO_KEYWORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT",
                   "START", "UNSTOP"}
_TRIM = ".!?:;,\"'()"


@dataclass(frozen=True)
class Command:
    action: str  # join, stop, start
    word: str  # the keyword as sent, upper case
    language: str | None  # the keyword's language, when it has one
    rest: str = ""  # what followed the keyword (the areas of a join)


def parse(body: str | None) -> Command | None:
    """The command in an SMS body, or None when it is an ordinary message."""
    text = (body or "").strip()
    if not text or len(text) > 300:
        return None
    match = re.match(r"([^\s,:;]+)[\s,:;]*(.*)", text, re.S)
    word = match.group(1).strip(_TRIM).upper()
    rest = match.group(2).strip()
    if word in JOIN_WORDS:
        return Command("join", word, JOIN_WORDS[word], rest.strip(_TRIM + " "))
    if rest.strip(_TRIM + " "):
        return None  # the opt-out words count only on their own
    if word in STOP_WORDS:
        return Command("stop", word, STOP_WORDS[word])
    if word in START_WORDS:
        return Command("start", word, START_WORDS[word])
    return None


def is_keyword(body: str | None) -> bool:
    """Whether the SMS is a subscription command (else it is a reaction for the team)."""
    return parse(body) is not None


def handle_keyword(inbound: InboundSms) -> None:
    """Apply the command in the caller's transaction; replies are sent after its commit."""
    command = parse(inbound.body)
    if command is None:
        return
    phone = inbound.from_number
    subscriber = service.find(phone)
    language = (subscriber.language if subscriber is not None else None) or command.language or "nl"
    # Twilio answered (and blocked or unblocked the number) itself for its standard words.
    twilio_replied = bool(inbound.opt_out_type) and command.word in TWILIO_KEYWORDS
    if command.action == "join":
        _join(inbound, command, subscriber)
    elif command.action == "stop":
        if subscriber is not None:
            service.stop(subscriber, how="sms")
        if not twilio_replied:
            service.send_sms(phone, service.sms_text("stopped", language), "stopped")
    elif command.action == "start":
        _start(inbound, command, subscriber, language, twilio_replied)


def _join(inbound: InboundSms, command: Command, subscriber) -> None:
    phone = inbound.from_number
    language = command.language or "nl"
    keyword = service.join_keyword(language)
    if not command.rest:
        if subscriber is not None and subscriber.area_ids and subscriber.status in (
                SubscriberStatus.active, SubscriberStatus.stopped):
            # "AANMELDEN" alone from a subscriber: (back) on, with the areas they have.
            if subscriber.status is SubscriberStatus.stopped:
                service.activate(subscriber, list(subscriber.area_ids), language, "sms",
                                 message_sid=inbound.message_sid)
            service.send_sms(phone, service.sms_text(
                "subscribed", subscriber.language, areas=service.area_names(subscriber.area_ids)),
                "subscribed")
            return
        audit.record("subscriber.join_refused", reason="no_area")
        service.send_sms(phone, service.sms_text("no_area", language, keyword=keyword), "no_area")
        return
    areas = service.match_areas(command.rest)
    if not areas:
        audit.record("subscriber.join_refused", reason="unknown_area")
        service.send_sms(phone, service.sms_text("unknown_area", language, keyword=keyword),
                         "unknown_area")
        return
    wanted = [a.id for a in areas]
    if subscriber is None:
        subscriber = service.find_or_create_pending(phone, wanted, language)
    if subscriber.status is SubscriberStatus.active:
        wanted = sorted(set(subscriber.area_ids or []) | set(wanted))  # an extra area: add it
    service.activate(subscriber, wanted, language, "sms", message_sid=inbound.message_sid)
    service.send_sms(phone, service.sms_text("subscribed", language,
                                             areas=service.area_names(wanted)), "subscribed")


def _start(inbound: InboundSms, command: Command, subscriber, language: str,
           twilio_replied: bool) -> None:
    phone = inbound.from_number
    if subscriber is None or not subscriber.area_ids or subscriber.status is SubscriberStatus.pending:
        # Nothing to restart: say how to subscribe (Twilio's generic reply does not know areas).
        audit.record("subscriber.join_refused", reason="not_subscribed")
        service.send_sms(phone, service.sms_text(
            "not_subscribed", language, keyword=service.join_keyword(language)), "not_subscribed")
        return
    if subscriber.status is SubscriberStatus.stopped:
        service.activate(subscriber, list(subscriber.area_ids), subscriber.language, "sms",
                         message_sid=inbound.message_sid)
    if not twilio_replied:
        service.send_sms(phone, service.sms_text(
            "subscribed", subscriber.language, areas=service.area_names(subscriber.area_ids)),
            "subscribed")
