"""`X-Twilio-Signature`: the published vectors, and the sandbox's own webhooks end to end."""

from __future__ import annotations

import json

import pytest
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from channels.sandbox.twilio import DEFAULTS
from channels.sms import SmsChannel, parse_inbound, public_url, validate_signature
from tests.channels.conftest import RunningSandbox
from tests.channels.test_sms import RESIDENT, Receiver, inject, sms, status_of
from tests.conformance import conformance_file

TOKEN = DEFAULTS["TWILIO_AUTH_TOKEN"]
PUBLIC = "https://crisis.example.nl"


def vectors() -> dict:
    return json.loads(conformance_file("webhook-signatures/twilio.json").read_text())


def case_params(data: dict, case: dict):
    if "params_multi" in case:
        return MultiDict(case["params_multi"])
    return data["params"] if case.get("params") == "default" else case.get("params", {})


# --- conformance vectors ----------------------------------------------------------------------


def test_conformance_compute() -> None:
    data = vectors()
    cases = [case for case in data["cases"] if case["kind"] == "compute"]
    assert cases
    validator = RequestValidator(data["auth_token"])
    for case in cases:
        params = case_params(data, case)
        assert validator.compute_signature(case["url"], params) == case["signature"], case
        assert validate_signature(case["url"], params, case["signature"], data["auth_token"])


def test_conformance_validate_with_port_handling() -> None:
    data = vectors()
    cases = [case for case in data["cases"] if case["kind"] == "validate"]
    assert cases
    for case in cases:
        params = case_params(data, case)
        valid = validate_signature(case["url"], params, case["signature"], data["auth_token"])
        assert valid is case["valid"], case


def test_conformance_body_sha256() -> None:
    data = vectors()
    cases = [case for case in data["cases"] if case["kind"] == "validate_body"]
    assert cases
    for case in cases:
        assert validate_signature(case["url"], case["body"], case["signature"], data["auth_token"])
        changed = case["body"].replace("value", "other")
        assert not validate_signature(case["url"], changed, case["signature"], data["auth_token"])


def test_conformance_negative_variants() -> None:
    data = vectors()
    case = next(case for case in data["cases"] if case["kind"] == "compute")
    params = dict(data["params"])
    url, signature, token = case["url"], case["signature"], data["auth_token"]
    assert not validate_signature(url, params, signature, "54321")
    assert not validate_signature(url.replace("foo=1", "foo=2"), params, signature, token)
    assert not validate_signature(url, {**params, "Digits": "9999"}, signature, token)
    assert not validate_signature(url, params, None, token)
    assert not validate_signature(url, params, "", token)


# --- the sandbox's webhooks, received over HTTP -----------------------------------------------


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


def assert_signed(post, url: str | None = None) -> None:
    """The post validates for `url` (default: what the receiver saw), and tampering fails."""
    url = url or post.url
    assert validate_signature(url, post.form, post.signature, TOKEN)
    assert not validate_signature(url, post.form, post.signature, "another-token")
    assert not validate_signature(url, post.form, post.signature[:-2] + "x=", TOKEN)
    changed = post.form.copy()
    changed["Body" if "Body" in changed else "MessageStatus"] = "tampered"
    assert not validate_signature(url, changed, post.signature, TOKEN)
    assert not validate_signature(url.replace("/webhooks/", "/other/"), post.form, post.signature, TOKEN)


def test_status_callbacks_are_signed(sandbox, receiver) -> None:
    channel = SmsChannel.from_settings(DEFAULTS, sandbox.url)
    callback = f"{receiver.url}/webhooks/twilio/status?recipient=42&run=a%20b"
    receipt = channel.publish(sms(status_callback=callback))
    posts = receiver.wait_for(status_of(receipt.provider_id), count=2)
    for post in posts:
        assert post.url == callback
        assert post.form["MessagingServiceSid"] == DEFAULTS["TWILIO_MESSAGING_SERVICE_SID"]
        assert_signed(post)


def test_status_callbacks_from_a_number_are_signed(sandbox, receiver) -> None:
    settings = {**DEFAULTS, "TWILIO_MESSAGING_SERVICE_SID": None}
    channel = SmsChannel.from_settings(settings, sandbox.url)
    receipt = channel.publish(sms(status_callback=f"{receiver.url}/webhooks/twilio/status"))
    for post in receiver.wait_for(status_of(receipt.provider_id), count=2):
        assert "MessagingServiceSid" not in post.form
        assert_signed(post)


def test_inbound_sms_is_signed_for_a_messaging_service_number(receiver) -> None:
    with RunningSandbox({"CONSOLE_URL": receiver.url}) as sandbox:
        inject(sandbox, "Is het water weer veilig?")
        [post] = receiver.wait_for(lambda e: e.path == "/webhooks/twilio/sms")
    assert parse_inbound(post.form).messaging_service_sid == DEFAULTS["TWILIO_MESSAGING_SERVICE_SID"]
    assert_signed(post)


def test_inbound_sms_to_another_number_is_signed(receiver) -> None:
    with RunningSandbox({"CONSOLE_URL": receiver.url}) as sandbox:
        inject(sandbox, "Hallo", to="+3197010000099")
        [post] = receiver.wait_for(lambda e: True)
    assert "MessagingServiceSid" not in post.form
    assert_signed(post)


def test_behind_a_tls_proxy_the_public_url_validates(receiver) -> None:
    """Twilio signs https://crisis.example.nl/...; the app behind the proxy sees 127.0.0.1."""
    config = {"CONSOLE_URL": PUBLIC, "TWILIO_SANDBOX_RESOLVE": {PUBLIC: receiver.url}}
    with RunningSandbox(config) as sandbox:
        inject(sandbox, "STOP", sender=RESIDENT)
        channel = SmsChannel.from_settings(DEFAULTS, sandbox.url)
        receipt = channel.publish(
            sms(to="+31687654321", status_callback=f"{PUBLIC}/webhooks/twilio/status?r=1")
        )
        inbound = receiver.wait_for(lambda e: e.path == "/webhooks/twilio/sms")
        statuses = receiver.wait_for(status_of(receipt.provider_id), count=2)
    for post in inbound + statuses:
        assert post.url.startswith(receiver.url)
        assert not validate_signature(post.url, post.form, post.signature, TOKEN)
        signed = public_url(post.url, PUBLIC)
        assert signed.startswith(f"{PUBLIC}/webhooks/twilio/")
        assert_signed(post, signed)
        # the configured base with a default port, as some proxies report it, still validates
        assert validate_signature(public_url(post.url, PUBLIC + ":443"), post.form, post.signature, TOKEN)
