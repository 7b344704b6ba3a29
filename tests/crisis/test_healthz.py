"""/healthz: database, broker, worker and beat, each with its own verdict; 503 when any is down."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from crisis import create_app
from crisis.extensions import db
from crisis.models import Heartbeat
from crisis.models.types import utcnow


class FakeEmbedded:
    """Stands in for crisis.embedded.Embedded: only worker_alive() is asked."""

    def __init__(self, alive: bool):
        self.alive = alive

    def worker_alive(self) -> bool:
        return self.alive


@pytest.fixture
def embedded(app, monkeypatch):
    def install(alive: bool, target=None):
        monkeypatch.setitem((target or app).extensions, "crisis_embedded", FakeEmbedded(alive))

    return install


def beat_at(app, at) -> None:
    with app.app_context():
        db.session.merge(Heartbeat(name="beat", at=at))
        db.session.commit()


def test_all_up(app, client, embedded):
    embedded(True)
    beat_at(app, utcnow() - timedelta(seconds=3))
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json
    assert body["ok"] is True
    assert set(body) == {"ok", "database", "broker", "worker", "beat"}
    expected = "postgresql" if "postgresql" in app.config["SQLALCHEMY_DATABASE_URI"] else "sqlite"
    assert body["database"] == {"ok": True, "dialect": expected}
    assert body["broker"] == {"ok": True, "transport": "memory"}
    assert body["worker"] == {"ok": True, "mode": "embedded"}
    assert body["beat"]["ok"] is True and body["beat"]["age_seconds"] in (2, 3, 4)


def test_needs_no_login_and_sets_no_session(client, embedded):
    embedded(True)
    response = client.get("/healthz")
    assert response.status_code in (200, 503)
    assert response.is_json
    assert "Set-Cookie" not in response.headers


def test_beat_never_seen(client, embedded):
    embedded(True)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json["ok"] is False
    assert response.json["beat"] == {"ok": False, "last": None}
    assert response.json["database"]["ok"] and response.json["worker"]["ok"]


def test_beat_stale(app, client, embedded):
    embedded(True)
    limit = 6 * app.config["HEARTBEAT_SECONDS"]
    beat_at(app, utcnow() - timedelta(seconds=limit + 30))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json["beat"]["ok"] is False
    assert response.json["beat"]["age_seconds"] >= limit + 30


def test_worker_dead(app, client, embedded):
    embedded(False)
    beat_at(app, utcnow())
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json["worker"] == {"ok": False, "mode": "embedded"}
    assert response.json["beat"]["ok"] is True


@pytest.fixture
def other_app(app, tmp_path, monkeypatch):
    """A second app on broken services; the session app's Celery is made the default again."""
    for name in list(os.environ):
        if name.startswith("CRISIS_"):
            monkeypatch.delenv(name)

    def make(**config):
        return create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "s", "AUDIT_KEY": "a",
                           "RATELIMIT_STORAGE_URI": "memory://", **config})

    yield make
    app.extensions["celery"].set_default()
    app.extensions["celery"].set_current()


def test_database_down(other_app, embedded):
    broken = other_app(DATABASE_URL="postgresql+psycopg://crisis@127.0.0.1:1/nothing")
    embedded(True, target=broken)
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.json
    assert body["database"] == {"ok": False, "error": "OperationalError"}
    assert body["beat"] == {"ok": False, "error": "OperationalError"}
    assert body["broker"]["ok"] is True


def test_broker_down(app, other_app, embedded):
    broken = other_app(REDIS_URL="redis://127.0.0.1:1/0",
                       DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"])
    embedded(True, target=broken)
    beat_at(app, utcnow())
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.json
    assert body["broker"]["ok"] is False and body["broker"]["error"]
    assert body["database"]["ok"] is True and body["beat"]["ok"] is True
