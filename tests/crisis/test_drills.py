"""Runbook incidents and drills in the console: checklist, injects, templates, stop, report."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from crisis.extensions import db
from crisis.messages import service as messages
from crisis.models import (
    Area,
    ChecklistItem,
    DrillInject,
    Incident,
    InjectState,
    Subscriber,
    SubscriberStatus,
    User,
)
from crisis.seed import seed_areas
from tests.conftest import csrf_token


def _start(client, app, mode="drill"):
    token = csrf_token(client, "/console/runbooks")
    response = client.post("/console/runbooks/grote-brand-rook/start",
                           data={"mode": mode, "csrf_token": token, "title": "Brand Veldhoeveweg"})
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        return db.session.scalar(sa.select(Incident.id).order_by(Incident.id.desc()))


@pytest.fixture
def drill(app, logged_in):
    """An editor's client, the editor, and a drill started from the fire runbook."""
    client, user = logged_in("editor")
    with app.app_context():
        seed_areas()
        db.session.commit()
    return client, user, _start(client, app)


def test_start_a_drill_from_a_runbook(app, logged_in):
    client, _ = logged_in("editor")
    with app.app_context():
        seed_areas()
        areas = {a.code: a.id for a in db.session.scalars(sa.select(Area))}
        for i in range(4):
            db.session.add(Subscriber(phone=f"+3161234{i:04d}", area_ids=[areas["dalfsen"]],
                                      status=SubscriberStatus.active))
        db.session.commit()
    incident_id = _start(client, app)
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        assert incident.is_drill and incident.runbook_id == "grote-brand-rook"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ChecklistItem).where(
            ChecklistItem.incident_id == incident_id)) > 3
        assert db.session.scalar(sa.select(sa.func.count()).select_from(DrillInject).where(
            DrillInject.incident_id == incident_id)) >= 3
        synthetic = list(db.session.scalars(sa.select(Subscriber).where(Subscriber.synthetic)))
        assert len(synthetic) == 4 and all(s.phone.startswith("+3197099") for s in synthetic)
    page = client.get(f"/console/incidents/{incident_id}").get_data(as_text=True)
    assert "drill-panel" in page and 'class="drill"' in page
    templates = client.get(f"/console/incidents/{incident_id}/templates.json").get_json()
    assert templates["templates"] and all("body" in t for t in templates["templates"])


def test_unfilled_placeholders_are_refused(app, drill):
    _, user, incident_id = drill
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        author = db.session.get(User, user.id)
        message = messages.create_draft(incident, author, {
            "body": "Grote brand aan de {straat} in {kern}.", "channels": ["website"]})
        try:
            messages.submit(message, author)
        except messages.WorkflowError as exc:
            assert "{kern}" in str(exc) and "{straat}" in str(exc)
        else:
            raise AssertionError("a message with placeholders was submitted")


def test_checklist_pause_inject_stop_and_report(app, drill):
    client, _, incident_id = drill
    token = csrf_token(client, f"/console/incidents/{incident_id}")
    checklist = client.get(f"/console/incidents/{incident_id}/checklist.json").get_json()
    first = checklist["items"][0]
    assert client.post(f"/console/checklist/{first['id']}",
                       data={"done": "1", "csrf_token": token}).status_code == 302
    done = client.get(f"/console/incidents/{incident_id}/checklist.json").get_json()["items"][0]
    assert done["done_at"] is not None
    assert client.post(f"/console/incidents/{incident_id}/drill/pause",
                       data={"paused": "1", "csrf_token": token}).status_code == 302
    with app.app_context():
        states = set(db.session.scalars(sa.select(DrillInject.state).where(
            DrillInject.incident_id == incident_id)))
        assert states == {InjectState.paused}
    assert client.post(f"/console/incidents/{incident_id}/drill/inject", data={
        "channel": "sms", "text": "Is het water veilig?", "count": "3", "minutes": "0",
        "csrf_token": token}).status_code == 302
    assert client.post(f"/console/incidents/{incident_id}/drill/stop",
                       data={"csrf_token": token}).status_code == 302
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        assert incident.ended_at is not None and incident.ended_reason == "real incident"
        left = set(db.session.scalars(sa.select(DrillInject.state).where(
            DrillInject.incident_id == incident_id)))
        assert left == {InjectState.cancelled}
    page = client.get(f"/console/incidents/{incident_id}/report")
    assert page.status_code == 200 and b'data-figure="checklist_on_time"' in page.data
    pdf = client.get(f"/console/incidents/{incident_id}/report.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


def test_an_inject_that_fails_to_play_goes_back_to_pending(app, drill, monkeypatch):
    """Whatever fails while playing (here the database), the inject is tried again later."""
    from crisis.tasks import drills

    _, _, incident_id = drill
    with app.app_context():
        inject = db.session.scalars(sa.select(DrillInject).where(
            DrillInject.incident_id == incident_id)).first()

        def broken(*args):
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))

        monkeypatch.setattr(drills, "_send", broken)
        assert drills.play(inject) == 0
        db.session.expire_all()
        assert db.session.get(DrillInject, inject.id).state is InjectState.pending


def test_an_inject_left_playing_by_a_dead_worker_is_played_again(app, drill, monkeypatch):
    """A worker killed mid-play leaves its inject `playing`: once the lease is over, the sweep
    plays it again; an inject another worker is playing right now is left to that worker."""
    from datetime import timedelta

    from crisis.models.types import utcnow
    from crisis.tasks import drills

    _, _, incident_id = drill
    with app.app_context():
        abandoned, busy = db.session.scalars(sa.select(DrillInject).where(
            DrillInject.incident_id == incident_id).order_by(DrillInject.id).limit(2)).all()
        now = utcnow()
        abandoned.state, abandoned.claimed_at = InjectState.playing, now - 2 * drills.PLAY_LEASE
        busy.state, busy.claimed_at = InjectState.playing, now - timedelta(seconds=5)
        for inject in (abandoned, busy):
            inject.due_at = now - timedelta(minutes=1)
        db.session.commit()
        sent = []
        monkeypatch.setattr(drills, "_send", lambda incident, inject, reaction: sent.append(inject.id))
        drills.play_due_injects()
        db.session.expire_all()
        assert db.session.get(DrillInject, abandoned.id).state is InjectState.played
        assert db.session.get(DrillInject, busy.id).state is InjectState.playing
        assert abandoned.id in sent and busy.id not in sent


def test_beat_plays_injects_as_a_task_of_their_own(app):
    """Not inside the sweep, where a slow sandbox would hold up scheduled messages and retries."""
    from crisis.tasks import sweeps

    celery = app.extensions["celery"]
    entry = celery.conf.beat_schedule["drill-injects"]
    assert entry["task"] in celery.tasks
    assert entry["schedule"].total_seconds() == float(app.config["SWEEP_SECONDS"])
    with app.app_context():
        assert "injects" not in sweeps.sweep()
