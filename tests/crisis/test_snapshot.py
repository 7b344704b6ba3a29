"""The static snapshot: every public page as a file, swapped in atomically, drills never, written
after a publish or withdrawal commits (debounced), and byte for byte what the app serves."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from crisis.extensions import db
from crisis.models import Message
from crisis.public import data, snapshot
from tests.conftest import patch_task
from tests.crisis.test_public_pages import fresh_pages, make_area, make_incident, publish


@pytest.fixture
def fresh(app, monkeypatch):
    yield from fresh_pages(app, monkeypatch)


@pytest.fixture
def target(fresh, tmp_path, monkeypatch):
    path = tmp_path / "www" / "public-snapshot"
    monkeypatch.setitem(fresh.config, "PUBLIC_SNAPSHOT_DIR", str(path))
    return path


@pytest.fixture
def content(fresh):
    with fresh.app_context():
        live = make_incident("Brand Industrieweg", areas=[make_area()])
        alert = publish(live, "Grote brand. Veel rook.", kind="alert", headline="Grote brand",
                        instruction="Ga naar binnen.")
        update = publish(live, "De rook trekt weg.", headline="Rook trekt weg")
        drill = make_incident("Oefening hoogwater", mode="drill")
        drill_post = publish(drill, "OEFENING: de Vecht stijgt.", kind="alert", headline="Oefening")
        return {"slug": live.slug, "alert": alert.id, "update": update.id,
                "drill_slug": drill.slug, "drill": drill_post.id}


def test_snapshot_has_every_public_page(fresh, client, target, content):
    assert snapshot.write(fresh) == target
    slug = content["slug"]
    expected = {
        "index.html": "/",
        "status.json": "/status.json",
        "feed.atom": "/feed.atom",
        "cap.atom": "/cap.atom",
        f"incidents/{slug}/index.html": f"/incidents/{slug}",
        f"incidents/{slug}/updates/{content['alert']}/index.html":
            f"/incidents/{slug}/updates/{content['alert']}",
        f"incidents/{slug}/updates/{content['update']}/index.html":
            f"/incidents/{slug}/updates/{content['update']}",
        f"cap/{content['alert']}.xml": f"/cap/{content['alert']}.xml",
    }
    for name, path in expected.items():
        assert (target / name).read_bytes() == client.get(path).data, name
    for name in ("static/css/public.css", "static/js/public.js", "embed.js"):
        assert (target / name).stat().st_size > 0
    status = json.loads((target / "status.json").read_text())
    assert status["incidents"][0]["latest"]["id"] == content["update"]


def test_snapshot_never_holds_a_drill(fresh, target, content):
    snapshot.write(fresh)
    assert not (target / "incidents" / content["drill_slug"]).exists()
    assert not (target / "cap" / f"{content['drill']}.xml").exists()
    for path in target.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".json", ".atom", ".xml"):
            text = path.read_text()
            assert "Oefening" not in text and "OEFENING" not in text, path


def test_snapshot_is_swapped_in_atomically(fresh, target, content):
    snapshot.write(fresh)
    assert target.is_symlink()
    first = target.resolve()
    assert snapshot.write(fresh) is None  # nothing changed: nothing written
    assert target.resolve() == first
    with fresh.app_context():
        incident_id = db.session.get(Message, content["alert"]).incident_id
        from crisis.models import Incident

        publish(db.session.get(Incident, incident_id), "De brand is uit.", headline="Brand uit")
    snapshot.write(fresh)
    second = target.resolve()
    assert second != first and "Brand uit" in (target / "index.html").read_text()
    assert first.exists()  # the previous copy stays for readers in flight
    with fresh.app_context():
        from crisis.public.store import DatabasePostStore

        DatabasePostStore().withdraw(str(content["update"]))
        db.session.commit()
    snapshot.write(fresh)
    assert not first.exists()  # older ones are removed
    # Only the live folder and its predecessor remain beside the link; no temporary leftovers.
    siblings = sorted(p.name for p in target.parent.iterdir() if not p.name.endswith(".lock"))
    assert len(siblings) == 3 and target.name in siblings
    withdrawn = target / "incidents" / content["slug"] / "updates" / str(content["update"]) / "index.html"
    assert "De rook trekt weg." not in withdrawn.read_text()


def test_snapshot_reads_the_database_now_and_keeps_what_is_still_right(fresh, client, target,
                                                                       content, monkeypatch):
    """A change committed elsewhere is in the snapshot at once; the pages it did not change stay cached."""
    from crisis.models import Incident

    monkeypatch.setitem(fresh.config, "PUBLIC_CHECK_SECONDS", 3600)
    client.set_cookie(fresh.config["SESSION_COOKIE_NAME"], "not-a-session")  # past the fast path
    assert "Brand Industrieweg" in client.get("/").get_data(as_text=True)
    with fresh.app_context(), db.engine.begin() as conn:  # as another process would: no event here
        conn.execute(sa.update(Incident).where(Incident.slug == content["slug"])
                     .values(title="Grote brand Industrieweg"))
    snapshot.write(fresh)
    assert "Grote brand Industrieweg" in (target / "index.html").read_text()

    loads = []
    load_incidents = data.load_incidents
    monkeypatch.setattr(data, "load_incidents", lambda **kw: loads.append(kw) or load_incidents(**kw))
    snapshot.write(fresh, force=True)  # nothing changed since the last one
    assert len(loads) == 1  # the snapshot's list of pages; every page came from the cache


def test_a_real_directory_in_the_way_is_replaced(fresh, target, content):
    target.mkdir(parents=True)
    (target / "old.html").write_text("old")
    snapshot.write(fresh)
    assert target.is_symlink() and not (target / "old.html").exists()


def test_publish_and_withdraw_schedule_a_snapshot_after_commit(fresh, target, monkeypatch):
    from crisis.public.store import DatabasePostStore
    from crisis.tasks import snapshot as task

    sent = []
    patch_task(monkeypatch, fresh, task.write_snapshot, lambda args=(), **options: sent.append(options))
    monkeypatch.setitem(fresh.config, "SNAPSHOT_DEBOUNCE_SECONDS", 1.5)
    with fresh.app_context():
        incident = make_incident("Gaslek Kerkstraat")
        sent.clear()
        message = publish(incident, "Gaslek. Ga weg uit de Kerkstraat.")
        assert sent == [{"countdown": 1.5}]  # once per transaction, with the debounce delay
        DatabasePostStore().withdraw(str(message.id))
        assert len(sent) == 1  # not before the commit
        db.session.commit()
        assert len(sent) == 2
        DatabasePostStore().withdraw(str(message.id))
        db.session.rollback()
        assert len(sent) == 2  # a rolled-back change schedules nothing


def test_the_task_writes_the_snapshot(fresh, target, content):
    from crisis.tasks.snapshot import write_snapshot

    with fresh.app_context():
        write_snapshot.run()
    assert (target / "index.html").exists()


@pytest.mark.slow
def test_the_real_flow_writes_the_snapshot(running, make_user, app, tmp_path, monkeypatch):
    """Approve a message through the API; the worker publishes it and the snapshot follows."""
    from tests.crisis.test_broadcast import _api

    path = tmp_path / "flow-snapshot"
    monkeypatch.setitem(app.config, "PUBLIC_SNAPSHOT_DIR", str(path))
    monkeypatch.setitem(app.config, "SNAPSHOT_DEBOUNCE_SECONDS", 0.2)
    editor = _api(running.server.url, make_user("editor"))
    approver = _api(running.server.url, make_user("approver"))
    incident = editor.post("/api/v1/incidents", json={"title": "Brand Snapshotstraat",
                                                      "mode": "live"}).json()
    draft = editor.post(f"/api/v1/incidents/{incident['id']}/messages", json={
        "body": "Brand aan de Snapshotstraat. Houd ramen dicht.", "channels": ["website"]}).json()
    submitted = editor.post(f"/api/v1/messages/{draft['id']}/submit").json()
    approved = approver.post(f"/api/v1/messages/{submitted['id']}/approve", json={
        "approval_hash": submitted["approval_hash"], "confirmation": incident["title"]})
    assert approved.status_code == 200, approved.text

    def written():
        page = path / "incidents" / incident["slug"] / "updates" / str(draft["id"]) / "index.html"
        return page.exists() and "Snapshotstraat" in page.read_text()

    running.wait_for(written, timeout=30)
    with app.app_context():
        state = db.session.scalar(sa.select(Message.state).where(Message.id == draft["id"]))
    assert state.value == "sent"
