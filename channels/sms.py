"""SMS through Twilio: outbound messages, reconciliation, and the inbound webhooks.

Outbound uses the real `twilio` SDK. Its HTTP client gets a requests session whose transport adapter
applies our timeout and, in a drill or the demo, sends every Twilio domain to the sandbox
(docs/channels.md §3.1). Inbound (replies such as STOP, and status callbacks) arrives as signed
form posts; this module checks the signature and parses them into small dataclasses, and the
webhook views decide what to store.

Phone numbers are personal data: they never appear in log lines or exception messages here.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
import twilio.rest.api  # noqa: F401  (the SDK imports it on the first send; a worker forks after this)
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

from channels.base import (
    DEFAULT_TIMEOUT,
    Channel,
    ChannelError,
    ChannelStatus,
    Draft,
    Outbound,
    PermanentChannelError,
    Receipt,
    Rendering,
    TransientChannelError,
)
from channels.text import SMS_LIMITS, sms_info
from channels.transport import outcome_uncertain, provider_session

T = TypeVar("T")

# TwilioHttpClient logs every request's query at INFO, and `messages.list(to=...)` puts a phone
# number there; its own logger is kept at WARNING so no log level setting can leak numbers.
_http_log = logging.getLogger("channels.sms.http")
_http_log.setLevel(logging.WARNING)

SANDBOX_PATH = "/twilio"
# Mounted on every https origin of the client's own session: Twilio's domains (api, messaging,
# and the region/edge host names get_hostname() builds) all go through the same adapter.
TWILIO_ORIGINS = ["https://"]

DEFAULT_VALIDITY_PERIOD = 3600  # seconds: a crisis text that arrives hours late does harm
DEFAULT_RETRY_AFTER = 2.0  # seconds, when a 429 carries no Retry-After header
QUEUE_FULL_RETRY_AFTER = 60.0  # 21611: the sender's queue holds 10 h of traffic; back off longer
FIND_CLOCK_SKEW = timedelta(minutes=2)  # our clock and Twilio's disagree a little
MAX_BODY_CHARS = 1600  # Twilio refuses longer bodies (21617)
MAX_SEGMENTS = 10

# Error codes that mean "later", not "never" (docs/channels.md §3.3).
TRANSIENT_CODES = {"20429": DEFAULT_RETRY_AFTER, "21611": QUEUE_FULL_RETRY_AFTER}

# Twilio's default keywords (long codes and toll-free, docs/channels.md §3.7), and the Dutch words
# residents are told to use ("Afmelden: stuur STOP"); Twilio honours the Dutch ones only with
# Advanced Opt-Out, so the console mirrors them itself.
STOP_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
START_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})
DUTCH_STOP_KEYWORDS = frozenset({"AFMELDEN", "UITSCHRIJVEN"})
DUTCH_START_KEYWORDS = frozenset({"AANMELDEN"})
DUTCH_HELP_KEYWORDS = frozenset({"HULP"})
KEYWORD_SETS = (
    ("stop", STOP_KEYWORDS, DUTCH_STOP_KEYWORDS),
    ("start", START_KEYWORDS, DUTCH_START_KEYWORDS),
    ("help", HELP_KEYWORDS, DUTCH_HELP_KEYWORDS),
)

# Status callbacks may arrive twice or out of order: a recipient only moves up this ranking.
STATUS_RANK = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "read": 4,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
}

# --- segment counting -------------------------------------------------------------------------


def unit_limit(encoding: str, segments: int = MAX_SEGMENTS) -> int:
    """Return how many units fit in `segments` parts of `encoding` (153 or 67 per split part)."""
    single, per_part = SMS_LIMITS[encoding][1:]
    return single if segments == 1 else per_part * segments


# --- the HTTP client --------------------------------------------------------------------------


class RedirectingHttpClient(TwilioHttpClient):
    """Twilio's own HTTP client on a session with our timeout and, optionally, the sandbox.

    It also remembers the last response's headers per thread, because `TwilioRestException`
    drops them and a 429's `Retry-After` is what tells the task when to come back.
    """

    def __init__(self, sandbox_url: str | None = None, timeout: float = DEFAULT_TIMEOUT):
        """`sandbox_url` is the sandbox origin (None: the real Twilio); `timeout` in seconds."""
        super().__init__(timeout=timeout, logger=_http_log)
        provider_session(TWILIO_ORIGINS, sandbox_url, SANDBOX_PATH, timeout, session=self.session)
        self._local = threading.local()

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        """Make the request as TwilioHttpClient does, keeping the response headers."""
        self._local.headers = None
        response = super().request(method, url, *args, **kwargs)
        self._local.headers = response.headers
        return response

    def last_headers(self) -> Mapping[str, str]:
        """Headers of this thread's last response (empty when there was none)."""
        return getattr(self._local, "headers", None) or {}


# --- outbound ---------------------------------------------------------------------------------


class SmsChannel(Channel):
    """One Twilio account sending from a Messaging Service or one number.

    `max_length` is ten GSM-7 parts; a UCS-2 text gets its own limit in `render`.
    """

    name: ClassVar[str] = "sms"
    max_length: ClassVar[int] = MAX_SEGMENTS * 153
    max_segments: ClassVar[int] = MAX_SEGMENTS

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        validity_period: int = DEFAULT_VALIDITY_PERIOD,
        sandbox_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        """Build the client. One of `from_number` and `messaging_service_sid` is required.

        With a Messaging Service the message goes out with `MessagingServiceSid` (opt-outs and
        the sender pool live there); otherwise `From` is the number.
        """
        if not (from_number or messaging_service_sid):
            raise ValueError("SmsChannel needs TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID")
        self.account_sid = account_sid
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.validity_period = int(validity_period)
        self.sandbox = sandbox_url is not None
        self.http_client = RedirectingHttpClient(sandbox_url, timeout)
        self.client = Client(account_sid, auth_token, http_client=self.http_client)

    @classmethod
    def from_settings(
        cls,
        settings: Mapping[str, Any],
        sandbox_url: str | None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> SmsChannel:
        """Build from `TWILIO_*` settings; with `sandbox_url` the client talks to the sandbox.

        The sandbox accepts only its own credentials (`channels.sandbox.twilio.DEFAULTS`), so a
        drill passes those, whatever the live configuration holds.
        """
        required = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
        missing = [key for key in required if not settings.get(key)]
        if missing:
            raise ValueError("missing SMS settings: " + ", ".join(missing))
        return cls(
            account_sid=settings["TWILIO_ACCOUNT_SID"],
            auth_token=settings["TWILIO_AUTH_TOKEN"],
            from_number=settings.get("TWILIO_FROM") or None,
            messaging_service_sid=settings.get("TWILIO_MESSAGING_SERVICE_SID") or None,
            validity_period=int(settings.get("TWILIO_VALIDITY_PERIOD") or DEFAULT_VALIDITY_PERIOD),
            sandbox_url=sandbox_url,
            timeout=timeout,
        )

    @classmethod
    def render(cls, draft: Draft) -> Rendering:
        """Build the SMS text (see `channels.preview.compose`) with encoding and segments.

        `length` and `limit` are in units of the text's encoding (GSM-7 septets, where € and
        the other extension characters count two, or UTF-16 units for UCS-2).
        """
        from channels.preview import compose

        text = compose(draft, cls.name)
        info = sms_info(text)
        limit = unit_limit(info.encoding)
        valid = 0 < info.units <= limit and len(text) <= MAX_BODY_CHARS
        details = {
            "encoding": info.encoding,
            "segments": info.segments,
            "max_segments": cls.max_segments,
            "non_gsm_characters": list(dict.fromkeys(c["char"] for c in info.ucs2_chars)),
        }
        return Rendering(cls.name, text, info.units, limit, valid, details)

    def publish(self, outbound: Outbound) -> Receipt:
        """Send one SMS to `outbound.to`; the receipt's id is the message SID.

        Raises PermanentChannelError with Twilio's code for a refused number (21211, 21614, 21612)
        or an unsubscribed one (21610: the caller marks the subscriber stopped).
        """
        if not outbound.to:
            raise PermanentChannelError("an SMS needs a recipient", "no_recipient")
        kwargs: dict[str, Any] = {
            "to": outbound.to,
            "body": outbound.text,
            "validity_period": self.validity_period,
        }
        if self.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.messaging_service_sid
        else:
            kwargs["from_"] = self.from_number
        if outbound.status_callback:
            kwargs["status_callback"] = outbound.status_callback
        message = self._call(lambda: self.client.messages.create(**kwargs))
        return message_receipt(message)

    def retract(self, receipt: Receipt) -> None:
        """Refuse: an SMS cannot be recalled once Twilio accepted it.

        Twilio cancels only messages scheduled with `SendAt`; the console keeps scheduled sends
        in its own database and hands Twilio nothing before it is due, so there is never one.
        """
        raise PermanentChannelError("an SMS cannot be recalled", "retract_unsupported")

    def find(self, outbound: Outbound) -> Receipt | None:
        """Return the newest message to `outbound.to` with exactly `outbound.text`, or None.

        For a send whose outcome is unknown (timeout, crash): None means Twilio never got it.
        """
        if not outbound.to:
            return None
        kwargs: dict[str, Any] = {"to": outbound.to, "limit": 100}
        if outbound.attempted_at is not None:
            kwargs["date_sent_after"] = _utc(outbound.attempted_at) - FIND_CLOCK_SKEW
        messages = self._call(lambda: self.client.messages.list(**kwargs))
        for message in messages:  # newest first
            if message.body == outbound.text and _is_outbound(message):
                return message_receipt(message)
        return None

    def find_many(
        self, numbers: Iterable[str], since: datetime, text: str | None = None
    ) -> dict[str, Receipt]:
        """Reconcile a bulk send: for each number in `numbers`, the newest message sent to it.

        Reads the account's messages since `since` page by page (one call per 1000) rather than
        one call per number; `text`, when given, must match the body exactly.
        """
        wanted = set(numbers)
        found: dict[str, Receipt] = {}

        def scan() -> None:
            pages = self.client.messages.stream(date_sent_after=_utc(since) - FIND_CLOCK_SKEW, page_size=1000)
            for message in pages:
                if message.to in wanted and message.to not in found and _is_outbound(message):
                    if text is None or message.body == text:
                        found[message.to] = message_receipt(message)

        self._call(scan)
        return found

    def check(self) -> ChannelStatus:
        """Fetch the account: proves the credentials and shows whether it is active."""
        try:
            account = self._call(lambda: self.client.api.v2010.accounts(self.account_sid).fetch())
        except ChannelError as exc:
            return ChannelStatus(ok=False, detail=str(exc))
        status = str(account.status or "unknown")
        return ChannelStatus(ok=status == "active", detail=f"account {status}")

    def _call(self, fn: Callable[[], T]) -> T:
        """Run one SDK call, turning Twilio and transport failures into channel errors.

        The SDK's exceptions carry Twilio's message, which can quote the phone number, and the
        request URL, which can hold it in a filter; so ours are built from status and code only
        and raised `from None` to keep the original out of tracebacks and logs.
        """
        try:
            return fn()
        except TwilioException as exc:
            error = twilio_error(exc, self.http_client.last_headers())
        except requests.RequestException as exc:
            # A read timeout may hide a message Twilio accepted: `uncertain` makes the caller
            # reconcile with `find` before sending again.
            error = TransientChannelError(
                f"Twilio did not answer ({type(exc).__name__})", uncertain=outcome_uncertain(exc)
            )
        raise error from None


def message_receipt(message: Any) -> Receipt:
    """Build a receipt from a `MessageInstance`: its SID, status and segment count."""
    created = message.date_created
    raw = {
        "status": message.status,
        "num_segments": int(message.num_segments or 0),
        "error_code": message.error_code,
        "messaging_service_sid": message.messaging_service_sid,
        "date_created": created.isoformat() if isinstance(created, datetime) else None,
    }
    return Receipt(provider_id=message.sid, raw=raw)


def _utc(moment: datetime) -> datetime:
    # The SDK formats filters with strftime("...Z") and ignores the zone: convert first.
    # Naive datetimes are UTC, as the database stores them.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _is_outbound(message: Any) -> bool:
    return str(message.direction or "").startswith("outbound")


def twilio_error(exc: TwilioException, headers: Mapping[str, str]) -> ChannelError:
    """Classify a Twilio SDK exception: 429/20429, 21611 and 5xx are transient, the rest not."""
    status, code = _status_and_code(exc)
    reason = f"Twilio refused the request: HTTP {status or '?'}, code {code or '?'}"
    if status == 429 or code in TRANSIENT_CODES:
        default = TRANSIENT_CODES.get(code, DEFAULT_RETRY_AFTER)
        return TransientChannelError(reason, retry_after=_retry_after(headers, default))
    if status is None or status >= 500:
        return TransientChannelError(reason, retry_after=_retry_after(headers, None))
    return PermanentChannelError(reason, code or str(status))


def _status_and_code(exc: TwilioException) -> tuple[int | None, str | None]:
    status = getattr(exc, "status", None)
    code = getattr(exc, "code", None)
    # A list page that is not 200 raises a bare TwilioException("Unable to fetch page", response).
    response = next((arg for arg in exc.args if isinstance(arg, Response)), None)
    if status is None and response is not None:
        status = response.status_code
        code = _code_from_body(response.text)
    return (int(status) if status is not None else None), (str(code) if code else None)


def _code_from_body(text: str) -> str | None:
    try:
        body = json.loads(text)
    except ValueError:
        return None
    return str(body["code"]) if isinstance(body, dict) and body.get("code") else None


def _retry_after(headers: Mapping[str, str], default: float | None) -> float | None:
    value = headers.get("Retry-After") if headers else None
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:  # an HTTP date instead of seconds: not worth parsing, use the default
        return default


# --- inbound ----------------------------------------------------------------------------------


def validate_signature(
    url: str, params: Mapping[str, Any] | str | None, signature: str | None, auth_token: str
) -> bool:
    """Check `X-Twilio-Signature` for a request Twilio made to `url` (the URL it requested).

    `params` is the form (a MultiDict is fine), or the raw body for a JSON request whose URL
    carries `bodySHA256`. RequestValidator tries the URL with and without the default port.
    """
    if not signature or not auth_token:
        return False
    return RequestValidator(auth_token).validate(url, params or {}, signature)


def public_url(request_url: str, public_base: str | None) -> str:
    """Rebuild the URL Twilio signed from the URL the app saw and the configured public base.

    Behind a proxy that terminates TLS the app sees `http://127.0.0.1:8000/webhooks/...` while
    Twilio signed `https://crisis.example.nl/webhooks/...`: scheme and host come from
    `public_base`, path and query from the request. A path on the base (`https://x.nl/crisis`)
    is put in front unless the request path already starts with it. No base: unchanged.
    """
    if not public_base:
        return request_url
    base = urlsplit(public_base)
    seen = urlsplit(request_url)
    prefix = base.path.rstrip("/")
    path = seen.path
    if prefix and not (path == prefix or path.startswith(prefix + "/")):
        path = prefix + path
    return urlunsplit((base.scheme, base.netloc, path, seen.query, ""))


@dataclass(frozen=True)
class InboundSms:
    """A text a resident sent to our number (Twilio's inbound-message webhook)."""

    message_sid: str
    account_sid: str
    from_number: str
    to: str
    body: str
    messaging_service_sid: str | None = None
    num_media: int = 0
    num_segments: int = 1
    media_urls: tuple[str, ...] = ()
    opt_out_type: str | None = None  # STOP/START/HELP, only with Advanced Opt-Out

    @property
    def keyword(self) -> str | None:
        """`stop`, `start` or `help` when the body is one of those keywords, else None."""
        if self.opt_out_type:
            return self.opt_out_type.lower()
        return classify_keyword(self.body)


@dataclass(frozen=True)
class StatusUpdate:
    """A status callback: where one outbound message is now."""

    message_sid: str
    status: str
    to: str | None = None
    error_code: str | None = None
    account_sid: str | None = None
    messaging_service_sid: str | None = None

    @property
    def rank(self) -> int:
        """Position in the lifecycle; apply an update only when it is higher than the stored one."""
        return STATUS_RANK.get(self.status, -1)


def parse_inbound(form: Mapping[str, str]) -> InboundSms:
    """Parse Twilio's inbound-message form; ValueError when a required field is missing."""
    sid = form.get("MessageSid") or form.get("SmsMessageSid") or form.get("SmsSid")
    _require(MessageSid=sid, From=form.get("From"), To=form.get("To"))
    num_media = _int(form.get("NumMedia"), 0)
    media = tuple(form[f"MediaUrl{i}"] for i in range(num_media) if form.get(f"MediaUrl{i}"))
    return InboundSms(
        message_sid=str(sid),
        account_sid=form.get("AccountSid", ""),
        from_number=form["From"],
        to=form["To"],
        body=form.get("Body", ""),
        messaging_service_sid=form.get("MessagingServiceSid") or None,
        num_media=num_media,
        num_segments=_int(form.get("NumSegments"), 1),
        media_urls=media,
        opt_out_type=form.get("OptOutType") or None,
    )


def parse_status_callback(form: Mapping[str, str]) -> StatusUpdate:
    """Parse a status callback form; ValueError when MessageSid or MessageStatus is missing."""
    sid = form.get("MessageSid") or form.get("SmsSid")
    status = form.get("MessageStatus") or form.get("SmsStatus")
    _require(MessageSid=sid, MessageStatus=status)
    return StatusUpdate(
        message_sid=str(sid),
        status=str(status),
        to=form.get("To") or None,
        error_code=form.get("ErrorCode") or None,
        account_sid=form.get("AccountSid") or None,
        messaging_service_sid=form.get("MessagingServiceSid") or None,
    )


def _require(**fields: str | None) -> None:
    missing = [name for name, value in fields.items() if not value]
    if missing:
        raise ValueError("Twilio webhook without " + ", ".join(missing))


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def classify_keyword(body: str | None, dutch: bool = True) -> str | None:
    """`stop`, `start` or `help` when `body` is just one opt-out keyword (any case), else None.

    Like Twilio, only a single-word message counts ("stop", " Stop. "), never a sentence
    ("stop met die sirene"). The Dutch words (`dutch=True`) are mirrored by the console;
    Twilio itself, and so the sandbox, acts on the standard ones only.
    """
    word = (body or "").strip().strip(".!").strip().upper()
    if not word or " " in word:
        return None
    for kind, standard, local in KEYWORD_SETS:
        if word in standard or (dutch and word in local):
            return kind
    return None


@functools.cache
def empty_twiml() -> str:
    """Return the TwiML answer that sends no reply (serve it as `text/xml`).

    Built once: it never changes, and every inbound SMS webhook answers with it.
    """
    return str(MessagingResponse())
