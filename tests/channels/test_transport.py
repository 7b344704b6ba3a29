"""The SDKs' sessions: aimed at the sandbox or at the provider."""

from __future__ import annotations

from channels.transport import provider_session

ORIGINS = ["https://api.twilio.com"]


def test_a_session_aimed_at_the_sandbox_reads_nothing_from_the_environment():
    # requests would look up proxies, .netrc and a CA bundle on every request; the sandbox is
    # reached directly, so none of them could apply.
    assert provider_session(ORIGINS, "http://127.0.0.1:5055", "/twilio").trust_env is False


def test_a_session_aimed_at_the_provider_keeps_the_environments_proxy_settings():
    assert provider_session(ORIGINS, None, "/twilio").trust_env is True


def test_the_sandbox_is_reached_directly_whatever_proxy_the_environment_names(
        sandbox_session, monkeypatch):
    from channels.base import Outbound
    from channels.factory import sandbox_settings
    from channels.sms import SmsChannel

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    channel = SmsChannel.from_settings(sandbox_settings(), sandbox_session.url, timeout=5)
    receipt = channel.publish(Outbound(key="direct", text="Test", to="+31612345678"))
    assert receipt.provider_id.startswith("SM")
