"""Twilio's Messages API as the sandbox speaks it (docs/channels.md §3.2-3.8, §7).

Wire format: `POST /2010-04-01/Accounts/<AC>/Messages.json` (form) answers 201 with the message
JSON; `GET .../Messages/<SM>.json`; `GET .../Messages.json` with `To`, `From`, `DateSent`,
`DateSent>`, `DateSent<` and PageToken paging, newest first; `GET /2010-04-01/Accounts/<AC>.json`.
Errors use the legacy body `{"code", "message", "more_info", "status"}` (no `type`/`title`, so the
SDK raises TwilioRestException). HTTP Basic auth with the account SID and auth token (20003).

Behaviour worth knowing:
- Throughput: the sender pool drains `TWILIO_SANDBOX_RATE` segments per second; above that
  messages wait with status `queued`, as at Twilio. A message that would wait longer than its
  `ValidityPeriod` fails with 30036; a queue longer than `TWILIO_SANDBOX_QUEUE_LIMIT` seconds of
  traffic refuses `From` sends with 21611 and fails Messaging Service sends with 30001.
- Status callbacks go to each message's `StatusCallback`: `sent`, then `delivered` (or
  `undelivered` with ErrorCode 30003 for a share `TWILIO_SANDBOX_FAILURE_RATE`), or `failed`,
  form-encoded and signed with `X-Twilio-Signature`. A few daemon threads post them.
- Opt-out: an injected inbound STOP (Twilio's standard keywords) blocks the number for the sender
  pool, START unblocks it; sends to a blocked number get 21610. There is one sender number,
  `TWILIO_FROM`, in the Messaging Service's pool when one is configured.
- `DateSent` filters compare the creation time: a queued message has no `date_sent` yet and a
  reconciling client must still find it.
- `TWILIO_SANDBOX_RESOLVE` maps a public origin to one the sandbox can reach, like curl's
  `--resolve`: callbacks are signed for `https://crisis.example.nl/...` but delivered to, say,
  `http://127.0.0.1:5000/...`, as a TLS-terminating proxy in front of the console would see them.

Scripted numbers (synchronous refusals are Twilio's own magic test numbers):
  +15005550001 → 400 21211 invalid number     +15005550002 → 400 21612 not reachable by SMS
  +15005550003 → 400 21408 region not enabled  +15005550004 → 400 21610 unsubscribed (STOP)
  +15005550009 → 400 21614 not a mobile number
  +31699999903 → undelivered 30003 (unreachable) +31699999905 → undelivered 30005 (unknown)
  +31699999906 → undelivered 30006 (landline)    +31699999907 → undelivered 30007 (filtered)
  +31699999908 → failed 30008 (unknown error, never left the queue)
"""

from __future__ import annotations

import bisect
import heapq
import hmac
import logging
import math
import queue
import random
import re
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import urllib3
from flask import Blueprint, Response, current_app, jsonify, request
from twilio.request_validator import RequestValidator

from channels.sms import classify_keyword
from channels.text import sms_info

API_VERSION = "2010-04-01"
log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    # The fake credentials the sandbox accepts (the console uses the same keys).
    "TWILIO_ACCOUNT_SID": "AC5a3e1c9b7d2f4e6a8b0c1d3e5f7a9b2c",
    "TWILIO_AUTH_TOKEN": "sandbox-twilio-auth-token-0000001",
    "TWILIO_FROM": "+3197010000000",
    "TWILIO_MESSAGING_SERVICE_SID": "MG0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "TWILIO_SANDBOX_RATE": 100.0,  # segments per second the sender pool drains (<= 0: no limit)
    "TWILIO_SANDBOX_FAILURE_RATE": 0.0,  # share of sent messages that end undelivered (30003)
    "TWILIO_SANDBOX_DELIVERY_DELAY": 0.2,  # seconds from sent to delivered
    "TWILIO_SANDBOX_QUEUE_LIMIT": 36000.0,  # seconds of traffic the queue holds (Twilio: 10 h)
    "TWILIO_SANDBOX_CALLBACK_WORKERS": 4,
    "TWILIO_SANDBOX_CALLBACK_TIMEOUT": 5.0,
    "TWILIO_SANDBOX_CALLBACK_LOG": 100_000,  # callback results kept for /_sandbox/twilio/callbacks
    "TWILIO_SANDBOX_RESOLVE": {},  # {"https://crisis.example.nl": "http://127.0.0.1:5000"}
}

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
MAX_BODY = 1600
MAX_VALIDITY = 36000
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50

SCRIPTED_REFUSALS = {
    "+15005550001": (21211, "The 'To' number is not a valid phone number."),
    "+15005550002": (21612, "The 'To' phone number is not currently reachable via SMS."),
    "+15005550003": (21408, "Permission to send an SMS has not been enabled for the region."),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number is not a valid mobile number"),
}
SCRIPTED_UNDELIVERED = {
    "+31699999903": 30003,
    "+31699999905": 30005,
    "+31699999906": 30006,
    "+31699999907": 30007,
}
SCRIPTED_FAILED = {"+31699999908": 30008}

api = Blueprint("sandbox_twilio", __name__, url_prefix="/twilio")
control = Blueprint("sandbox_twilio_control", __name__, url_prefix="/_sandbox/twilio")


class TwilioError(Exception):
    """A refusal with Twilio's legacy error body."""

    def __init__(self, status: int, code: int, message: str):
        """`status` is the HTTP status, `code` Twilio's error code."""
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        """Return the JSON Twilio's 2010-04-01 API sends (no `type`/`title`: legacy format)."""
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


@dataclass(slots=True)
class Message:
    """One message the sandbox holds, outbound or inbound."""

    sid: str
    seq: int
    direction: str
    to: str
    from_: str | None
    body: str
    segments: int
    encoding: str
    created: float
    status: str
    service_sid: str | None = None
    validity_period: int = MAX_VALIDITY
    status_callback: str | None = None
    sent: float | None = None
    updated: float = 0.0
    error_code: int | None = None


@dataclass(frozen=True, slots=True)
class Job:
    """A webhook post waiting for a dispatcher thread."""

    kind: str  # "status" or "inbound"
    url: str
    params: dict[str, str]
    sid: str
    generation: int


# --- time and scheduling --------------------------------------------------------------------


def rfc2822(ts: float | None) -> str | None:
    """Format epoch seconds as Twilio does (`Thu, 01 May 2025 12:00:00 +0000`)."""
    if ts is None:
        return None
    return format_datetime(datetime.fromtimestamp(ts, UTC).replace(microsecond=0))


def iso(ts: float | None) -> str | None:
    """Format epoch seconds as ISO 8601 UTC for the control API."""
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


class Timeline:
    """Run handlers at due times on one daemon thread (a heap, not a timer per message)."""

    def __init__(self, handler: Callable[[Any], None]):
        """`handler(event)` is called on the timeline thread for each due event."""
        self._handler = handler
        self._heap: list[tuple[float, int, Any]] = []
        self._cond = threading.Condition()
        self._counter = 0
        self._thread: threading.Thread | None = None

    def at(self, when: float, event: Any) -> None:
        """Schedule `event` for epoch time `when`."""
        with self._cond:
            self._counter += 1
            heapq.heappush(self._heap, (when, self._counter, event))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="twilio-clock", daemon=True)
                self._thread.start()
            self._cond.notify()

    def clear(self) -> None:
        """Forget every pending event."""
        with self._cond:
            self._heap.clear()

    def _due(self) -> list[Any]:
        with self._cond:
            while True:
                now = time.time()
                if self._heap and self._heap[0][0] <= now:
                    break
                wait = self._heap[0][0] - now if self._heap else None
                self._cond.wait(wait)
            due = []
            while self._heap and self._heap[0][0] <= now:
                due.append(heapq.heappop(self._heap)[2])
            return due

    def _run(self) -> None:
        while True:
            for event in self._due():
                try:
                    self._handler(event)
                except Exception:  # one bad event must not stop the clock
                    log.exception("timeline event failed")


class Dispatcher:
    """Post signed webhooks from a queue with a few daemon threads, over one connection pool.

    urllib3 directly rather than requests: requests' own work around each post (preparing it,
    hooks, cookies) was 40% of the sandbox's time on status callbacks, two for every SMS.
    """

    def __init__(self, store: Store, workers: int, timeout: float):
        """`store` receives each result; `workers` threads start on the first job."""
        self._store = store
        self._queue: queue.Queue[Job] = queue.Queue()
        self._workers = max(1, int(workers))
        # Straight to the console it was given: urllib3 reads no proxy or .netrc settings.
        self._http = urllib3.PoolManager(maxsize=self._workers, retries=False,
                                         timeout=urllib3.Timeout(total=float(timeout)))
        self._started = False
        self._lock = threading.Lock()

    def submit(self, job: Job) -> None:
        """Queue one post."""
        self._start()
        self._queue.put(job)

    def clear(self) -> None:
        """Drop the posts not yet sent."""
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    def _start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            for index in range(self._workers):
                name = f"twilio-callbacks-{index}"
                threading.Thread(target=self._work, name=name, daemon=True).start()

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            try:
                self._post(job)
            except Exception:  # a failed callback must never stop the dispatcher
                log.exception("callback dispatch failed")

    def _post(self, job: Job) -> None:
        if not self._store.still_wanted(job):
            return
        signature = RequestValidator(self._store.auth_token).compute_signature(job.url, job.params)
        status, error = None, None
        try:
            response = self._http.request(
                "POST",
                self._store.resolve(job.url),
                body=urlencode(job.params),
                headers={"Content-Type": "application/x-www-form-urlencoded",
                         "X-Twilio-Signature": signature},
                redirect=False,
            )
            status = response.status
        except urllib3.exceptions.HTTPError as exc:
            error = failure_name(exc)
        self._store.record_callback(job, status, error)


def failure_name(exc: urllib3.exceptions.HTTPError) -> str:
    """How the control API names a failed post, as the other providers' (requests') do."""
    errors = urllib3.exceptions
    if isinstance(exc, errors.NewConnectionError | errors.ProtocolError):
        return "ConnectionError"
    if isinstance(exc, errors.ConnectTimeoutError):
        return "ConnectTimeout"
    if isinstance(exc, errors.ReadTimeoutError):
        return "ReadTimeout"
    return type(exc).__name__


# --- the store --------------------------------------------------------------------------------


class Store:
    """Everything the Twilio sandbox knows; thread-safe, with no scans on the send path."""

    def __init__(self, config: Mapping[str, Any]):
        """Read credentials and sandbox settings from `config` (DEFAULTS overridden)."""
        self.config = config
        self.account_sid = str(config["TWILIO_ACCOUNT_SID"])
        self.auth_token = str(config["TWILIO_AUTH_TOKEN"])
        self.from_number = str(config["TWILIO_FROM"])
        self.service_sid = config.get("TWILIO_MESSAGING_SERVICE_SID") or None
        self.rate = float(config.get("TWILIO_SANDBOX_RATE") or 0)
        self.failure_rate = float(config.get("TWILIO_SANDBOX_FAILURE_RATE") or 0)
        self.delivery_delay = float(config.get("TWILIO_SANDBOX_DELIVERY_DELAY") or 0)
        self.queue_limit = float(config.get("TWILIO_SANDBOX_QUEUE_LIMIT") or MAX_VALIDITY)
        self._resolve = dict(config.get("TWILIO_SANDBOX_RESOLVE") or {})
        self._log_size = int(config.get("TWILIO_SANDBOX_CALLBACK_LOG") or 100_000)
        self._lock = threading.Lock()
        self._random = random.Random()
        self._generation = 0
        self._timeline = Timeline(self._on_event)
        self._dispatcher = Dispatcher(
            self,
            int(config.get("TWILIO_SANDBOX_CALLBACK_WORKERS") or 4),
            float(config.get("TWILIO_SANDBOX_CALLBACK_TIMEOUT") or 5.0),
        )
        self.reset()

    def reset(self) -> None:
        """Forget every message, opt-out, queued event and callback."""
        with self._lock:
            self._generation += 1
            self._messages: dict[str, Message] = {}
            self._order: list[str | None] = []  # seq -> sid (None once erased)
            self._created: list[float] = []  # seq -> creation time, non-decreasing
            self._by_to: dict[str, list[int]] = defaultdict(list)
            self._by_from: dict[str, list[int]] = defaultdict(list)
            self._blocked: set[tuple[str, str]] = set()  # (sender scope, number)
            self._queued = 0
            self._next_free = 0.0  # when the sender pool is free again
            self._callbacks: deque[dict[str, Any]] = deque(maxlen=self._log_size)
        self._timeline.clear()
        self._dispatcher.clear()

    # -- sending --

    def create(self, form: Mapping[str, str]) -> dict[str, Any]:
        """Accept one outbound message (the form of `messages.create`); TwilioError if refused."""
        to, body = form.get("To", ""), form.get("Body", "")
        sender, service = self._sender(form)
        self._check_recipient(to)
        if not body:
            raise TwilioError(400, 21602, "Message body is required.")
        if len(body) > MAX_BODY:
            raise TwilioError(400, 21617, "The concatenated message body exceeds the 1600 limit.")
        validity = _validity(form.get("ValidityPeriod"))
        info = sms_info(body)
        with self._lock:
            if (self._scope(sender, service), to) in self._blocked:
                raise TwilioError(400, 21610, "Attempt to send to unsubscribed recipient")
            message, plan = self._enqueue(to, sender, service, body, info, validity, form)
        for when, event in plan:
            self._timeline.at(when, event)
        created = message_json(message, self.account_sid)
        if service:  # Twilio answers a service send before it picked a sender
            created.update(status="accepted", num_segments="0", **{"from": None})
        return created

    def _sender(self, form: Mapping[str, str]) -> tuple[str, str | None]:
        service = form.get("MessagingServiceSid") or None
        sender = form.get("From") or None
        if service:
            if not SERVICE_SID.match(service):
                raise TwilioError(400, 21705, "The Messaging Service Sid is invalid.")
            if service != self.service_sid:
                raise TwilioError(404, 21701, "The Messaging Service does not exist.")
            return self.from_number, service
        if not sender:
            raise TwilioError(400, 21603, "A 'From' or 'MessagingServiceSid' is required.")
        if sender != self.from_number:
            raise TwilioError(
                400,
                21606,
                "The 'From' phone number provided is not a valid message-capable Twilio phone "
                "number for this destination/account.",
            )
        return sender, None

    @staticmethod
    def _check_recipient(to: str) -> None:
        if not to:
            raise TwilioError(400, 21604, "A 'To' phone number is required.")
        if to in SCRIPTED_REFUSALS:
            code, message = SCRIPTED_REFUSALS[to]
            raise TwilioError(400, code, message)
        if not E164.match(to):
            raise TwilioError(400, 21211, "Invalid 'To' Phone Number")

    def _enqueue(self, to, sender, service, body, info, validity, form):
        """Store a new message and plan its lifecycle; call with the lock held."""
        now = self._now()
        if not service and self._next_free - now > self.queue_limit:
            raise TwilioError(
                400, 21611, "This 'From' number has exceeded the maximum number of queued messages"
            )
        message = self._add(
            Message(
                sid=new_sid("SM"),
                seq=len(self._order),
                direction="outbound-api",
                to=to,
                from_=sender,
                body=body,
                segments=info.segments,
                encoding=info.encoding,
                created=now,
                updated=now,
                status="queued",
                service_sid=service,
                validity_period=validity,
                status_callback=form.get("StatusCallback") or None,
            )
        )
        self._queued += 1
        return message, self._plan(message, now)

    def _plan(self, message: Message, now: float) -> list[tuple[float, tuple]]:
        """Decide when the message leaves the queue, and whether it fails there."""
        start = max(now, self._next_free)
        done = start + (message.segments / self.rate if self.rate > 0 else 0.0)
        key = self._generation, message.sid
        if start - now > self.queue_limit:  # only a service send gets here (From: 21611)
            return [(now, (*key, "fail", 30001))]
        if done - now > message.validity_period:
            return [(now + message.validity_period, (*key, "fail", 30036))]
        self._next_free = done  # only a message that will be sent uses the pool's throughput
        if message.to in SCRIPTED_FAILED:
            return [(start, (*key, "fail", SCRIPTED_FAILED[message.to]))]
        return [(done, (*key, "sent", None))]

    def _on_event(self, event: tuple) -> None:
        generation, sid, kind, code = event
        with self._lock:
            message = self._messages.get(sid)
            if generation != self._generation or message is None:
                return
            now = self._now()
            if kind == "sent":
                self._leave_queue(message, "sent", now)
                message.sent = now
                self._timeline.at(now + self.delivery_delay, (generation, sid, "final", None))
            elif kind == "fail":
                self._leave_queue(message, "failed", now, code)
            else:
                code = SCRIPTED_UNDELIVERED.get(message.to)
                if code is None and self._random.random() < self.failure_rate:
                    code = 30003
                message.status, message.updated = ("undelivered" if code else "delivered"), now
                message.error_code = code
            job = self._status_job(message)
        if job is not None:
            self._dispatcher.submit(job)

    def _leave_queue(self, message: Message, status: str, now: float, code: int | None = None):
        if message.status == "queued":
            self._queued -= 1
        message.status, message.updated, message.error_code = status, now, code

    def _status_job(self, message: Message) -> Job | None:
        if not message.status_callback:
            return None
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "From": message.from_ or "",
            "To": message.to,
            "MessageSid": message.sid,
            "SmsSid": message.sid,
            "MessageStatus": message.status,
            "SmsStatus": message.status,
        }
        if message.service_sid:
            params["MessagingServiceSid"] = message.service_sid
        if message.error_code:
            params["ErrorCode"] = str(message.error_code)
        return Job("status", message.status_callback, params, message.sid, self._generation)

    # -- inbound --

    def inject(self, spec: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        """Receive an SMS from a resident: apply STOP/START, then post the signed webhook.

        `spec`: {"from": E.164, "body": text, "to": optional (default TWILIO_FROM)}.
        """
        sender, body = str(spec.get("from") or ""), str(spec.get("body") or "")
        to = str(spec.get("to") or self.from_number)
        if not E164.match(sender) or not E164.match(to):
            raise ValueError("from and to must be E.164 numbers")
        keyword = classify_keyword(body, dutch=False)  # Twilio acts on its standard words only
        info = sms_info(body)
        service = self.service_sid if to == self.from_number else None
        with self._lock:
            now = self._now()
            message = self._add(
                Message(
                    sid=new_sid("SM"),
                    seq=len(self._order),
                    direction="inbound",
                    to=to,
                    from_=sender,
                    body=body,
                    segments=info.segments or 1,
                    encoding=info.encoding,
                    created=now,
                    updated=now,
                    status="received",
                    service_sid=service,
                )
            )
            self._apply_keyword(keyword, self._scope(to, service), sender)
            generation = self._generation
        url = str(config.get("CONSOLE_URL", "")).rstrip("/") + "/webhooks/twilio/sms"
        params = self._inbound_params(message, keyword)
        self._dispatcher.submit(Job("inbound", url, params, message.sid, generation))
        return {"sid": message.sid, "keyword": keyword, "url": url}

    def _apply_keyword(self, keyword: str | None, scope: str, number: str) -> None:
        if keyword == "stop":
            self._blocked.add((scope, number))
        elif keyword == "start":
            self._blocked.discard((scope, number))

    def _inbound_params(self, message: Message, keyword: str | None) -> dict[str, str]:
        params = {
            "MessageSid": message.sid,
            "SmsSid": message.sid,
            "SmsMessageSid": message.sid,
            "AccountSid": self.account_sid,
            "From": message.from_ or "",
            "To": message.to,
            "Body": message.body,
            "NumMedia": "0",
            "NumSegments": str(message.segments),
            "SmsStatus": "received",
            "ApiVersion": API_VERSION,
        }
        if message.service_sid:
            params["MessagingServiceSid"] = message.service_sid
            if keyword:  # what Advanced Opt-Out on the service adds
                params["OptOutType"] = keyword.upper()
        return params

    # -- reading --

    def get(self, sid: str) -> Message | None:
        """Return one message by SID."""
        with self._lock:
            return self._messages.get(sid)

    def page(
        self,
        filters: Mapping[str, str | None],
        lo: float | None,
        hi: float | None,
        size: int,
        before_seq: int | None,
    ) -> tuple[list[Message], bool]:
        """Return up to `size` messages, newest first, created in [lo, hi), and whether more follow.

        `filters` may hold `to` and `from`; `before_seq` continues after an earlier page.
        """
        with self._lock:
            lo_seq = bisect.bisect_left(self._created, lo) if lo is not None else 0
            hi_seq = bisect.bisect_left(self._created, hi) if hi is not None else len(self._order)
            if before_seq is not None:
                hi_seq = min(hi_seq, before_seq)
            found: list[Message] = []
            for seq in self._candidates(filters, lo_seq, hi_seq):
                message = self._messages.get(self._order[seq] or "")
                if message is not None and _matches(message, filters):
                    found.append(message)
                    if len(found) > size:
                        return found[:size], True
            return found, False

    def _candidates(self, filters: Mapping[str, str | None], lo_seq: int, hi_seq: int):
        if filters.get("to") or filters.get("from"):
            index = self._by_to if filters.get("to") else self._by_from
            seqs = index.get(filters.get("to") or filters["from"] or "", [])
            start, stop = bisect.bisect_left(seqs, lo_seq), bisect.bisect_left(seqs, hi_seq)
            return (seqs[i] for i in range(stop - 1, start - 1, -1))
        return range(hi_seq - 1, lo_seq - 1, -1)

    def snapshot(self, to: str | None = None) -> list[dict[str, Any]]:
        """Return every message (optionally to one number) for the control API, oldest first."""
        with self._lock:
            if to:
                sids = [self._order[seq] or "" for seq in self._by_to.get(to, [])]
                messages = [self._messages.get(sid) for sid in sids]
            else:
                messages = list(self._messages.values())
        return [control_json(m) for m in messages if m is not None]

    def queue_length(self) -> dict[str, Any]:
        """Return how many messages wait for the sender pool, and how long that takes."""
        with self._lock:
            drain = max(0.0, self._next_free - time.time())
            return {"queued": self._queued, "rate": self.rate, "drain_seconds": round(drain, 3)}

    def callbacks(self) -> list[dict[str, Any]]:
        """Return the webhook posts made so far and how the receiver answered."""
        with self._lock:
            return list(self._callbacks)

    # -- erasure --

    def erase_number(self, number: str) -> int:
        """Erase every message, opt-out and callback record of one phone number; return a count."""
        with self._lock:
            seqs = self._by_to.pop(number, []) + self._by_from.pop(number, [])
            sids = {self._order[seq] for seq in seqs} - {None}
            for seq in seqs:
                message = self._messages.pop(self._order[seq] or "", None)
                self._order[seq] = None
                if message is not None and message.status == "queued":
                    self._queued -= 1
            self._blocked = {entry for entry in self._blocked if entry[1] != number}
            kept = [entry for entry in self._callbacks if entry["message_sid"] not in sids]
            self._callbacks = deque(kept, maxlen=self._log_size)
            return len(sids)

    # -- dispatcher support --

    def still_wanted(self, job: Job) -> bool:
        """Whether a queued post still belongs to this run (not reset, number not erased)."""
        with self._lock:
            return job.generation == self._generation and job.sid in self._messages

    def resolve(self, url: str) -> str:
        """Map a public URL onto the origin the sandbox can reach (TWILIO_SANDBOX_RESOLVE)."""
        for origin, target in self._resolve.items():
            if url == origin or url.startswith(origin.rstrip("/") + "/"):
                return target.rstrip("/") + url[len(origin.rstrip("/")) :]
        return url

    def record_callback(self, job: Job, status: int | None, error: str | None) -> None:
        """Remember how one webhook post went."""
        entry = {
            "kind": job.kind,
            "url": job.url,
            "message_sid": job.sid,
            "status": job.params.get("MessageStatus") or job.params.get("SmsStatus"),
            "response_status": status,
            "error": error,
            "at": iso(time.time()),
        }
        with self._lock:
            if job.generation == self._generation:
                self._callbacks.append(entry)

    # -- helpers (lock held) --

    def _add(self, message: Message) -> Message:
        self._messages[message.sid] = message
        self._order.append(message.sid)
        self._created.append(message.created)
        self._by_to[message.to].append(message.seq)
        if message.from_:
            self._by_from[message.from_].append(message.seq)
        return message

    def _now(self) -> float:
        # Creation times must not go backwards: listing bisects on them.
        return max(time.time(), self._created[-1] if self._created else 0.0)

    def _scope(self, sender: str, service: str | None) -> str:
        """Opt-outs hold per sender number, or per Messaging Service pool."""
        if service or (self.service_sid and sender == self.from_number):
            return f"service:{self.service_sid}"
        return sender


def _matches(message: Message, filters: Mapping[str, str | None]) -> bool:
    return (not filters.get("to") or message.to == filters["to"]) and (
        not filters.get("from") or message.from_ == filters["from"]
    )


def _validity(value: str | None) -> int:
    if value in (None, ""):
        return MAX_VALIDITY
    try:
        seconds = int(value)
    except ValueError:
        seconds = 0
    if not 1 <= seconds <= MAX_VALIDITY:
        raise TwilioError(400, 21624, "Invalid validity period value")
    return seconds


def new_sid(prefix: str) -> str:
    """Make a Twilio-style SID: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def message_json(message: Message, account_sid: str) -> dict[str, Any]:
    """Return the Message resource as Twilio's 2010-04-01 API renders it."""
    uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{message.sid}"
    return {
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": rfc2822(message.created),
        "date_sent": rfc2822(message.sent),
        "date_updated": rfc2822(message.updated),
        "direction": message.direction,
        "error_code": message.error_code,
        "error_message": None,
        "from": message.from_,
        "messaging_service_sid": message.service_sid,
        "num_media": "0",
        "num_segments": str(message.segments),
        "price": None,
        "price_unit": "USD",
        "sid": message.sid,
        "status": message.status,
        "subresource_uris": {"media": f"{uri}/Media.json"},
        "to": message.to,
        "uri": f"{uri}.json",
    }


def control_json(message: Message) -> dict[str, Any]:
    """Return a message as the control API lists it."""
    return {
        "sid": message.sid,
        "direction": message.direction,
        "to": message.to,
        "from": message.from_,
        "body": message.body,
        "status": message.status,
        "segments": message.segments,
        "encoding": message.encoding,
        "validity_period": message.validity_period,
        "messaging_service_sid": message.service_sid,
        "status_callback": message.status_callback,
        "error_code": message.error_code,
        "created_at": iso(message.created),
        "sent_at": iso(message.sent),
    }


# --- the API blueprint ------------------------------------------------------------------------


def store() -> Store:
    """Return the running app's Twilio store."""
    return current_app.extensions["sandbox_twilio"]


def error_response(error: TwilioError, headers: dict[str, str] | None = None) -> Response:
    """Render a TwilioError as Twilio does."""
    response = jsonify(error.body())
    response.status_code = error.status
    response.headers.update(headers or {})
    return response


@api.errorhandler(TwilioError)
def _twilio_error(error: TwilioError) -> Response:
    return error_response(error)


@api.before_request
def gate() -> Response | None:
    """Apply the fault plan first (an outage answers nobody), then HTTP Basic auth."""
    kind, seconds_left = current_app.extensions["sandbox_faults"].decide("twilio")
    if kind == "rate_limit":
        retry = {"Retry-After": str(max(1, math.ceil(seconds_left)))}
        return error_response(TwilioError(429, 20429, "Too Many Requests"), retry)
    if kind == "server_error":
        return error_response(TwilioError(503, 20503, "Service Unavailable"))
    if kind in ("outage", "timeout"):  # after a timeout the client is long gone anyway
        return Response(status=503)
    auth = request.authorization
    sandbox = store()
    if (
        auth is None
        or not hmac.compare_digest(str(auth.username or ""), sandbox.account_sid)
        or not hmac.compare_digest(str(auth.password or ""), sandbox.auth_token)
    ):
        error = TwilioError(401, 20003, "Authenticate")
        return error_response(error, {"WWW-Authenticate": 'Basic realm="Twilio API"'})
    account = (request.view_args or {}).get("account_sid")
    if account is not None and account != sandbox.account_sid:
        raise TwilioError(404, 20404, f"The requested resource {request.path} was not found")
    return None


@api.post(f"/{API_VERSION}/Accounts/<account_sid>/Messages.json")
def create_message(account_sid: str) -> tuple[Response, int]:
    """`messages.create`: 201 with the message (status queued, or accepted for a service)."""
    return jsonify(store().create(request.form)), 201


@api.get(f"/{API_VERSION}/Accounts/<account_sid>/Messages/<sid>.json")
def fetch_message(account_sid: str, sid: str) -> Response:
    """`messages(sid).fetch()`."""
    message = store().get(sid)
    if message is None:
        raise TwilioError(404, 20404, f"The requested resource {request.path} was not found")
    return jsonify(message_json(message, account_sid))


@api.get(f"/{API_VERSION}/Accounts/<account_sid>/Messages.json")
def list_messages(account_sid: str) -> Response:
    """`messages.list()`/`stream()`: newest first, filtered, paged with PageToken."""
    args = request.args
    filters = {"to": args.get("To"), "from": args.get("From")}
    lo, hi = _date_bounds(args)
    size = min(MAX_PAGE_SIZE, max(1, _int_arg(args.get("PageSize"), DEFAULT_PAGE_SIZE)))
    page_number = max(0, _int_arg(args.get("Page"), 0))
    token = args.get("PageToken", "")
    before = _int_arg(token[2:], None) if token.startswith("PA") else None
    messages, more = store().page(filters, lo, hi, size, before)
    base = f"/{API_VERSION}/Accounts/{account_sid}/Messages.json"
    kept = {k: v for k, v in args.items() if k not in ("Page", "PageToken", "PageSize")}

    def uri(page: int, token: str | None = None) -> str:
        query = {**kept, "PageSize": size, "Page": page, **({"PageToken": token} if token else {})}
        return f"{base}?{urlencode(query)}"

    next_uri = uri(page_number + 1, f"PA{messages[-1].seq}") if more and messages else None
    start = page_number * size
    return jsonify(
        messages=[message_json(m, account_sid) for m in messages],
        end=start + max(0, len(messages) - 1),
        first_page_uri=uri(0),
        next_page_uri=next_uri,
        page=page_number,
        page_size=size,
        previous_page_uri=None,
        start=start,
        uri=f"{base}?{request.query_string.decode()}",
    )


@api.get(f"/{API_VERSION}/Accounts/<account_sid>.json")
def fetch_account(account_sid: str) -> Response:
    """`api.v2010.accounts(sid).fetch()`: what `SmsChannel.check` asks for."""
    uri = f"/{API_VERSION}/Accounts/{account_sid}"
    return jsonify(
        sid=account_sid,
        friendly_name="Crisis sandbox",
        owner_account_sid=account_sid,
        status="active",
        type="Full",
        date_created="Mon, 01 Jan 2024 00:00:00 +0000",
        date_updated="Mon, 01 Jan 2024 00:00:00 +0000",
        uri=f"{uri}.json",
        subresource_uris={"messages": f"{uri}/Messages.json"},
    )


def _int_arg(value: str | None, default: int | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def _date_bounds(args: Mapping[str, str]) -> tuple[float | None, float | None]:
    """Turn `DateSent`, `DateSent>` (on or after) and `DateSent<` (on or before) into [lo, hi)."""
    lo = hi = None
    if args.get("DateSent"):
        lo, hi = _day_or_second(args["DateSent"])
    if args.get("DateSent>"):
        lo = _day_or_second(args["DateSent>"])[0]
    if args.get("DateSent<"):
        hi = _day_or_second(args["DateSent<"])[1]
    return lo, hi


def _day_or_second(value: str) -> tuple[float, float]:
    """`YYYY-MM-DD` covers the day; `YYYY-MM-DDTHH:MM:SSZ` covers that second."""
    for fmt, span in (("%Y-%m-%dT%H:%M:%SZ", 1.0), ("%Y-%m-%d", 86400.0)):
        try:
            start = datetime.strptime(value, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
        return start, start + span
    raise TwilioError(400, 20001, "Invalid DateSent filter")


# --- the control blueprint --------------------------------------------------------------------


@control.get("/messages")
def control_messages() -> Response:
    """Every message received or sent, oldest first; `?to=` narrows to one number."""
    return jsonify(store().snapshot(request.args.get("to")))


@control.get("/queue")
def control_queue() -> Response:
    """How many messages wait for throughput."""
    return jsonify(store().queue_length())


@control.get("/callbacks")
def control_callbacks() -> Response:
    """Status callbacks and inbound webhooks posted, with the receiver's answers."""
    return jsonify(store().callbacks())


@control.delete("/numbers/<path:number>")
def control_erase(number: str) -> Response:
    """Erase every record of one phone number (subscriber erasure)."""
    return jsonify(erased=store().erase_number(number))
