"""FacebookChannel with the real facebook-sdk over HTTP against the sandbox's Graph emulator."""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from datetime import UTC, datetime

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from channels.base import Draft, Outbound, PermanentChannelError, TransientChannelError
from channels.facebook import (
    FacebookChannel,
    classify,
    parse_webhook,
    verify_signature,
    verify_subscription,
)
from channels.sandbox.facebook import DEFAULTS as FB
from channels.sandbox.x import DEFAULTS as X
from channels.x import crc_response
from tests.channels.conftest import RunningSandbox

SECRET = FB["FACEBOOK_APP_SECRET"]


class ConsoleReceiver:
    """A stand-in for the console's webhook endpoints: answers the handshakes, records calls."""

    def __init__(self) -> None:
        self.calls: queue.Queue[dict] = queue.Queue()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()

    def app(self, environ, start_response):
        request = Request(environ)
        call = {
            "method": request.method,
            "path": request.path,
            "args": request.args.to_dict(),
            "headers": dict(request.headers),
            "body": request.get_data(),
        }
        self.calls.put(call)
        return self.answer(request)(environ, start_response)

    @staticmethod
    def answer(request: Request) -> Response:
        if request.method == "GET" and request.path == "/webhooks/facebook":
            challenge = verify_subscription(request.args, FB["FACEBOOK_VERIFY_TOKEN"])
            return Response(challenge or "", 200 if challenge else 403, mimetype="text/plain")
        if request.method == "GET" and request.path == "/webhooks/x":
            body = crc_response(request.args["crc_token"], X["X_API_SECRET"])
            return Response(json.dumps(body), mimetype="application/json")
        return Response("", 200)

    def drain(self) -> None:
        while not self.calls.empty():
            self.calls.get_nowait()

    def next(self, method: str, path: str, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            call = self.calls.get(timeout=max(0.01, deadline - time.monotonic()))
            if call["method"] == method and call["path"] == path:
                return call


@pytest.fixture(scope="module")
def console_pair():
    """A console receiver and a sandbox that delivers its webhooks to it."""
    with ConsoleReceiver() as receiver, RunningSandbox({"CONSOLE_URL": receiver.url}) as running:
        yield receiver, running


@pytest.fixture
def console(console_pair):
    receiver, running = console_pair
    running.control("POST", "/reset")
    receiver.drain()
    return receiver, running


def wait_for(read, predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if predicate(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def channel(running, timeout: float = 2.0, **overrides) -> FacebookChannel:
    return FacebookChannel.from_settings({**running.app.config, **overrides}, running.url, timeout)


@pytest.fixture
def fb(sandbox):
    return channel(sandbox)


def posts(running) -> list[dict]:
    return running.control("GET", "/facebook/posts")


# Outbound


def test_render_puts_link_below_text_and_counts_characters():
    rendering = FacebookChannel.render(Draft(body="Dijk bij Dalfsen: blijf weg", link="https://e.nl/x"))
    assert rendering.text == "Dijk bij Dalfsen: blijf weg\n\nhttps://e.nl/x"
    assert rendering.length == len(rendering.text) and rendering.valid
    assert not FacebookChannel.render(Draft(body="a" * 63207)).valid


def test_publish_edit_and_retract_are_visible_in_the_sandbox(fb, sandbox):
    assert fb.sandbox
    receipt = fb.publish(Outbound(key="m1", text="Let op: dijk ë", link="https://e.nl/1"))
    page_id, _, post = receipt.provider_id.partition("_")
    assert page_id == FB["FACEBOOK_PAGE_ID"]
    assert receipt.url == f"https://www.facebook.com/{page_id}/posts/{post}"

    edited = fb.edit(receipt, Outbound(key="m1", text="Let op: dijk (bijgewerkt)"))
    assert edited.provider_id == receipt.provider_id
    [stored] = posts(sandbox)
    assert stored["message"] == "Let op: dijk (bijgewerkt)"
    assert stored["edits"][0]["message"] == "Let op: dijk ë"
    assert stored["link"] == "https://e.nl/1"
    assert stored["version"] == "v21.0"  # the SDK would have said v2.8 without the workaround

    fb.retract(receipt)
    fb.retract(receipt)  # already gone counts as retracted
    assert posts(sandbox)[0]["deleted"] is True


def test_reply_is_a_comment_on_the_post(fb, sandbox):
    post = fb.publish(Outbound(key="m1", text="Eerste bericht"))
    reply = fb.publish(Outbound(key="m2", text="Correctie: weg is open", reply_to=post))
    assert reply.url.startswith(post.url + "?comment_id=")
    comment = next(item for item in posts(sandbox) if item["kind"] == "comment")
    assert comment["parent_id"] == post.provider_id
    assert comment["from"]["id"] == FB["FACEBOOK_PAGE_ID"]


def test_find_reconciles_posts_and_comments(fb):
    started = datetime.now(UTC)
    post = fb.publish(Outbound(key="m1", text="Bericht om te vinden", attempted_at=started))
    reply = fb.publish(Outbound(key="m2", text="Antwoord", reply_to=post))
    found = fb.find(Outbound(key="m1", text="Bericht om te vinden", attempted_at=started))
    assert (found.provider_id, found.url) == (post.provider_id, post.url)
    assert fb.find(Outbound(key="m2", text="Antwoord", reply_to=post)).provider_id == reply.provider_id
    assert fb.find(Outbound(key="m3", text="Nooit verstuurd", attempted_at=started)) is None


def test_check_reports_page_and_usage(fb):
    status = fb.check()
    assert status.ok and FB["FACEBOOK_PAGE_ID"] in status.detail
    assert "x-business-use-case-usage" in status.detail


def test_check_with_a_bad_token_is_not_ok(sandbox):
    status = channel(sandbox, FACEBOOK_PAGE_TOKEN="expired").check()
    assert not status.ok and "190" in status.detail


# Failures, table-driven. Each row: fault spec, channel overrides, expected outcome.
CASES = {
    "success": ({}, {}, None),
    "rate_limit": ({"rate_limit_for": 30}, {}, ("transient", 30)),
    "server_error": ({"server_error_for": 30}, {}, ("transient", None)),
    "timeout": ({"timeout_for": 5, "timeout_seconds": 1.0}, {}, ("transient", None)),
    "outage": ({"outage_for": 30}, {}, ("transient", None)),
    "bad_token": ({}, {"FACEBOOK_PAGE_TOKEN": "wrong"}, ("permanent", "190")),
    "bad_app_secret": ({}, {"FACEBOOK_APP_SECRET": "wrong"}, ("permanent", "100")),
    "other_page": ({}, {"FACEBOOK_PAGE_ID": "999"}, ("permanent", "200")),
    "duplicate": ({}, {}, ("permanent", "duplicate")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_publish_outcomes(case, sandbox):
    fault, overrides, expected = CASES[case]
    text = f"Bericht voor {case}"
    fb = channel(sandbox, timeout=0.3 if case == "timeout" else 2.0, **overrides)
    if case == "duplicate":
        fb.publish(Outbound(key="first", text=text))
    if fault:
        sandbox.fault("facebook", **fault)
    if expected is None:
        assert fb.publish(Outbound(key=case, text=text)).provider_id
        return
    kind, detail = expected
    error = PermanentChannelError if kind == "permanent" else TransientChannelError
    with pytest.raises(error) as caught:
        fb.publish(Outbound(key=case, text=text))
    assert FB["FACEBOOK_PAGE_TOKEN"] not in str(caught.value)
    if kind == "permanent":
        assert caught.value.code == detail
    elif detail is not None:  # Graph gives minutes to regain access: within one minute above
        assert detail <= caught.value.retry_after <= detail + 61
    if case == "timeout":
        # The call still landed after the client gave up: find() must reconcile it.
        landed = wait_for(lambda: posts(sandbox), lambda items: len(items) == 1)
        assert landed and landed[0]["message"] == text
        sandbox.fault("facebook")
        assert channel(sandbox).find(Outbound(key=case, text=text)).provider_id == landed[0]["id"]


@pytest.mark.parametrize(
    ("error", "status", "headers", "expected"),
    [
        (
            {"code": 80001, "message": "m"},
            400,
            {
                "x-business-use-case-usage": json.dumps(
                    {"1": [{"type": "pages", "estimated_time_to_regain_access": 7}]}
                )
            },
            ("t", 420),
        ),
        ({"code": 4, "message": "m"}, 403, {}, ("t", 60)),
        ({"code": 1, "message": "m"}, 500, {}, ("t", None)),
        ({"code": 100, "message": "m", "is_transient": True}, 400, {}, ("t", None)),
        ({"code": 190, "error_subcode": 463, "message": "expired"}, 400, {}, ("p", "190")),
        ({"code": 10, "message": "m"}, 403, {}, ("p", "10")),
        ({"code": 368, "message": "blocked"}, 400, {}, ("p", "368")),
        ({"code": 506, "message": "dup"}, 400, {}, ("p", "duplicate")),
    ],
)
def test_classify_graph_errors(error, status, headers, expected):
    result = classify("publish", error, status, headers)
    kind, value = expected
    if kind == "t":
        assert isinstance(result, TransientChannelError) and result.retry_after == value
    else:
        assert isinstance(result, PermanentChannelError) and result.code == value
        assert result.subcode == error.get("error_subcode")


# Inbound: the page webhook


def test_injected_comment_arrives_signed_and_parses(console):
    receiver, running = console
    post = channel(running).publish(Outbound(key="m1", text="Dijk Dalfsen"))
    result = running.control(
        "POST",
        "/inject",
        json={
            "channel": "facebook",
            "post_id": post.provider_id,
            "text": "Is de weg naar Nieuwleusen weer open? Café ë €",
            "author": "Jan Jansen",
        },
    )

    handshake = receiver.next("GET", "/webhooks/facebook")
    assert handshake["args"]["hub.mode"] == "subscribe"
    event = receiver.next("POST", "/webhooks/facebook")
    raw, header = event["body"], event["headers"]["X-Hub-Signature-256"]
    assert b"\\u00eb" in raw and b"\\u20ac" in raw  # Meta's escaped unicode, signed as is
    assert verify_signature(raw, header, SECRET)
    assert not verify_signature(raw, header, "another secret")
    assert not verify_signature(raw, "sha256=" + "0" * 64, SECRET)
    assert not verify_signature(raw.replace(b"Jan", b"Piet"), header, SECRET)
    assert not verify_signature(raw, None, SECRET) and not verify_signature(raw, header, "")

    [comment] = parse_webhook(json.loads(raw))
    assert comment.comment_id == result["comment_id"]
    assert comment.post_id == comment.parent_id == post.provider_id
    assert comment.message == "Is de weg naar Nieuwleusen weer open? Café ë €"
    assert comment.author_name == "Jan Jansen" and not comment.by_page
    assert comment.verb == "add" and comment.created_time.tzinfo is not None

    deliveries = wait_for(
        lambda: running.control("GET", "/facebook/deliveries"),
        lambda items: all(item["done"] for item in items),
    )
    assert [(d["kind"], d["status"], d["ok"]) for d in deliveries] == [
        ("verify", 200, True),
        ("event", 200, True),
    ]


def test_reply_and_remove_events_parse(console):
    receiver, running = console
    post = channel(running).publish(Outbound(key="m1", text="Update"))
    first = running.control(
        "POST",
        "/inject",
        json={"channel": "facebook", "post_id": post.provider_id, "text": "Vraag", "author": "Ans"},
    )
    running.control(
        "POST",
        "/inject",
        json={
            "channel": "facebook",
            "post_id": post.provider_id,
            "parent_id": first["comment_id"],
            "text": "Ik weet het ook niet",
            "author": "Kees",
        },
    )
    running.control(
        "POST",
        "/inject",
        json={"channel": "facebook", "verb": "remove", "comment_id": first["comment_id"]},
    )
    events = [json.loads(receiver.next("POST", "/webhooks/facebook")["body"]) for _ in range(3)]
    _, reply, removal = (parse_webhook(event)[0] for event in events)
    assert reply.parent_id == first["comment_id"] and reply.post_id == post.provider_id
    assert removal.verb == "remove" and removal.message is None


def test_unreachable_console_is_recorded_not_fatal():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with RunningSandbox({"CONSOLE_URL": f"http://127.0.0.1:{closed}"}) as running:
        post = channel(running).publish(Outbound(key="m1", text="Bericht"))
        running.control(
            "POST", "/inject", json={"channel": "facebook", "post_id": post.provider_id, "text": "?"}
        )
        deliveries = wait_for(
            lambda: running.control("GET", "/facebook/deliveries"),
            lambda items: all(item["done"] for item in items),
        )
        assert {(d["kind"], d["ok"], d["error"]) for d in deliveries} == {
            ("verify", False, "ConnectionError"),
            ("event", False, "ConnectionError"),
        }
        assert channel(running).check().ok  # the sandbox carries on


def test_inject_without_a_post_is_refused(console):
    _, running = console
    with pytest.raises(requests.HTTPError, match="400"):
        running.control("POST", "/inject", json={"channel": "facebook", "text": "Hallo"})


def test_verify_subscription():
    args = {"hub.mode": "subscribe", "hub.verify_token": "tok", "hub.challenge": "1158201444"}
    assert verify_subscription(args, "tok") == "1158201444"
    assert verify_subscription({**args, "hub.verify_token": "nope"}, "tok") is None
    assert verify_subscription({**args, "hub.mode": "unsubscribe"}, "tok") is None
    assert verify_subscription(args, "") is None


def test_parse_webhook_skips_other_items():
    payload = {
        "object": "page",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {"field": "feed", "value": {"item": "reaction", "verb": "add"}},
                    {
                        "field": "feed",
                        "value": {
                            "item": "comment",
                            "verb": "edited",
                            "comment_id": "5_6",
                            "post_id": "1_5",
                            "message": "nieuw",
                            "from": {"id": "1"},
                            "created_time": "2025-05-01T12:00:00+0000",
                        },
                    },
                ],
            }
        ],
    }
    [comment] = parse_webhook(payload)
    assert comment.verb == "edited" and comment.by_page
    assert comment.created_time == datetime(2025, 5, 1, 12, tzinfo=UTC)
    assert parse_webhook({"object": "user", "entry": []}) == []
