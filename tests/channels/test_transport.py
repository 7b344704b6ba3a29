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
