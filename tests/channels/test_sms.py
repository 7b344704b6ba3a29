"""SMS through the real twilio SDK, over HTTP, against the sandbox's Twilio emulator."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import requests
from werkzeug.datastructures import MultiDict
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from channels.base import Draft, Outbound, PermanentChannelError, TransientChannelError
from channels.sandbox.twilio import DEFAULTS
from channels.sms import (
    SmsChannel,
    classify_keyword,
    empty_twiml,
    parse_inbound,
    parse_status_callback,
    public_url,
)
from tests.channels.conftest import RunningSandbox

RESIDENT = "+31612345678"
NUMBER_ONLY = {**DEFAULTS, "TWILIO_MESSAGING_SERVICE_SID": None}


# --- a tiny webhook receiver standing in for the console --------------------------------------


@dataclass(frozen=True)
class Received:
    """One webhook post as the receiving app saw it."""

    url: str
    path: str
    form: MultiDict
    signature: str | None


class Receiver:
    """A werkzeug server in a thread that records every post and answers empty TwiML."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._cond = threading.Condition()
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        # a short poll interval so shutdown does not cost half a second per test
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()

    @Request.application
    def _app(self, request: Request) -> Response:
        entry = Received(
            request.url,
            request.path,
            request.form.copy(),
            request.headers.get("X-Twilio-Signature"),
        )
        with self._cond:
            self.received.append(entry)
            self._cond.notify_all()
        return Response(empty_twiml(), mimetype="text/xml")

    def wait_for(self, predicate, count: int = 1, timeout: float = 5.0) -> list[Received]:
        """Wait until `count` posts match `predicate`; return them in arrival order."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [entry for entry in self.received if predicate(entry)]
                left = deadline - time.monotonic()
                if len(found) >= count or left <= 0:
                    assert len(found) >= count, f"{len(found)} of {count} posts arrived"
                    return found
                self._cond.wait(left)


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


def status_of(sid: str):
    return lambda entry: entry.form.get("MessageSid") == sid


# --- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture
def channel(sandbox) -> SmsChannel:
    """Sends through the Messaging Service (the sandbox DEFAULTS configure one)."""
    return SmsChannel.from_settings(DEFAULTS, sandbox.url, timeout=2.0)


@pytest.fixture
def number_channel(sandbox) -> SmsChannel:
    """Sends From the number, without a Messaging Service."""
    return SmsChannel.from_settings(NUMBER_ONLY, sandbox.url, timeout=2.0)


def sms(text: str = "Brand in Dalfsen. Houd ramen dicht.", to: str = RESIDENT, **kw) -> Outbound:
    return Outbound(key="m1:sms", text=text, to=to, **kw)


def sandbox_messages(sandbox, to: str | None = None) -> list[dict]:
    return sandbox.control("GET", "/twilio/messages", params={"to": to} if to else None)


def inject(sandbox, body: str, sender: str = RESIDENT, **extra) -> dict:
    response = requests.post(
        f"{sandbox.url}/_sandbox/inject",
        json={"channel": "sms", "from": sender, "body": body, **extra},
        timeout=5,
    )
    assert response.status_code == 202, response.text
    return response.json()


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


# --- render (pure) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "encoding", "units", "segments"),
    [
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("€" * 80, "GSM-7", 160, 1),
        ("ë" * 70, "UCS-2", 70, 1),
        ("ë" * 71, "UCS-2", 71, 2),
        ("😀" * 35, "UCS-2", 70, 1),
    ],
)
def test_render_counts_units_and_segments(body, encoding, units, segments) -> None:
    rendering = SmsChannel.render(Draft(body=body))
    assert (rendering.details["encoding"], rendering.length) == (encoding, units)
    assert rendering.details["segments"] == segments
    assert rendering.valid


def test_render_limits_to_ten_segments_per_encoding() -> None:
    assert SmsChannel.render(Draft(body="a" * 1530)).valid
    too_long = SmsChannel.render(Draft(body="a" * 1531))
    assert (too_long.limit, too_long.valid, too_long.details["segments"]) == (1530, False, 11)
    ucs2 = SmsChannel.render(Draft(body="ideeën " * 100))
    assert ucs2.limit == 670 and not ucs2.valid and ucs2.details["non_gsm_characters"] == ["ë"]


def test_render_adds_marker_and_link() -> None:
    rendering = SmsChannel.render(
        Draft(body="Kookadvies Lemelerveld.", link="https://crisis.example.nl/i/1", marker="OEFENING:")
    )
    assert rendering.text == "OEFENING: Kookadvies Lemelerveld.\nhttps://crisis.example.nl/i/1"
    assert not SmsChannel.render(Draft(body="")).valid


# --- publish ----------------------------------------------------------------------------------


def test_publish_via_messaging_service(sandbox, channel) -> None:
    text = "a" * 200  # two GSM-7 segments
    receipt = channel.publish(sms(text))
    assert receipt.provider_id.startswith("SM") and len(receipt.provider_id) == 34
    assert receipt.raw["status"] == "accepted"  # Twilio has not picked a sender yet
    assert receipt.raw["messaging_service_sid"] == DEFAULTS["TWILIO_MESSAGING_SERVICE_SID"]
    [seen] = sandbox_messages(sandbox)
    assert seen["sid"] == receipt.provider_id
    assert (seen["to"], seen["body"], seen["segments"]) == (RESIDENT, text, 2)
    assert seen["messaging_service_sid"] == DEFAULTS["TWILIO_MESSAGING_SERVICE_SID"]
    assert seen["validity_period"] == 3600
    assert seen["from"] == DEFAULTS["TWILIO_FROM"]


def test_publish_from_number_with_validity_and_callback(sandbox, number_channel) -> None:
    number_channel.validity_period = 900
    callback = "http://127.0.0.1:9/webhooks/twilio/status?r=7"
    receipt = number_channel.publish(sms("Kookadvies ideeën", status_callback=callback))
    assert receipt.raw["status"] == "queued" and receipt.raw["num_segments"] == 1
    [seen] = sandbox_messages(sandbox)
    assert seen["from"] == DEFAULTS["TWILIO_FROM"] and seen["messaging_service_sid"] is None
    assert (seen["encoding"], seen["validity_period"], seen["status_callback"]) == (
        "UCS-2",
        900,
        callback,
    )


def test_publish_needs_a_recipient(channel) -> None:
    with pytest.raises(PermanentChannelError) as error:
        channel.publish(Outbound(key="k", text="x"))
    assert error.value.code == "no_recipient"


def test_retract_is_explicitly_unsupported(channel) -> None:
    receipt = channel.publish(sms())
    with pytest.raises(PermanentChannelError) as error:
        channel.retract(receipt)
    assert error.value.code == "retract_unsupported"


def test_from_settings_requires_credentials_and_a_sender(sandbox) -> None:
    with pytest.raises(ValueError, match="TWILIO_AUTH_TOKEN"):
        SmsChannel.from_settings({"TWILIO_ACCOUNT_SID": "AC1"}, sandbox.url)
    with pytest.raises(ValueError):
        SmsChannel.from_settings({**NUMBER_ONLY, "TWILIO_FROM": ""}, sandbox.url)
    assert SmsChannel.from_settings(DEFAULTS, sandbox.url).sandbox
    assert not SmsChannel.from_settings(DEFAULTS, None).sandbox


# --- errors, table-driven ---------------------------------------------------------------------


def refuse_after_stop(sandbox) -> str:
    inject(sandbox, "Stop")
    return RESIDENT


CASES = [
    # id, fault spec for the sandbox (or a setup function), recipient, settings, expected
    ("success", None, RESIDENT, DEFAULTS, None),
    ("rate_limit", {"rate_limit_for": 30}, RESIDENT, DEFAULTS, ("transient", 30.0)),
    ("server_error", {"server_error_for": 30}, RESIDENT, DEFAULTS, ("transient", None)),
    (
        "timeout",
        {"timeout_for": 30, "timeout_seconds": 1.0},
        RESIDENT,
        DEFAULTS,
        ("transient", None),
    ),
    ("outage", {"outage_for": 30}, RESIDENT, DEFAULTS, ("transient", None)),
    ("stopped", refuse_after_stop, RESIDENT, DEFAULTS, ("permanent", "21610")),
    ("stopped_number", refuse_after_stop, RESIDENT, NUMBER_ONLY, ("permanent", "21610")),
    ("invalid", None, "0612345678", DEFAULTS, ("permanent", "21211")),
    ("magic_invalid", None, "+15005550001", DEFAULTS, ("permanent", "21211")),
    ("not_mobile", None, "+15005550009", DEFAULTS, ("permanent", "21614")),
    (
        "bad_credentials",
        None,
        RESIDENT,
        {**DEFAULTS, "TWILIO_AUTH_TOKEN": "wrong"},
        ("permanent", "20003"),
    ),
]


@pytest.mark.parametrize(
    ("setup", "to", "settings", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_publish_errors(sandbox, setup, to, settings, expected) -> None:
    if callable(setup):
        setup(sandbox)
    elif setup:
        sandbox.fault("twilio", **setup)
    channel = SmsChannel.from_settings(settings, sandbox.url, timeout=0.5)
    if expected is None:
        assert channel.publish(sms(to=to)).provider_id.startswith("SM")
        return
    kind, detail = expected
    error_type = TransientChannelError if kind == "transient" else PermanentChannelError
    with pytest.raises(error_type) as error:
        channel.publish(sms(to=to))
    if kind == "transient":
        assert error.value.retry_after == (pytest.approx(detail, abs=1) if detail else None)
        # only a request that may have reached Twilio needs reconciling before a resend
        assert error.value.uncertain is (setup == CASES[3][1])
    else:
        assert error.value.code == detail
    assert to not in str(error.value)  # phone numbers are personal data


def test_rate_limit_without_retry_after_uses_a_small_default(sandbox) -> None:
    from twilio.base.exceptions import TwilioRestException

    from channels.sms import DEFAULT_RETRY_AFTER, twilio_error

    error = twilio_error(TwilioRestException(429, "/x", "Too Many Requests", 20429), {})
    assert isinstance(error, TransientChannelError)
    assert error.retry_after == DEFAULT_RETRY_AFTER


def test_start_after_stop_allows_sending_again(sandbox, channel) -> None:
    inject(sandbox, "STOP")
    with pytest.raises(PermanentChannelError):
        channel.publish(sms())
    inject(sandbox, "start")
    assert channel.publish(sms()).provider_id


def test_dutch_afmelden_is_left_to_the_console(sandbox, channel) -> None:
    inject(sandbox, "AFMELDEN")  # Twilio's default keywords are English; the console mirrors this
    assert channel.publish(sms()).provider_id


# --- find / reconcile -------------------------------------------------------------------------


def test_find_finds_a_sent_message(channel) -> None:
    attempted = datetime.now(UTC)
    receipt = channel.publish(sms(attempted_at=attempted))
    found = channel.find(sms(attempted_at=attempted))
    assert found is not None and found.provider_id == receipt.provider_id


def test_find_returns_none_for_a_never_sent_message(channel) -> None:
    channel.publish(sms("another text"))
    assert channel.find(sms(attempted_at=datetime.now(UTC))) is None
    assert channel.find(sms(to="+31687654321")) is None


def test_find_ignores_messages_before_the_attempt(channel) -> None:
    channel.publish(sms())
    later = datetime.now(UTC) + timedelta(hours=1)
    assert channel.find(sms(attempted_at=later)) is None


def test_find_many_pages_through_the_account(sandbox, number_channel) -> None:
    since = datetime.now(UTC)
    numbers = [f"+3161000{i:04d}" for i in range(12)]
    for number in numbers:
        number_channel.publish(sms("Update 2", to=number))
    number_channel.publish(sms("Update 1", to="+31699990000"))
    found = number_channel.find_many(numbers[:10] + ["+31600000000"], since, text="Update 2")
    assert sorted(found) == sorted(numbers[:10])
    # a page size below the number of messages still finds everything
    page = number_channel.client.messages.list(date_sent_after=since - timedelta(minutes=1), page_size=5)
    assert len(page) == 13
    assert [m.to for m in page][:2] == ["+31699990000", numbers[-1]]  # newest first


def test_list_filters_by_recipient_and_date(number_channel) -> None:
    number_channel.publish(sms(to="+31611111111"))
    number_channel.publish(sms(to="+31622222222"))
    listed = number_channel.client.messages.list(to="+31611111111")
    assert [m.to for m in listed] == ["+31611111111"]
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    assert number_channel.client.messages.list(date_sent_after=tomorrow) == []


def test_check(sandbox, channel) -> None:
    assert channel.check().ok
    wrong = SmsChannel.from_settings({**DEFAULTS, "TWILIO_AUTH_TOKEN": "nope"}, sandbox.url)
    status = wrong.check()
    assert not status.ok and "20003" in status.detail


# --- the sandbox's queue and status callbacks -------------------------------------------------


def test_status_callbacks_sent_then_delivered(sandbox, channel, receiver) -> None:
    callback = f"{receiver.url}/webhooks/twilio/status"
    receipt = channel.publish(sms(status_callback=callback))
    posts = receiver.wait_for(status_of(receipt.provider_id), count=2)
    updates = [parse_status_callback(post.form) for post in posts]
    assert [u.status for u in updates] == ["sent", "delivered"]
    assert updates[0].to == RESIDENT
    assert updates[0].messaging_service_sid == DEFAULTS["TWILIO_MESSAGING_SERVICE_SID"]
    assert updates[1].rank > updates[0].rank
    wait_until(lambda: len(sandbox.control("GET", "/twilio/callbacks")) == 2)
    log = sandbox.control("GET", "/twilio/callbacks")
    assert {(e["status"], e["response_status"], e["url"]) for e in log} == {
        ("sent", 200, callback),
        ("delivered", 200, callback),
    }


@pytest.mark.parametrize(
    ("to", "statuses", "code"),
    [("+31699999903", ["sent", "undelivered"], "30003"), ("+31699999908", ["failed"], "30008")],
)
def test_scripted_delivery_failures(channel, receiver, to, statuses, code) -> None:
    receipt = channel.publish(sms(to=to, status_callback=f"{receiver.url}/s"))
    posts = receiver.wait_for(status_of(receipt.provider_id), count=len(statuses))
    updates = [parse_status_callback(post.form) for post in posts]
    assert [u.status for u in updates] == statuses
    assert updates[-1].error_code == code and updates[0].error_code in (None, code)


def test_failure_rate_marks_messages_undelivered(receiver) -> None:
    config = {"TWILIO_SANDBOX_FAILURE_RATE": 1.0, "TWILIO_SANDBOX_DELIVERY_DELAY": 0}
    with RunningSandbox(config) as sandbox:
        channel = SmsChannel.from_settings(DEFAULTS, sandbox.url)
        receipt = channel.publish(sms(status_callback=f"{receiver.url}/s"))
        posts = receiver.wait_for(status_of(receipt.provider_id), count=2)
        # with no delay between them the two callbacks may arrive in either order, as at Twilio
        final = max((parse_status_callback(p.form) for p in posts), key=lambda u: u.rank)
        assert (final.status, final.error_code) == ("undelivered", "30003")


def test_unreachable_callback_url_is_recorded_not_fatal(sandbox, channel) -> None:
    receipt = channel.publish(sms(status_callback="http://127.0.0.1:9/closed"))
    wait_until(lambda: len(sandbox.control("GET", "/twilio/callbacks")) == 2)
    log = sandbox.control("GET", "/twilio/callbacks")
    assert all(e["error"] == "ConnectionError" and e["response_status"] is None for e in log)
    assert channel.publish(sms()).provider_id != receipt.provider_id  # still serving


def test_a_callback_receiver_that_never_answers_is_recorded_as_a_timeout() -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never answers
    config = {"TWILIO_SANDBOX_CALLBACK_TIMEOUT": 0.3, "TWILIO_SANDBOX_DELIVERY_DELAY": 0}
    try:
        with RunningSandbox(config) as sandbox:
            channel = SmsChannel.from_settings(DEFAULTS, sandbox.url)
            channel.publish(sms(status_callback=f"http://127.0.0.1:{silent.getsockname()[1]}/s"))
            wait_until(lambda: len(sandbox.control("GET", "/twilio/callbacks")) == 2)
            log = sandbox.control("GET", "/twilio/callbacks")
    finally:
        silent.close()
    assert [(e["error"], e["response_status"]) for e in log] == [("ReadTimeout", None)] * 2


def test_above_the_rate_messages_queue_and_drain() -> None:
    with RunningSandbox({"TWILIO_SANDBOX_RATE": 25}) as sandbox:
        channel = SmsChannel.from_settings(NUMBER_ONLY, sandbox.url)
        receipts = [channel.publish(sms(to=f"+316200{i:05d}")) for i in range(40)]  # 1.6 s worth
        assert {r.raw["status"] for r in receipts} == {"queued"}
        queue = sandbox.control("GET", "/twilio/queue")
        assert queue["queued"] > 0 and queue["drain_seconds"] > 0 and queue["rate"] == 25
        wait_until(lambda: sandbox.control("GET", "/twilio/queue")["queued"] == 0, timeout=4)
        assert {m["status"] for m in sandbox_messages(sandbox)} <= {"sent", "delivered"}


def test_validity_period_expires_in_the_queue() -> None:
    with RunningSandbox({"TWILIO_SANDBOX_RATE": 1}) as sandbox:
        channel = SmsChannel.from_settings(NUMBER_ONLY, sandbox.url)
        channel.validity_period = 1
        first, second = (channel.publish(sms(to=f"+3163000000{i}")) for i in range(2))
        time.sleep(1.3)
        by_sid = {m["sid"]: m for m in sandbox_messages(sandbox)}
        assert by_sid[first.provider_id]["status"] in ("sent", "delivered")
        assert (by_sid[second.provider_id]["status"], by_sid[second.provider_id]["error_code"]) == (
            "failed",
            30036,
        )


def test_full_queue_refuses_from_sends_and_fails_service_sends() -> None:
    config = {"TWILIO_SANDBOX_RATE": 1, "TWILIO_SANDBOX_QUEUE_LIMIT": 0.5}
    with RunningSandbox(config) as sandbox:
        by_number = SmsChannel.from_settings(NUMBER_ONLY, sandbox.url)
        by_number.publish(sms(to="+31640000001"))
        with pytest.raises(TransientChannelError) as error:
            by_number.publish(sms(to="+31640000002"))
        assert error.value.retry_after == 60.0  # 21611: come back much later
        by_service = SmsChannel.from_settings(DEFAULTS, sandbox.url)
        receipt = by_service.publish(sms(to="+31640000003"))
        wait_until(lambda: by_service.client.messages(receipt.provider_id).fetch().status == "failed")
        assert by_service.client.messages(receipt.provider_id).fetch().error_code == 30001


# --- inbound and erasure ----------------------------------------------------------------------


def test_inbound_sms_reaches_the_console(receiver) -> None:
    with RunningSandbox({"CONSOLE_URL": receiver.url}) as sandbox:
        result = inject(sandbox, "Waar is de noodopvang?")
        [post] = receiver.wait_for(lambda e: e.path == "/webhooks/twilio/sms")
    inbound = parse_inbound(post.form)
    assert inbound.message_sid == result["sid"]
    assert (inbound.from_number, inbound.to, inbound.body) == (
        RESIDENT,
        DEFAULTS["TWILIO_FROM"],
        "Waar is de noodopvang?",
    )
    assert inbound.messaging_service_sid == DEFAULTS["TWILIO_MESSAGING_SERVICE_SID"]
    assert (inbound.num_media, inbound.num_segments, inbound.keyword) == (0, 1, None)


def test_inbound_stop_carries_the_opt_out_type(receiver) -> None:
    with RunningSandbox({"CONSOLE_URL": receiver.url}) as sandbox:
        inject(sandbox, "stop")
        [post] = receiver.wait_for(lambda e: True)
    assert parse_inbound(post.form).keyword == "stop"
    assert post.form["OptOutType"] == "STOP"


def test_inject_refuses_a_sender_that_is_no_phone_number(sandbox) -> None:
    response = requests.post(
        f"{sandbox.url}/_sandbox/inject", json={"channel": "sms", "from": "hello"}, timeout=5
    )
    assert response.status_code == 400


def test_erase_number_forgets_messages_and_opt_outs(sandbox, channel) -> None:
    channel.publish(sms())
    channel.publish(sms(to="+31687654321"))
    inject(sandbox, "STOP", sender="+31687654321")
    erased = sandbox.control("DELETE", "/twilio/numbers/+31687654321")
    assert erased == {"erased": 2}  # the outbound text and the STOP
    assert [m["to"] for m in sandbox_messages(sandbox)] == [RESIDENT]
    assert channel.publish(sms(to="+31687654321")).provider_id  # block list entry gone too
    assert channel.client.messages.list(to="+31687654321")[0].body == sms().text


# --- parsing and keywords (pure) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("STOP", "stop"),
        (" stop. ", "stop"),
        ("Unsubscribe", "stop"),
        ("stopall", "stop"),
        ("AFMELDEN", "stop"),
        ("start", "start"),
        ("UNSTOP", "start"),
        ("yes", "start"),
        ("aanmelden", "start"),
        ("help", "help"),
        ("INFO", "help"),
        ("stop met die sirene", None),
        ("Is het water weer veilig?", None),
        ("", None),
        (None, None),
    ],
)
def test_classify_keyword(body, kind) -> None:
    assert classify_keyword(body) == kind


def test_classify_keyword_standard_only() -> None:
    assert classify_keyword("AFMELDEN", dutch=False) is None
    assert classify_keyword("STOP", dutch=False) == "stop"


def test_parse_webhooks_reject_missing_fields() -> None:
    with pytest.raises(ValueError, match="From"):
        parse_inbound({"MessageSid": "SM1", "To": "+3197010000000"})
    with pytest.raises(ValueError, match="MessageStatus"):
        parse_status_callback({"MessageSid": "SM1"})


def test_parse_inbound_with_media() -> None:
    form = {
        "MessageSid": "MM1",
        "From": RESIDENT,
        "To": "+3197010000000",
        "Body": "",
        "NumMedia": "2",
        "MediaUrl0": "https://api.twilio.com/m/0",
        "MediaUrl1": "https://api.twilio.com/m/1",
    }
    assert parse_inbound(form).media_urls == (
        "https://api.twilio.com/m/0",
        "https://api.twilio.com/m/1",
    )


@pytest.mark.parametrize(
    ("seen", "base", "expected"),
    [
        (
            "http://127.0.0.1:8000/webhooks/twilio/sms",
            "https://crisis.example.nl",
            "https://crisis.example.nl/webhooks/twilio/sms",
        ),
        (
            "http://10.0.0.5/webhooks/twilio/status?r=1&x=a%20b",
            "https://crisis.example.nl/",
            "https://crisis.example.nl/webhooks/twilio/status?r=1&x=a%20b",
        ),
        (
            "http://app:8000/webhooks/twilio/sms",
            "https://gemeente.nl/crisis",
            "https://gemeente.nl/crisis/webhooks/twilio/sms",
        ),
        (
            "http://app:8000/crisis/webhooks/twilio/sms",
            "https://gemeente.nl/crisis",
            "https://gemeente.nl/crisis/webhooks/twilio/sms",
        ),
        (
            "http://127.0.0.1:8000/webhooks/twilio/sms",
            None,
            "http://127.0.0.1:8000/webhooks/twilio/sms",
        ),
    ],
)
def test_public_url(seen, base, expected) -> None:
    assert public_url(seen, base) == expected


def test_no_phone_number_reaches_the_logs(channel, caplog) -> None:
    # INFO: twilio's HTTP client logs every query there. (urllib3 logs URLs at DEBUG, which no
    # deployment should run with.)
    caplog.set_level("INFO")
    channel.publish(sms())
    channel.find(sms(attempted_at=datetime.now(UTC)))
    with pytest.raises(PermanentChannelError):
        channel.publish(sms(to="+15005550001"))
    # the sandbox's own request log (werkzeug) is the provider's side, not ours
    ours = [r.getMessage() for r in caplog.records if r.name != "werkzeug"]
    assert not [line for line in ours if "31612345678" in line or "15005550001" in line]
