"""`sms.progress`: about twice a second per message, however many processes send its SMS."""

from __future__ import annotations

import secrets
import time

import pytest

from crisis.tasks import sms


@pytest.fixture
def events(app, monkeypatch):
    sent: list[dict] = []
    monkeypatch.setattr(sms, "sms_counts", lambda message_id: {"queued": 1})
    monkeypatch.setattr(sms.live, "emit", lambda event, payload, **kw: sent.append(payload))
    monkeypatch.setattr(sms, "_last_progress", {})
    return sent


def another_process(monkeypatch) -> None:
    """A second process of the bulk worker: it has its own memory of when it last emitted."""
    monkeypatch.setattr(sms, "_last_progress", {})


def test_without_redis_each_process_emits_twice_a_second_at_most(app, events, monkeypatch):
    with app.app_context():
        sms.emit_progress(7)
        sms.emit_progress(7)  # the same process, within half a second
        another_process(monkeypatch)
        sms.emit_progress(7)
    assert len(events) == 2


@pytest.mark.redis
def test_with_redis_one_process_emits_for_all(app, events, monkeypatch, redis_url):
    monkeypatch.setitem(app.config, "REDIS_URL", redis_url)
    monkeypatch.delitem(app.extensions, "crisis_shared_redis", raising=False)
    message_id = secrets.randbelow(10**9) + 10**6  # its own key in a shared Redis
    with app.app_context():
        sms.emit_progress(message_id)
        another_process(monkeypatch)
        sms.emit_progress(message_id)  # within the same half second: the first one counted
        assert len(events) == 1
        time.sleep(sms.PROGRESS_SECONDS + 0.1)
        another_process(monkeypatch)
        sms.emit_progress(message_id)
        sms.emit_progress(message_id, force=True)  # the end of a fan-out is always shown
    assert len(events) == 3
    assert all(event["message_id"] == message_id for event in events)
