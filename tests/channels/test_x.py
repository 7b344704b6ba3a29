"""XChannel with the real tweepy Client over HTTP against the sandbox's X emulator."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import pytest
import requests

from channels.base import Draft, Outbound, PermanentChannelError, TransientChannelError
from channels.sandbox.x import DEFAULTS as X
from channels.x import (
    XChannel,
    _retry_after,
    crc_response,
    parse_webhook_events,
    verify_webhook_signature,
    weighted_length,
)
from tests.channels.conftest import RunningSandbox
from tests.channels.test_facebook import ConsoleReceiver, wait_for

SECRET = X["X_API_SECRET"]


@pytest.fixture(scope="module")
def console_pair():
    """A console receiver and a sandbox that delivers X webhooks to it."""
    with (
        ConsoleReceiver() as receiver,
        RunningSandbox({"CONSOLE_URL": receiver.url, "X_WEBHOOK_ENABLED": True}) as running,
    ):
        yield receiver, running


@pytest.fixture
def console(console_pair):
    receiver, running = console_pair
    running.control("POST", "/reset")
    receiver.drain()
    return receiver, running


def channel(running, timeout: float = 2.0, **overrides) -> XChannel:
    return XChannel.from_settings({**running.app.config, **overrides}, running.url, timeout)


@pytest.fixture
def x(sandbox):
    return channel(sandbox)


def tweets(running) -> list[dict]:
    return running.control("GET", "/x/tweets")


def inject(running, text: str, **spec) -> dict:
    return running.control("POST", "/inject", json={"channel": "x", "text": text, **spec})


# Outbound


def test_render_counts_weighted_length_with_the_link_as_23():
    link = "https://www.dalfsen.nl/crisis/updates/2025/hoogwater-vecht"
    fits = XChannel.render(Draft(body="a" * 256, link=link))
    assert fits.text == "a" * 256 + " " + link
    assert (fits.length, fits.valid) == (280, True)
    assert not XChannel.render(Draft(body="a" * 257, link=link)).valid
    euro = XChannel.render(Draft(body="Schade € 100"))
    assert euro.length == weighted_length("Schade € 100")[0] == 13  # € weighs 2


def test_render_keeps_an_inline_link_and_the_exercise_marker():
    rendering = XChannel.render(Draft(body="Zie https://e.nl/x", link="https://e.nl/x", marker="OEFENING:"))
    assert rendering.text == "OEFENING: Zie https://e.nl/x"


def test_publish_reply_and_retract_are_visible_in_the_sandbox(x, sandbox):
    assert x.sandbox
    post = x.publish(Outbound(key="m1", text="Let op & blijf weg <dijk> https://e.nl/a?b=1&c=2"))
    assert post.url == f"https://x.com/{X['X_USERNAME']}/status/{post.provider_id}"
    reply = x.publish(Outbound(key="m2", text="Correctie: de weg is open", reply_to=post))

    first, second = tweets(sandbox)
    assert first["text"] == "Let op & blijf weg <dijk> https://e.nl/a?b=1&c=2"
    assert second["in_reply_to"] == post.provider_id
    assert second["conversation_id"] == post.provider_id

    x.retract(reply)
    x.retract(reply)  # already gone counts as retracted
    assert [t["deleted"] for t in tweets(sandbox)] == [False, True]


def test_find_undoes_x_rewriting_and_returns_none_for_unsent(x):
    started = datetime.now(UTC)
    text = "Update & advies: https://e.nl/a?b=1&c=2 <lees>"
    post = x.publish(Outbound(key="m1", text=text))
    assert post.raw["text"] != text  # t.co-wrapped and HTML-escaped, as X answers
    found = x.find(Outbound(key="m1", text=text, attempted_at=started))
    assert (found.provider_id, found.url) == (post.provider_id, post.url)
    assert x.find(Outbound(key="m2", text="Nooit verstuurd", attempted_at=started)) is None


def test_find_matches_the_thread_for_replies(x):
    post = x.publish(Outbound(key="m1", text="Bericht"))
    reply = x.publish(Outbound(key="m2", text="Zelfde tekst", reply_to=post))
    other = x.publish(Outbound(key="m3", text="Ander bericht"))
    assert x.find(Outbound(key="m2", text="Zelfde tekst", reply_to=post)).provider_id == reply.provider_id
    assert x.find(Outbound(key="m4", text="Zelfde tekst", reply_to=other)) is None


def test_check_reports_account_and_rate_window(x):
    status = x.check()
    assert status.ok and status.detail == f"@{X['X_USERNAME']}"
    assert status.rate_limit_remaining is not None and status.rate_limit_reset is not None


def test_check_with_bad_credentials_is_not_ok(sandbox):
    status = channel(sandbox, X_ACCESS_SECRET="wrong").check()
    assert not status.ok and "401" in status.detail


# Failures, table-driven. Each row: fault spec, channel overrides, expected outcome.
CASES = {
    "success": ({}, {}, None),
    "rate_limit": ({"rate_limit_for": 30}, {}, ("transient", 30)),
    "server_error": ({"server_error_for": 30}, {}, ("transient", None)),
    "timeout": ({"timeout_for": 5, "timeout_seconds": 1.0}, {}, ("transient", None)),
    "outage": ({"outage_for": 30}, {}, ("transient", None)),
    "bad_secret": ({}, {"X_API_SECRET": "wrong"}, ("permanent", "401")),
    "bad_token": ({}, {"X_ACCESS_TOKEN": "1500000000000000001-other"}, ("permanent", "401")),
    "duplicate": ({}, {}, ("permanent", "duplicate")),
    "too_long": ({}, {}, ("permanent", "403")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_publish_outcomes(case, sandbox):
    fault, overrides, expected = CASES[case]
    text = "a" * 281 if case == "too_long" else f"Bericht voor {case}"
    x = channel(sandbox, timeout=0.3 if case == "timeout" else 2.0, **overrides)
    if case == "duplicate":
        x.publish(Outbound(key="first", text=text))
    if fault:
        sandbox.fault("x", **fault)
    if expected is None:
        assert x.publish(Outbound(key=case, text=text)).provider_id
        return
    kind, detail = expected
    error = PermanentChannelError if kind == "permanent" else TransientChannelError
    started = time.monotonic()
    with pytest.raises(error) as caught:
        x.publish(Outbound(key=case, text=text))
    assert time.monotonic() - started < 0.95  # the client's timeout, not the sandbox's hang
    assert SECRET not in str(caught.value)
    if kind == "permanent":
        assert caught.value.code == detail
    elif detail is not None:
        assert abs(caught.value.retry_after - detail) <= 2
    if case == "timeout":
        # The post still landed after the client gave up: find() must reconcile it.
        landed = wait_for(lambda: tweets(sandbox), lambda items: len(items) == 1)
        assert landed and landed[0]["text"] == text
        sandbox.fault("x")
        assert channel(sandbox).find(Outbound(key=case, text=text)).provider_id == landed[0]["id"]


def test_retry_after_prefers_a_spent_24_hour_quota():
    headers = {
        "x-rate-limit-reset": "1100",
        "x-user-limit-24hour-remaining": "0",
        "x-user-limit-24hour-reset": "5000",
        "x-app-limit-24hour-remaining": "10",
        "x-app-limit-24hour-reset": "9000",
    }
    assert _retry_after(headers, now=1000) == 4000
    assert _retry_after({}, now=1000) is None


def test_bearer_token_cannot_post(sandbox):
    response = requests.post(
        f"{sandbox.url}/x/2/tweets",
        json={"text": "hoi"},
        timeout=5,
        headers={"Authorization": f"Bearer {X['X_BEARER_TOKEN']}"},
    )
    assert response.status_code == 403
    assert response.json()["title"] == "Unsupported Authentication"
    assert {"x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"} <= {
        key.lower() for key in response.headers
    }


# Inbound: polling


def test_poll_mentions_respects_since_id(x, sandbox):
    post = x.publish(Outbound(key="m1", text="Dijk Dalfsen"))
    first = inject(sandbox, "is de weg open?", author="jan", in_reply_to=post.provider_id)
    inject(sandbox, "waar is de opvang?", author={"username": "ans", "name": "Ans"})

    mentions, newest, wait = x.poll_mentions(None)
    assert [m.author_username for m in mentions] == ["jan", "ans"]
    assert wait is None and newest == mentions[-1].id
    jan = mentions[0]
    assert jan.id == first["id"] and jan.text == f"@{X['X_USERNAME']} is de weg open?"
    assert jan.in_reply_to_id == post.provider_id == jan.conversation_id
    assert jan.referenced_ids == (post.provider_id,) and jan.created_at.tzinfo is not None

    later = inject(sandbox, "@crisis_nl hoe hoog staat het water?", author="piet")
    mentions, newer, _ = x.poll_mentions(newest)
    assert [m.id for m in mentions] == [later["id"]]
    assert x.poll_mentions(newer)[:2] == ([], newer)


def test_poll_mentions_pages_through_everything_since(x, sandbox):
    inject(sandbox, "eerste", author="a")
    _, since, _ = x.poll_mentions(None)
    ids = [inject(sandbox, f"vraag {n}", author=f"u{n}")["id"] for n in range(7)]
    mentions, newest, _ = x.poll_mentions(since, page_size=5)
    assert [m.id for m in mentions] == ids and newest == ids[-1]


def test_poll_mentions_answers_a_429_with_a_wait(x, sandbox):
    sandbox.fault("x", rate_limit_for=20)
    mentions, newest, wait = x.poll_mentions("123")
    assert (mentions, newest) == ([], "123") and abs(wait - 20) <= 2


def test_poll_replies_reads_the_thread(x, sandbox):
    post = x.publish(Outbound(key="m1", text="Bericht"))
    reply = inject(sandbox, "dank!", author="kim", in_reply_to=post.provider_id)
    inject(sandbox, "los van de draad", author="kim")
    mentions, newest, _ = x.poll_replies(post.provider_id, None)
    assert [m.id for m in mentions] == [reply["id"]] and newest == reply["id"]


# Inbound: Account Activity webhooks


def test_webhook_crc_and_signed_event(console):
    receiver, running = console
    post = channel(running).publish(Outbound(key="m1", text="Dijk Dalfsen"))
    injected = inject(running, "is de weg open? ë", author="jan", in_reply_to=post.provider_id)

    crc = receiver.next("GET", "/webhooks/x")
    assert crc["args"]["crc_token"]
    event = receiver.next("POST", "/webhooks/x")
    raw, header = event["body"], event["headers"]["X-Twitter-Webhooks-Signature"]
    assert verify_webhook_signature(raw, header, SECRET)
    assert not verify_webhook_signature(raw, header, "another secret")
    assert not verify_webhook_signature(raw.replace(b"jan", b"kim"), header, SECRET)
    assert not verify_webhook_signature(raw, None, SECRET)
    assert not verify_webhook_signature(raw, header, "")

    [mention] = parse_webhook_events(json.loads(raw))
    assert mention.id == injected["id"] and mention.author_username == "jan"
    assert mention.in_reply_to_id == post.provider_id
    assert mention.text.endswith("is de weg open? ë") and mention.created_at.tzinfo is not None

    deliveries = wait_for(
        lambda: running.control("GET", "/x/deliveries"),
        lambda items: all(item["done"] for item in items),
    )
    assert [(d["kind"], d["status"], d["ok"]) for d in deliveries] == [
        ("crc", 200, True),
        ("event", 200, True),
    ]


def test_crc_response_is_base64_hmac_of_the_token():
    expected = base64.b64encode(hmac.new(b"secret", b"challenge", hashlib.sha256).digest()).decode()
    assert crc_response("challenge", "secret") == {"response_token": f"sha256={expected}"}


def test_parse_webhook_events_skips_the_accounts_own_posts():
    payload = {
        "for_user_id": "1",
        "tweet_create_events": [
            {
                "id_str": "10",
                "text": "eigen bericht",
                "user": {"id_str": "1", "screen_name": "me"},
                "created_at": "Wed Oct 10 20:19:24 +0000 2018",
            },
            {
                "id_str": "11",
                "text": "x",
                "extended_tweet": {"full_text": "lange tekst &amp; meer"},
                "user": {"id_str": "2", "screen_name": "jan"},
                "quoted_status_id_str": "10",
                "created_at": "Wed Oct 10 20:19:25 +0000 2018",
            },
        ],
    }
    [mention] = parse_webhook_events(payload)
    assert (mention.id, mention.text, mention.referenced_ids) == (
        "11",
        "lange tekst & meer",
        ("10",),
    )
    assert mention.created_at == datetime(2018, 10, 10, 20, 19, 25, tzinfo=UTC)


def test_from_settings_names_missing_keys_without_values():
    with pytest.raises(PermanentChannelError) as caught:
        XChannel.from_settings({"X_API_KEY": "k"}, None)
    assert caught.value.code == "not_configured" and "X_API_SECRET" in str(caught.value)
