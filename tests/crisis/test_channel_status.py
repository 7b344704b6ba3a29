"""The channel status page: connection mode, credential checks, rate-limit budget, last outcomes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from channels.base import ChannelStatus
from channels.facebook import FacebookChannel
from channels.sms import SmsChannel
from channels.x import XChannel
from crisis.console import channels as service
from crisis.extensions import db
from crisis.models import Delivery, DeliveryState, Message
from tests.channels.conftest import RunningSandbox
from tests.channels.test_website import MemoryPosts
from tests.conftest import csrf_token

SOCIAL = ("x", "facebook", "sms")
CREDENTIAL_KEYS = [key for keys in service.REQUIRED.values() for key in keys]


@pytest.fixture(scope="module")
def sandbox():
    with RunningSandbox() as running:
        yield running


@pytest.fixture(scope="module")
def strict_sandbox():
    """A sandbox that accepts other credentials than the sandbox defaults the factory hands out."""
    with RunningSandbox({
        "X_API_KEY": "another-x-api-key",
        "FACEBOOK_PAGE_TOKEN": "another-page-token",
        "TWILIO_AUTH_TOKEN": "another-twilio-auth-token",
    }) as running:
        yield running


@pytest.fixture
def configure(app, monkeypatch):
    """Point the app at a sandbox (or none) with no live credentials; forget recorded checks."""

    def apply(sandbox_url: str | None) -> None:
        monkeypatch.setitem(app.config, "SANDBOX_URL", sandbox_url)
        for key in CREDENTIAL_KEYS:
            monkeypatch.delitem(app.config, key, raising=False)
        monkeypatch.delitem(app.extensions, "crisis_channel_checks", raising=False)

    return apply


def rows(html: str, table: str) -> dict[str, dict[str, str]]:
    """{channel: {"mode", "check"}} from one of the page's two tables ("live" or "drill")."""
    section = html.split('id="drill-channels"')[0 if table == "live" else 1]
    found = re.findall(r'data-channel="(\w+)" data-mode="(\w+)" data-check="(\w+)"', section)
    return {name: {"mode": mode, "check": check} for name, mode, check in found}


def test_with_a_sandbox_every_channel_is_sandbox_bound_and_its_check_passes(logged_in, configure, sandbox):
    configure(sandbox.url)
    client, _ = logged_in("viewer")
    response = client.get("/console/channels")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for table in ("live", "drill"):
        found = rows(html, table)
        assert list(found) == ["x", "facebook", "sms", "website"]
        for name in SOCIAL:
            assert found[name] == {"mode": "sandbox", "check": "ok"}, (table, name)
        assert found["website"] == {"mode": "live", "check": "none"}
    drill_notice = re.search(r'id="drill-sandbox">([^<]*)<', html).group(1)
    assert sandbox.url in drill_notice
    assert f"{sandbox.url}/graph" in html
    assert "@crisis_nl" in html  # X's check names the account it reached
    assert "calls left" in html or "aanroepen over" in html  # X's rate-limit window is shown


def test_the_page_reuses_recent_checks_and_check_now_runs_them_again(app, logged_in, configure, sandbox):
    configure(sandbox.url)
    client, _ = logged_in("viewer")
    client.get("/console/channels")
    board = app.extensions["crisis_channel_checks"]
    key = service.fingerprint(app.config)
    first = board.get("live", "x", key)
    assert first is not None and first.ok
    client.get("/console/channels")
    assert board.get("live", "x", key) is first  # no new provider call on a reload

    assert client.post("/console/channels/check").status_code == 400  # no CSRF token
    token = csrf_token(client, "/console/channels")
    response = client.post("/console/channels/check", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith("/console/channels")
    again = board.get("live", "x", key)
    assert again is not first and again.checked_at >= first.checked_at


def test_without_sandbox_or_credentials_the_social_channels_are_not_configured(logged_in, configure):
    configure(None)
    client, _ = logged_in("viewer")
    html = client.get("/console/channels").get_data(as_text=True)
    found = rows(html, "live")
    for name in SOCIAL:
        assert found[name] == {"mode": "not_configured", "check": "none"}
    assert found["website"]["mode"] == "live"
    assert "X_API_KEY" in html and "FACEBOOK_PAGE_TOKEN" in html and "TWILIO_ACCOUNT_SID" in html
    # Drills refuse to run without a sandbox; the page says so instead of listing drill channels.
    assert rows(html, "drill") == {}
    assert "CRISIS_SANDBOX_URL" in html


def test_wrong_credentials_fail_the_check_with_the_providers_code(app, strict_sandbox):
    """Settings point at a sandbox that does not accept the keys the channels carry."""
    settings = {"SANDBOX_URL": strict_sandbox.url, "PUBLIC_URL": "https://crisis.example.nl"}
    with app.app_context():
        report = service.channel_report(settings, website_store=MemoryPosts(), history=False)
    live = {row.name: row for row in report.live}
    expected = {"x": "(401)", "facebook": "(190)", "sms": "code 20003"}
    for name, code in expected.items():
        assert live[name].mode == "sandbox"
        assert live[name].check is not None and not live[name].check.ok, name
        assert code in live[name].check.detail, (name, live[name].check.detail)


def test_wrong_live_keys_fail_the_check_with_the_providers_code(sandbox):
    """The same with channels carrying wrong keys of their own, sent to the sandbox."""
    bad = {
        "X_API_KEY": "wrong", "X_API_SECRET": "wrong", "X_ACCESS_TOKEN": "42-wrong",
        "X_ACCESS_SECRET": "wrong", "X_BEARER_TOKEN": "wrong", "X_USERNAME": "crisis_nl",
        "FACEBOOK_PAGE_ID": "1234567890", "FACEBOOK_PAGE_TOKEN": "wrong",
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "wrong", "TWILIO_FROM": "+3197010000000",
    }
    channels = {
        "x": XChannel.from_settings(bad, sandbox.url, timeout=3),
        "facebook": FacebookChannel.from_settings(bad, sandbox.url, timeout=3),
        "sms": SmsChannel.from_settings(bad, sandbox.url, timeout=3),
    }
    results = service.check_channels(channels)
    assert not any(result.ok for result in results.values())
    assert "(401)" in results["x"].detail
    assert "(190)" in results["facebook"].detail
    assert "code 20003" in results["sms"].detail


def test_a_check_that_hangs_or_raises_fails_without_holding_the_page():
    class Hangs:
        name = "x"

        def check(self):
            import time

            time.sleep(2)
            return ChannelStatus(ok=True)

    class Raises:
        name = "sms"

        def check(self):
            raise RuntimeError("bug")

    results = service.check_channels({"x": Hangs(), "sms": Raises()}, timeout=0.2)
    assert not results["x"].ok and "no answer" in results["x"].detail
    assert not results["sms"].ok and "RuntimeError" in results["sms"].detail


def test_facebook_usage_becomes_the_remaining_budget():
    status = ChannelStatus(
        ok=True,
        detail='page Crisis (1); usage {"x-app-usage": {"call_count": 12, "total_time": 30, '
        '"total_cputime": 4}, "x-business-use-case-usage": {"1": [{"type": "pages", '
        '"call_count": 95, "total_time": 1, "total_cputime": 1}]}}',
    )
    result = service.CheckResult.from_status(status, datetime.now(UTC), 0.1)
    assert result.detail == "page Crisis (1)"
    assert [(b.scope, b.remaining_percent) for b in result.budget] == [("app", 70), ("pages", 5)]


def test_last_success_and_last_error_come_from_the_deliveries_table(app, logged_in, configure):
    from crisis.incidents import service as incidents

    configure(None)
    client, user = logged_in("viewer")
    now = datetime.now(UTC).replace(microsecond=0)
    with app.app_context():
        live = incidents.create_incident(title="Brand Nieuwleusen", mode="live", actor_id=None)
        drill = incidents.create_incident(title="Oefening Dalfsen", mode="drill", actor_id=None)
        older = Message(incident=live, author_id=user.id, channels=["x", "facebook"])
        newer = Message(incident=live, author_id=user.id, channels=["x", "facebook"])
        practice = Message(incident=drill, author_id=user.id, channels=["sms"])
        db.session.add_all([older, newer, practice])
        db.session.flush()
        db.session.add_all([
            Delivery(message_id=older.id, channel="x", state=DeliveryState.accepted,
                     accepted_at=now - timedelta(hours=2)),
            Delivery(message_id=newer.id, channel="x", state=DeliveryState.accepted,
                     accepted_at=now - timedelta(minutes=5)),
            Delivery(message_id=older.id, channel="facebook", state=DeliveryState.failed,
                     last_error="facebook publish: (#190) old token", error_code="190",
                     updated_at=now - timedelta(hours=1)),
            Delivery(message_id=newer.id, channel="facebook", state=DeliveryState.failed,
                     last_error="facebook publish: (#368) blocked", error_code="368",
                     updated_at=now - timedelta(minutes=1)),
            Delivery(message_id=practice.id, channel="sms", state=DeliveryState.accepted,
                     accepted_at=now - timedelta(minutes=3)),
        ])
        db.session.commit()
        live_outcomes = service.last_outcomes(service.IncidentMode.live)
        drill_outcomes = service.last_outcomes(service.IncidentMode.drill)
    assert live_outcomes["x"][0] == now - timedelta(minutes=5)
    assert live_outcomes["x"][1] is None
    assert live_outcomes["facebook"][0] is None
    assert live_outcomes["facebook"][1].code == "368" and "blocked" in live_outcomes["facebook"][1].error
    assert live_outcomes["sms"] == (None, None)  # the drill's SMS is not a live success
    assert drill_outcomes["sms"][0] == now - timedelta(minutes=3)

    html = client.get("/console/channels").get_data(as_text=True)
    facebook_row = re.search(r'data-channel="facebook".*?</tr>', html, re.S).group(0)
    assert "(#368) blocked" in facebook_row and "(368)" in facebook_row
    assert "old token" not in html


def test_a_viewer_may_see_the_page_and_anonymous_is_sent_to_log_in(app, logged_in, configure):
    configure(None)
    anonymous = app.test_client()
    response = anonymous.get("/console/channels")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    token = csrf_token(anonymous, "/login")
    response = anonymous.post("/console/channels/check", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    client, _ = logged_in("viewer")
    assert client.get("/console/channels").status_code == 200
    assert 'href="/console/channels"' in client.get("/console/").get_data(as_text=True)  # the nav
