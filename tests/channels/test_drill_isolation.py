"""With live credentials configured, a drill's channels connect to no host but the sandbox.

Every socket connection and DNS look-up of the whole process goes through `NetworkGuard`; the
channels use their real SDKs (tweepy, facebook-sdk, twilio) over real HTTP. The sandbox records
every request it receives, so the test also sees that no live credential was sent to it.
"""

from __future__ import annotations

import base64
import socket
import threading
from datetime import UTC, datetime

import pytest
import requests
from flask import request

from channels.base import Outbound, PermanentChannelError
from channels.factory import DrillWithoutSandbox, build_channels, sandbox_settings
from channels.sandbox.facebook import DEFAULTS as FACEBOOK_SANDBOX
from channels.sandbox.twilio import DEFAULTS as TWILIO_SANDBOX
from channels.sandbox.x import DEFAULTS as X_SANDBOX
from tests.channels.conftest import RunningSandbox
from tests.channels.test_website import MemoryPosts
from tests.network_guard import NetworkGuard, NetworkGuardViolation

# What a municipality's production configuration looks like (none of it is real).
LIVE = {
    "X_API_KEY": "live-x-consumer-key-7Hq2",
    "X_API_SECRET": "live-x-consumer-secret-Zp9wK3",
    "X_ACCESS_TOKEN": "987654321-live-x-access-token-Qe4r",
    "X_ACCESS_SECRET": "live-x-access-secret-Lm3nB8",
    "X_BEARER_TOKEN": "AAAAAAAAAAAAAAAAAAAAALiveBearerToken0001",
    "X_USERNAME": "gemeentedalfsen",
    "FACEBOOK_PAGE_ID": "104857600000001",
    "FACEBOOK_PAGE_TOKEN": "EAAGliveFacebookPageToken0001",
    "FACEBOOK_APP_SECRET": "live-facebook-app-secret-0001",
    "TWILIO_ACCOUNT_SID": "AC" + "f" * 32,
    "TWILIO_AUTH_TOKEN": "live-twilio-auth-token-0001",
    "TWILIO_MESSAGING_SERVICE_SID": "MG" + "e" * 32,
    "TWILIO_FROM": "+31970102030405",
    "PUBLIC_URL": "https://crisis.dalfsen.nl",
}
SECRETS = [value for key, value in LIVE.items() if key not in ("PUBLIC_URL", "X_USERNAME")]
RESIDENT = "+31612345678"
PROVIDER_HOSTS = {"x": "api.twitter.com", "facebook": "graph.facebook.com", "sms": "api.twilio.com"}
ENVIRONMENT = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
               "TWILIO_REGION", "TWILIO_EDGE")


@pytest.fixture(scope="module")
def recording_sandbox():
    """A sandbox that keeps every request it received: path, query, headers and body."""
    running = RunningSandbox()
    received: list[dict[str, str]] = []
    lock = threading.Lock()

    @running.app.before_request
    def record():
        headers = dict(request.headers)
        auth = headers.get("Authorization", "")
        if auth.startswith("Basic "):  # Twilio's account SID and token travel base64-encoded
            headers["Authorization-decoded"] = base64.b64decode(auth[6:]).decode()
        entry = {"path": request.full_path, "headers": repr(headers),
                 "body": request.get_data(as_text=True)}
        with lock:
            received.append(entry)

    running.received = received
    with running:
        yield running


@pytest.fixture
def sandbox(recording_sandbox, monkeypatch):
    recording_sandbox.control("POST", "/reset")
    recording_sandbox.received.clear()
    for name in ENVIRONMENT:  # a proxy would be the host the SDKs connect to; keep them direct
        monkeypatch.delenv(name, raising=False)
    return recording_sandbox


def only_sandbox(sandbox) -> NetworkGuard:
    port = int(sandbox.url.rsplit(":", 1)[1])
    return NetworkGuard(allow=[("127.0.0.1", port)])


def test_a_drill_with_live_credentials_reaches_only_the_sandbox(sandbox):
    settings = {**LIVE, "SANDBOX_URL": sandbox.url}
    started = datetime.now(UTC)
    with only_sandbox(sandbox) as guard:
        channels = build_channels(settings, drill=True, website_store=MemoryPosts())
        assert set(channels.channels) == {"x", "facebook", "sms", "website"}
        assert all(channels.get(name).sandbox for name in ("x", "facebook", "sms"))

        for name in ("x", "facebook"):
            channel = channels.get(name)
            sent = Outbound(key=f"{name}-1", text=f"OEFENING: brand in Dalfsen ({name}).",
                            attempted_at=started)
            receipt = channel.publish(sent)
            assert channel.find(sent).provider_id == receipt.provider_id
            status = channel.check()
            assert status.ok, status.detail
            if channel.can_edit:
                channel.edit(receipt, Outbound(key=f"{name}-1", text="OEFENING: de brand is uit."))
            channel.retract(receipt)
            assert channel.find(sent) is None

        sms = channels.get("sms")
        text = Outbound(key="sms-1", text="OEFENING: brand in Dalfsen.", to=RESIDENT, attempted_at=started)
        receipt = sms.publish(text)
        assert sms.find(text).provider_id == receipt.provider_id
        assert sms.check().ok
        with pytest.raises(PermanentChannelError) as refused:
            sms.retract(receipt)  # an SMS cannot be recalled: refused without a provider call
        assert refused.value.code == "retract_unsupported"

        website = channels.get("website")
        post = Outbound(key="web-1", text="OEFENING: brand.", meta={"incident_slug": "oefening"})
        receipt = website.publish(post)
        assert website.find(post).provider_id == receipt.provider_id
        website.retract(receipt)

    port = int(sandbox.url.rsplit(":", 1)[1])
    assert guard.violations == []
    assert guard.destinations == {("127.0.0.1", port)}
    connects = [a for a in guard.attempts if a.call == "connect"]
    assert connects and {(a.host, a.port) for a in connects} == {("127.0.0.1", port)}

    # The sandbox got every call, and never one of the live credentials.
    paths = [entry["path"] for entry in sandbox.received]
    for prefix in ("/x/", "/graph/", "/twilio/"):
        assert any(path.startswith(prefix) for path in paths), prefix
    for entry in sandbox.received:
        seen = " ".join(entry.values())
        leaked = [secret for secret in SECRETS if secret in seen]
        assert not leaked, (entry["path"], leaked)


def test_drill_channels_carry_the_sandbox_credentials_not_the_live_ones(sandbox):
    channels = build_channels({**LIVE, "SANDBOX_URL": sandbox.url}, drill=True, website_store=MemoryPosts())
    x, facebook, sms = channels.get("x"), channels.get("facebook"), channels.get("sms")
    assert sms.account_sid == TWILIO_SANDBOX["TWILIO_ACCOUNT_SID"] != LIVE["TWILIO_ACCOUNT_SID"]
    assert (sms.client.username, sms.client.password) == (
        TWILIO_SANDBOX["TWILIO_ACCOUNT_SID"], TWILIO_SANDBOX["TWILIO_AUTH_TOKEN"])
    assert sms.messaging_service_sid == TWILIO_SANDBOX["TWILIO_MESSAGING_SERVICE_SID"]
    assert x.client.consumer_key == X_SANDBOX["X_API_KEY"]
    assert x.client.access_token == X_SANDBOX["X_ACCESS_TOKEN"]
    assert x.client.bearer_token == X_SANDBOX["X_BEARER_TOKEN"]
    assert x.username == X_SANDBOX["X_USERNAME"]
    assert facebook.page_id == FACEBOOK_SANDBOX["FACEBOOK_PAGE_ID"]
    assert facebook.graph.access_token == FACEBOOK_SANDBOX["FACEBOOK_PAGE_TOKEN"]
    # Nothing of the live configuration survives anywhere in the channels' state.
    state = repr([vars(x), vars(x.client), vars(facebook), vars(facebook.graph),
                  dict(facebook.graph.session.params or {}), vars(sms), vars(sms.client)])
    assert not [secret for secret in SECRETS if secret in state]
    assert sandbox_settings()["TWILIO_ACCOUNT_SID"] == sms.account_sid


@pytest.mark.parametrize("name", ["x", "facebook", "sms"])
def test_the_guard_bites_when_live_channels_try_the_real_provider(sandbox, name):
    channels = build_channels(LIVE, drill=False, website_store=MemoryPosts())  # no SANDBOX_URL
    channel = channels.get(name)
    assert not channel.sandbox
    with only_sandbox(sandbox) as guard, pytest.raises(NetworkGuardViolation):
        channel.publish(Outbound(key="live-1", text="Brand in Dalfsen.", to=RESIDENT))
    assert guard.violations, "the SDK never tried to connect"
    assert {(a.host, a.port) for a in guard.violations} == {(PROVIDER_HOSTS[name], 443)}
    assert guard.violations[0].call == "getaddrinfo"  # stopped at the DNS look-up, before a connect
    assert sandbox.received == []


def test_a_drill_without_a_sandbox_is_refused_before_any_connection(sandbox):
    with only_sandbox(sandbox) as guard, pytest.raises(DrillWithoutSandbox):
        build_channels(LIVE, drill=True, website_store=MemoryPosts())
    with only_sandbox(sandbox) as guard_empty_url, pytest.raises(DrillWithoutSandbox):
        build_channels({**LIVE, "SANDBOX_URL": ""}, drill=True, website_store=MemoryPosts())
    assert guard.attempts == [] and guard_empty_url.attempts == []


def test_the_guard_covers_every_way_out_and_every_thread(sandbox):
    port = int(sandbox.url.rsplit(":", 1)[1])
    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    other_port = other.getsockname()[1]
    other.close()
    from_thread: list[BaseException] = []

    def in_a_thread():
        try:
            socket.getaddrinfo("api.twitter.com", 443)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            from_thread.append(exc)

    with only_sandbox(sandbox) as guard:
        assert requests.get(f"{sandbox.url}/_sandbox/x/tweets", timeout=5).json() == []
        with pytest.raises(NetworkGuardViolation):
            socket.create_connection(("example.org", 80), timeout=1)
        with pytest.raises(NetworkGuardViolation):
            socket.gethostbyname("graph.facebook.com")
        with pytest.raises(NetworkGuardViolation):
            socket.gethostbyname_ex("api.twilio.com")
        for method in ("connect", "connect_ex"):
            with socket.socket() as raw, pytest.raises(NetworkGuardViolation):
                getattr(raw, method)(("127.0.0.1", other_port))  # loopback, but not the sandbox
        with socket.socket(socket.AF_INET6) as raw, pytest.raises(NetworkGuardViolation):
            raw.connect(("::1", port))
        worker = threading.Thread(target=in_a_thread)
        worker.start()
        worker.join()
    assert from_thread and isinstance(from_thread[0], NetworkGuardViolation)
    refused = {(a.call, a.host, a.port) for a in guard.violations}
    assert {
        ("create_connection", "example.org", 80),
        ("gethostbyname", "graph.facebook.com", None),
        ("gethostbyname_ex", "api.twilio.com", None),
        ("connect", "127.0.0.1", other_port),
        ("connect_ex", "127.0.0.1", other_port),
        ("connect", "::1", port),
        ("getaddrinfo", "api.twitter.com", 443),
    } <= refused
    assert ("connect", "127.0.0.1", port) in {(a.call, a.host, a.port) for a in guard.attempts}
    # Leaving the guard puts the socket module back as it was.
    assert "connect" not in socket.socket.__dict__
    assert socket.getaddrinfo.__module__ == "socket"
