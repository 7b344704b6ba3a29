"""The public pages: the current situation, an incident's timeline, one update, status.json.

Only published live content appears (drills never); corrections and withdrawals are marked; the
pages are complete without JavaScript; status.json answers 304 to a matching If-None-Match.
The helpers here (`make_incident`, `publish`) are shared with the CAP, feed and snapshot tests.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from channels.base import Outbound
from crisis.extensions import db
from crisis.models import Area, Incident, IncidentStatus, Message, MessageKind, MessageState, PublicPost
from crisis.public.store import DatabasePostStore

# ---- helpers shared by the public tests --------------------------------------------------------


def make_area(code: str = "noord", name: str = "Noord", postcodes=("7711",),
              centre=(52.58, 6.28)) -> Area:
    lat, lon = centre
    ring = [[lon - 0.01, lat - 0.01], [lon + 0.01, lat - 0.01], [lon + 0.01, lat + 0.02],
            [lon - 0.01, lat + 0.01], [lon - 0.01, lat - 0.01]]
    area = Area(code=code, name=name, postcodes=list(postcodes), polygon=[ring])
    db.session.add(area)
    db.session.flush()
    return area


def make_incident(title: str = "Brand Industrieweg", mode: str = "live", areas=(), **fields) -> Incident:
    from crisis.incidents import service

    incident = service.create_incident(title=title, mode=mode, actor_id=None,
                                       area_ids=[a.id for a in areas], **fields)
    db.session.commit()
    return incident


def publish(incident: Incident, body: str, *, kind: str = "update", headline: str = "",
            instruction: str = "", translations: dict | None = None,
            supersedes: Message | None = None, area_ids: list[int] | None = None,
            at: datetime | None = None) -> Message:
    """A message that went out, published on the website through the real store."""
    message = Message(incident_id=incident.id, kind=MessageKind(kind), state=MessageState.sent,
                      language=incident.language, headline=headline, body=body,
                      instruction=instruction, translations=translations or {},
                      channels=["website"], supersedes_id=supersedes.id if supersedes else None,
                      area_ids=area_ids if area_ids is not None else [a.id for a in incident.areas],
                      sending_at=at or datetime.now(UTC))
    db.session.add(message)
    db.session.flush()
    DatabasePostStore().save(Outbound(key=f"delivery-test-{message.id}", text=body, meta={
        "message_id": message.id, "incident_slug": incident.slug,
        "translations": translations or {}, "kind": kind}))
    if at is not None:
        db.session.execute(sa.update(PublicPost).where(PublicPost.message_id == message.id)
                           .values(published_at=at))
    db.session.commit()
    return message


def reset_public_cache(app) -> None:
    """Forget every rendered page (the cache lives as long as the session-wide app)."""
    from crisis.public.cache import PublicCache

    app.extensions["crisis_public_cache"] = PublicCache()


def fresh_pages(app, monkeypatch):
    """Ask the database on every request (no grace), as a test may insert rows directly.

    A generator for a `fresh` fixture; the other public tests define theirs with it.
    """
    monkeypatch.setitem(app.config, "PUBLIC_CHECK_SECONDS", 0)
    monkeypatch.setitem(app.config, "PUBLIC_URL", "http://127.0.0.1:5000")  # others may move it
    reset_public_cache(app)
    yield app
    reset_public_cache(app)


@pytest.fixture
def fresh(app, monkeypatch):
    yield from fresh_pages(app, monkeypatch)


# ---- fixtures ---------------------------------------------------------------------------------

ALERT = "Grote brand bij een bedrijf aan de Industrieweg. Er komt veel rook vrij."
TODO = "Ga naar binnen. Houd ramen en deuren dicht. Zet de ventilatie uit."
ENGLISH = "Large fire at a business on Industrieweg. Lots of smoke."


@pytest.fixture
def situation(fresh):
    """A live incident with an alert, an update and a correction of the update; a drill beside it."""
    base = datetime(2026, 3, 1, 13, 0, tzinfo=UTC)
    with fresh.app_context():
        north = make_area()
        live = make_incident("Brand Industrieweg", areas=[north])
        alert = publish(live, ALERT, kind="alert", headline="Grote brand Industrieweg",
                        instruction=TODO, translations={"en": ENGLISH}, at=base)
        update = publish(live, "De brand is bij de Stationsweg.", headline="Brand uitgebreid",
                         at=base + timedelta(minutes=20))
        correction = publish(live, "CORRECTIE: de brand is bij de Spoorstraat.", kind="correction",
                             headline="Correctie: Spoorstraat", supersedes=update,
                             at=base + timedelta(minutes=30))
        drill = make_incident("Oefening wateroverlast", mode="drill")
        drill_post = publish(drill, "OEFENING: de Vecht stijgt.", kind="alert",
                             headline="Oefening hoogwater", at=base + timedelta(minutes=40))
        return {"slug": live.slug, "alert": alert.id, "update": update.id,
                "correction": correction.id, "drill_slug": drill.slug, "drill": drill_post.id}


# ---- tests ------------------------------------------------------------------------------------


def test_index_shows_the_latest_update_and_what_to_do(client, situation):
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<html lang="nl">' in html
    assert "Actuele situatie" in html
    assert "Brand Industrieweg" in html
    # The latest update first: the correction, not the alert.
    assert html.index("Correctie: Spoorstraat") < html.index("Alle 3 updates")
    assert f'/incidents/{situation["slug"]}/updates/{situation["correction"]}' in html
    assert "Wat moet u doen?" in html
    assert "<script" in html and "socket.io" not in html and "console.js" not in html
    assert 'id="live"' in html and 'aria-live="polite"' in html
    assert response.headers["Cache-Control"] == "public, max-age=10"
    assert "Set-Cookie" not in response.headers


def test_drills_never_appear(client, situation):
    for path in ("/", f"/incidents/{situation['slug']}", "/status.json", "/feed.atom", "/cap.atom"):
        body = client.get(path).get_data(as_text=True)
        assert "Oefening" not in body and "OEFENING" not in body, path
    assert client.get(f"/incidents/{situation['drill_slug']}").status_code == 404
    drill_update = f"/incidents/{situation['drill_slug']}/updates/{situation['drill']}"
    assert client.get(drill_update).status_code == 404


def test_incident_timeline_marks_the_corrected_update(client, situation):
    html = client.get(f"/incidents/{situation['slug']}").get_data(as_text=True)
    # Newest first: correction, update, alert.
    positions = [html.index(t) for t in ("Correctie: Spoorstraat", "Brand uitgebreid",
                                         "Grote brand Industrieweg")]
    assert positions == sorted(positions)
    corrected = html[html.index("Brand uitgebreid"):html.index("Grote brand Industrieweg")]
    assert "Gecorrigeerd" in corrected
    assert f'/incidents/{situation["slug"]}/updates/{situation["correction"]}' in corrected
    assert "Lees de correctie" in corrected
    # The alert's instruction stands apart from its text.
    assert TODO in html and ALERT in html


def test_update_page_is_the_link_every_channel_carries(client, situation):
    path = f"/incidents/{situation['slug']}/updates/{situation['update']}"
    html = client.get(path).get_data(as_text=True)
    assert "<h1>Brand uitgebreid</h1>" in html
    assert "Gecorrigeerd" in html and "Lees de correctie" in html
    assert "Er is nieuwere informatie." in html
    assert client.get(f"/incidents/{situation['slug']}/updates/999999").status_code == 404
    assert client.get(f"/incidents/other-slug/updates/{situation['update']}").status_code == 404


def test_withdrawn_update_is_marked_and_its_text_gone(client, situation, fresh):
    with fresh.app_context():
        DatabasePostStore().withdraw(str(situation["alert"]))
        db.session.commit()
    timeline = client.get(f"/incidents/{situation['slug']}").get_data(as_text=True)
    assert "Teruggenomen" in timeline
    assert ALERT not in timeline and TODO not in timeline
    page = client.get(f"/incidents/{situation['slug']}/updates/{situation['alert']}")
    assert page.status_code == 410
    assert ALERT not in page.get_data(as_text=True)
    assert ALERT not in client.get("/status.json").get_data(as_text=True)


def test_english_with_lang_attributes(client, situation):
    html = client.get(f"/incidents/{situation['slug']}?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "All updates, newest first" in html
    assert f'<p class="text">{ENGLISH}</p>' in html
    # Untranslated texts keep their own language for screen readers.
    assert re.search(r'<p class="text" lang="nl">De brand is bij de Stationsweg.</p>', html)
    assert "Not translated; the original text:" in html
    assert f'href="/incidents/{situation["slug"]}/updates/{situation["alert"]}?lang=en"' in html
    # The switch back to Dutch.
    assert 'hreflang="nl" lang="nl">Nederlands</a>' in html


def test_a_resolved_incident_says_so(client, situation, fresh):
    with fresh.app_context():
        incident = db.session.scalar(sa.select(Incident).where(Incident.slug == situation["slug"]))
        publish(incident, "Het gevaar is voorbij. U kunt ramen en deuren weer openen.",
                kind="all_clear", headline="Brand is uit")
        incident.status, incident.resolved_at = IncidentStatus.resolved, datetime.now(UTC)
        db.session.commit()
    html = client.get("/").get_data(as_text=True)
    assert "Dit incident is voorbij." in html and "Brand is uit" in html
    status = client.get("/status.json").get_json()
    assert status["incidents"][0]["status"] == "resolved"


def test_nothing_published_means_no_crisis(client, fresh):
    with fresh.app_context():
        make_incident("Stroomstoring Ankum")  # created by the team, nothing approved or sent yet
    html = client.get("/").get_data(as_text=True)
    assert "Stroomstoring" not in html
    assert "Er is op dit moment geen crisis." in html
    assert client.get("/status.json").get_json()["incidents"] == []


def test_status_json_is_small_cacheable_and_conditional(client, situation):
    response = client.get("/status.json")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=10"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    etag = response.headers["ETag"]
    payload = response.get_json()
    assert len(response.data) < 4096
    [incident] = payload["incidents"]
    assert incident["slug"] == situation["slug"] and incident["status"] == "active"
    assert incident["latest"]["id"] == situation["correction"]
    assert incident["latest"]["url"].endswith(
        f"/incidents/{situation['slug']}/updates/{situation['correction']}")
    again = client.get("/status.json", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag
    assert again.headers["Cache-Control"] == "public, max-age=10"
    # The page carries the same version the poll compares.
    assert f'data-version="{payload["version"]}"' in client.get("/").get_data(as_text=True)


def test_a_new_post_changes_etag_and_version(client, situation, fresh):
    first = client.get("/status.json")
    with fresh.app_context():
        incident = db.session.scalar(sa.select(Incident).where(Incident.slug == situation["slug"]))
        message_id = publish(incident, "De brand is onder controle.", headline="Onder controle").id
    second = client.get("/status.json", headers={"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200
    assert second.get_json()["incidents"][0]["latest"]["id"] == message_id
    assert second.get_json()["version"] != first.get_json()["version"]


def test_a_commit_in_this_process_refreshes_at_once(client, situation, app, monkeypatch):
    """With a grace between database checks, a publish in this process still shows immediately."""
    monkeypatch.setitem(app.config, "PUBLIC_CHECK_SECONDS", 60.0)
    client.get("/")  # cached, and the marker checked
    with app.app_context():
        incident = db.session.scalar(sa.select(Incident).where(Incident.slug == situation["slug"]))
        publish(incident, "Nieuwe informatie over de rook.", headline="Rook trekt weg")
    assert "Rook trekt weg" in client.get("/").get_data(as_text=True)


def test_poll_interval_and_no_socket(client, situation, fresh, monkeypatch):
    monkeypatch.setitem(fresh.config, "PUBLIC_POLL_SECONDS", 1)
    html = client.get("/").get_data(as_text=True)
    assert 'data-poll-seconds="1"' in html
    assert "/static/js/public.js" in html
    assert "socket.io" not in html


def test_pages_do_few_queries_and_are_cached(client, situation, app):
    """The pages render once per change: later requests cost the marker check at most."""
    statements = []
    me = threading.current_thread()

    def count(conn, cursor, statement, *args):
        # Only this thread's requests: a worker and beat of an earlier test may share the engine.
        if threading.current_thread() is me:
            statements.append(statement)

    paths = ["/", f"/incidents/{situation['slug']}",
             f"/incidents/{situation['slug']}/updates/{situation['alert']}", "/status.json",
             f"/cap/{situation['alert']}.xml"]
    # A session cookie passes the fast path in front of Flask: this counts the views' own cost.
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], "not-a-session")
    for _ in range(2):
        for path in paths:
            client.get(path)
    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(5):
            for path in paths:
                assert client.get(path).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 5 * len(paths)  # one marker query per request, nothing else


def test_embed_script_is_plain_js_with_cors(client):
    response = client.get("/embed.js")
    assert response.status_code == 200
    assert response.mimetype == "application/javascript"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    source = response.get_data(as_text=True)
    assert len(response.data) < 8 * 1024
    assert "innerHTML" not in source and "insertAdjacentHTML" not in source
    assert "document.write" not in source
    assert "textContent" in source and "createElement" in source
    assert "/status.json" in source
    assert not re.search(r"https?://", source.split("*/", 1)[1])  # no third-party requests


def test_session_language_is_private(client, situation):
    from tests.conftest import csrf_token

    token = csrf_token(client, "/login")
    client.post("/language", data={"language": "en", "csrf_token": token})
    response = client.get("/")
    assert '<html lang="en">' in response.get_data(as_text=True)
    assert response.headers["Cache-Control"].startswith("private")


def test_repeat_requests_are_answered_in_front_of_flask(client, situation, app, monkeypatch):
    """The fast path replays exactly what Flask said, until something public changes."""
    first = client.get("/")
    monkeypatch.setitem(app.view_functions, "public.index", _must_not_run)
    again = client.get("/")
    assert again.data == first.data
    assert again.headers == first.headers  # security headers and all
    conditional = client.get("/", headers={"If-None-Match": first.headers["ETag"]})
    assert conditional.status_code == 304 and conditional.data == b""
    assert conditional.headers["ETag"] == first.headers["ETag"]
    assert conditional.headers["Content-Security-Policy"] == first.headers["Content-Security-Policy"]
    # English is its own entry; a request with a session cookie always goes to Flask.
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], "anything")
    with pytest.raises(AssertionError, match="the fast path"):
        client.get("/")
    client.delete_cookie(app.config["SESSION_COOKIE_NAME"])
    with app.app_context():
        incident = db.session.scalar(sa.select(Incident).where(Incident.slug == situation["slug"]))
        publish(incident, "Nieuwe informatie.", headline="Nieuw")
    with pytest.raises(AssertionError, match="the fast path"):
        client.get("/")  # changed: rendered anew


def _must_not_run(*args, **kwargs):
    raise AssertionError("this request should have been answered by the fast path")
