"""The subscription rules shared by the web form, the SMS keywords, the console and the API.

Consent (AVG art. 7): every activation writes a consent record on the subscriber that says what
(areas and language), when, how (`web`, `sms` or `demo`) and under which version of the privacy
text; a stop adds when and how it was withdrawn. Audit entries name ids only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale, gettext

from crisis import audit
from crisis.extensions import db
from crisis.models import Area, Subscriber, SubscriberStatus, VerificationCode
from crisis.models.types import utcnow
from crisis.public.page import site_name
from crisis.subscriptions import setting
from crisis.tasks.enqueue import after_commit

PRIVACY_TEMPLATE = "public/subscribe_privacy.html"

# --- keyed hashes ------------------------------------------------------------------------------


def _key() -> bytes:
    return str(current_app.config["SECRET_KEY"]).encode()


def requester_key(address: str | None) -> str:
    """A keyed hash of the requesting address: counts requests without keeping an address log."""
    return hmac.new(_key(), f"requester:{address or '-'}".encode(), hashlib.sha256).hexdigest()


def hash_code(code: str) -> str:
    """`salt$mac`: a 6-digit code is guessable offline from a plain hash, not without the key."""
    salt = secrets.token_hex(8)
    mac = hmac.new(_key(), f"verification:{salt}:{code}".encode(), hashlib.sha256).hexdigest()
    return f"{salt}${mac}"


def code_matches(stored: str, code: str) -> bool:
    salt, _, mac = stored.partition("$")
    expected = hmac.new(_key(), f"verification:{salt}:{code}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, expected)


def new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


# --- limits ------------------------------------------------------------------------------------


class Refused(Exception):
    """A verification text we will not send: `reason` is `number`, `address` or `daily_cap`."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _count_codes(*conditions: Any, since: timedelta) -> int:
    query = sa.select(sa.func.count()).select_from(VerificationCode).where(
        VerificationCode.created_at >= utcnow() - since, *conditions)
    return int(db.session.scalar(query) or 0)


def check_limits(subscriber_id: int | None, requester: str) -> None:
    """Refuse a verification text over any limit: overall per day, per address, per number.

    The per-number count is the same for a subscribed number and an unknown one (both have a row
    once asked for), so the answer says nothing about whether a number is on the list.
    """
    hour, day = timedelta(hours=1), timedelta(days=1)
    if _count_codes(since=day) >= int(setting("VERIFICATION_DAILY_CAP")):
        raise Refused("daily_cap")
    by_address = VerificationCode.requester == requester
    if (_count_codes(by_address, since=hour) >= int(setting("VERIFICATION_PER_ADDRESS_HOUR"))
            or _count_codes(by_address, since=day) >= int(setting("VERIFICATION_PER_ADDRESS_DAY"))):
        raise Refused("address")
    if subscriber_id is not None:
        by_number = VerificationCode.subscriber_id == subscriber_id
        if (_count_codes(by_number, since=hour) >= int(setting("VERIFICATION_PER_NUMBER_HOUR"))
                or _count_codes(by_number, since=day) >= int(setting("VERIFICATION_PER_NUMBER_DAY"))):
            raise Refused("number")


# --- subscribers and codes ---------------------------------------------------------------------


def find(phone: str) -> Subscriber | None:
    return db.session.scalar(sa.select(Subscriber).where(Subscriber.phone == phone))


def find_or_create_pending(phone: str, area_ids: list[int], language: str) -> Subscriber:
    """The subscriber for `phone`; a new one is `pending` until the number is confirmed.

    An existing subscriber is not changed here: its choices change only on confirmation.
    """
    subscriber = find(phone)
    if subscriber is not None:
        return subscriber
    try:
        with db.session.begin_nested():
            subscriber = Subscriber(phone=phone, area_ids=list(area_ids), language=language,
                                    status=SubscriberStatus.pending, consent={})
            db.session.add(subscriber)
    except sa.exc.IntegrityError:  # the same number, asked for twice at once
        subscriber = find(phone)
        if subscriber is None:
            raise
    return subscriber


def issue_code(subscriber: Subscriber, requester: str) -> tuple[VerificationCode, str]:
    """A fresh code for `subscriber` (older open codes stop working); the caller commits."""
    now = utcnow()
    db.session.execute(
        sa.update(VerificationCode)
        .where(VerificationCode.subscriber_id == subscriber.id, VerificationCode.used_at.is_(None),
               VerificationCode.expires_at > now)
        .values(expires_at=now)
    )
    code = new_code()
    row = VerificationCode(
        subscriber_id=subscriber.id,
        code_hash=hash_code(code),
        requester=requester,
        created_at=now,
        expires_at=now + timedelta(minutes=int(setting("VERIFICATION_TTL_MINUTES"))),
        attempts=0,
    )
    db.session.add(row)
    db.session.flush()
    return row, code


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str = ""  # wrong, expired, exhausted, used, missing


def check_code(row: VerificationCode | None, code: str) -> Verdict:
    """Compare `code` with the row; every wrong try counts (the caller commits)."""
    if row is None or row.subscriber_id is None:
        return Verdict(False, "missing")
    if row.used_at is not None:
        return Verdict(False, "used")
    if row.expires_at <= utcnow():
        return Verdict(False, "expired")
    if row.attempts >= int(setting("VERIFICATION_MAX_ATTEMPTS")):
        return Verdict(False, "exhausted")
    row.attempts += 1
    if not code_matches(row.code_hash, code.strip()):
        left = int(setting("VERIFICATION_MAX_ATTEMPTS")) - row.attempts
        return Verdict(False, "wrong" if left > 0 else "exhausted")
    row.used_at = utcnow()
    return Verdict(True)


# --- consent, activation, stop -----------------------------------------------------------------


def text_version(language: str) -> str:
    """`<version>:<language>:<hash of the privacy template>`: which text the person saw."""
    cache = current_app.extensions.setdefault("crisis_subscribe_text_hash", {})
    if "hash" not in cache:
        path = Path(current_app.template_folder or "templates") / PRIVACY_TEMPLATE
        source = path.read_bytes() if path.exists() else b""
        cache["hash"] = hashlib.sha256(source).hexdigest()[:8]
    return f"{setting('SUBSCRIBE_TEXT_VERSION')}:{language}:{cache['hash']}"


def consent_record(area_ids: list[int], language: str, how: str, **extra: Any) -> dict[str, Any]:
    codes = dict(db.session.execute(sa.select(Area.id, Area.code).where(Area.id.in_(area_ids))).all())
    return {
        "what": {"area_ids": sorted(area_ids), "areas": [codes.get(i) for i in sorted(area_ids)],
                 "language": language},
        "when": utcnow().isoformat(),
        "how": how,
        "text_version": text_version(language),
        **extra,
    }


def activate(subscriber: Subscriber, area_ids: list[int], language: str, how: str,
             actor_id: int | None = None, **extra: Any) -> None:
    """Make `subscriber` active for exactly these areas with a new consent record."""
    was = subscriber.status
    subscriber.area_ids = sorted(set(area_ids))
    subscriber.language = language
    subscriber.status = SubscriberStatus.active
    subscriber.confirmed_at = utcnow()
    subscriber.stopped_at = None
    subscriber.consent = consent_record(subscriber.area_ids, language, how, **extra)
    db.session.flush()
    audit.record("subscriber.activated", actor_id=actor_id, target=subscriber, how=how,
                 previous=was.value, area_ids=subscriber.area_ids)


def stop(subscriber: Subscriber, how: str, actor_id: int | None = None) -> None:
    """Withdraw consent: nothing more is sent; the record says when and how."""
    if subscriber.status is SubscriberStatus.stopped:
        return
    subscriber.status = SubscriberStatus.stopped
    subscriber.stopped_at = utcnow()
    subscriber.consent = {**(subscriber.consent or {}),
                          "withdrawn": {"when": subscriber.stopped_at.isoformat(), "how": how}}
    db.session.flush()
    audit.record("subscriber.stopped", actor_id=actor_id, target=subscriber, how=how)


# --- areas -------------------------------------------------------------------------------------


def fold(text: str) -> str:
    """Case- and accent-insensitive form: `Oudleusen`, `OUDLEUSEN`, `oúdleusen` all match."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().replace("-", " ").replace("_", " ").split())


def all_areas() -> list[Area]:
    return list(db.session.scalars(sa.select(Area).order_by(Area.name)))


def match_areas(text: str) -> list[Area] | None:
    """The areas named in `text` (names or codes, several allowed), or None if any is unknown.

    Multi-word names win over their parts ("De Meele"); separators: spaces, commas, `en`/`and`.
    """
    areas = all_areas()
    names: dict[str, Area] = {}
    for area in areas:
        names.setdefault(fold(area.code), area)
        names.setdefault(fold(area.name), area)
    wanted = fold(text.replace(",", " ").replace(";", " ").replace("/", " ").replace("&", " "))
    if not wanted:
        return None
    if wanted in names:
        return [names[wanted]]
    tokens = [t for t in wanted.split() if t not in ("en", "and", "+")]
    found: list[Area] = []
    i = 0
    while i < len(tokens):
        for length in range(len(tokens) - i, 0, -1):
            candidate = " ".join(tokens[i:i + length])
            if candidate in names:
                if names[candidate] not in found:
                    found.append(names[candidate])
                i += length
                break
        else:
            return None
    return found or None


# --- texts -------------------------------------------------------------------------------------


def sms_number() -> str | None:
    """The number residents text: configured, else the Twilio sender (the sandbox's in a demo)."""
    configured = setting("SUBSCRIBE_SMS_NUMBER") or current_app.config.get("TWILIO_FROM")
    if configured:
        return configured
    if current_app.config.get("SANDBOX_URL"):
        from channels.factory import sandbox_settings

        return sandbox_settings().get("TWILIO_FROM")
    return None


def privacy_url() -> str:
    return current_app.config["PUBLIC_URL"].rstrip("/") + "/subscribe/privacy"


def area_names(area_ids: list[int] | None = None) -> str:
    query = sa.select(Area.name).order_by(Area.name)
    if area_ids is not None:
        query = query.where(Area.id.in_(area_ids))
    return ", ".join(db.session.scalars(query))


def sms_text(kind: str, language: str, **params: Any) -> str:
    """The text of one subscription SMS in `language`. GSM-7 only (no ë/ï), so one part is cheap."""
    with force_locale(language if language in current_app.config["LANGUAGES"] else "nl"):
        site = site_name()
        texts = {
            "code": lambda: gettext(
                "%(site)s: your code is %(code)s. It is valid for %(minutes)s minutes. "
                "Did you not ask for it? Then ignore this message.",
                site=site, code=params.get("code"),
                minutes=setting("VERIFICATION_TTL_MINUTES")),
            "subscribed": lambda: gettext(
                "%(site)s: you will now receive crisis alerts by SMS for %(areas)s. "
                "To stop, send STOP. Privacy: %(url)s",
                site=site, areas=params.get("areas"), url=privacy_url()),
            "stopped": lambda: gettext(
                "%(site)s: you will no longer receive crisis alerts by SMS. "
                "To subscribe again, send START.", site=site),
            "no_area": lambda: gettext(
                "%(site)s: send %(keyword)s followed by your area, one of: %(areas)s",
                site=site, keyword=params.get("keyword"), areas=area_names()),
            "unknown_area": lambda: gettext(
                "%(site)s: we do not know that area. Send %(keyword)s followed by one of: "
                "%(areas)s", site=site, keyword=params.get("keyword"), areas=area_names()),
            "not_subscribed": lambda: gettext(
                "%(site)s: you are not subscribed. Send %(keyword)s followed by your area, "
                "one of: %(areas)s", site=site, keyword=params.get("keyword"),
                areas=area_names()),
        }
        return texts[kind]()


def join_keyword(language: str) -> str:
    return "JOIN" if language == "en" else "AANMELDEN"


def send_sms(to: str, text: str, kind: str) -> None:
    """Send one subscription text through the SMS channel, in a task, after this commit."""
    from crisis.subscriptions.tasks import send_text

    after_commit(send_text, to, text, kind)
