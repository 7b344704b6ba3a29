"""The interface: Dutch by default, a remembered language choice, local time, and drills that look
like drills."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from crisis.extensions import db
from crisis.incidents import service
from crisis.models import User
from tests.conftest import PASSWORD, csrf_token, login


def page_language(response) -> str:
    return re.search(r'<html lang="([a-z]+)">', response.get_data(as_text=True)).group(1)


def choose(client, language: str, page: str = "/login"):
    token = csrf_token(client, page)
    return client.post(f"/language?next={page}", data={"language": language, "csrf_token": token})


def test_dutch_by_default(client):
    response = client.get("/login")
    html = response.get_data(as_text=True)
    assert page_language(response) == "nl"
    assert "<h1>Inloggen</h1>" in html
    assert "Wachtwoord" in html
    assert ">English</button>" in html  # the way out is in the other language


def test_dutch_console_and_messages(client, make_user):
    token = csrf_token(client, "/login")
    failed = client.post("/login", data={"email": "niemand@test.nl", "password": PASSWORD,
                                         "csrf_token": token})
    assert "Onbekend e-mailadres of verkeerd wachtwoord." in failed.get_data(as_text=True)
    login(client, make_user("editor"))
    html = client.get("/console/").get_data(as_text=True)
    assert ">Incidenten<" in html and "Nieuw incident" in html and "Uitloggen" in html


def test_choice_is_remembered_in_the_session(client):
    response = choose(client, "en")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    for _ in range(2):
        response = client.get("/login")
        assert page_language(response) == "en"
        assert "<h1>Log in</h1>" in response.get_data(as_text=True)
    choose(client, "nl")
    assert page_language(client.get("/login")) == "nl"


def test_choice_is_remembered_for_the_user(app, client, make_user):
    user = make_user("editor")
    login(client, user)
    choose(client, "en", page="/console/")
    with app.app_context():
        assert db.session.get(User, user.id).locale == "en"
    token = csrf_token(client, "/console/")
    client.post("/logout", data={"csrf_token": token})
    elsewhere = app.test_client()  # another browser: nothing in its session
    assert page_language(elsewhere.get("/login")) == "nl"
    login(elsewhere, user)
    response = elsewhere.get("/console/")
    assert page_language(response) == "en"
    assert ">Incidents<" in response.get_data(as_text=True)


def test_choice_made_before_logging_in_survives_the_login(client, make_user):
    choose(client, "en")
    login(client, make_user("editor"))
    assert page_language(client.get("/console/")) == "en"


def test_unknown_language_is_refused(client):
    token = csrf_token(client, "/login")
    assert client.post("/language", data={"language": "fr", "csrf_token": token}).status_code == 400
    assert page_language(client.get("/login")) == "nl"


def test_language_switch_returns_only_to_local_pages(client):
    token = csrf_token(client, "/login")
    response = client.post("/language?next=https://evil.example/",
                           data={"language": "en", "csrf_token": token})
    assert response.headers["Location"] == "/console/"


def test_times_are_shown_in_amsterdam(app):
    from crisis.web import local_time

    with app.test_request_context("/"):
        assert "13:00" in local_time(datetime(2026, 1, 15, 12, 0, tzinfo=UTC), "short")  # CET
        assert "14:00" in local_time(datetime(2026, 7, 15, 12, 0, tzinfo=UTC), "short")  # CEST


@pytest.fixture
def incidents(app):
    with app.app_context():
        drill = service.create_incident(title="Oefening wateroverlast", mode="drill", actor_id=None)
        live = service.create_incident(title="Brand Ankum", mode="live", actor_id=None)
        db.session.commit()
        return drill.id, live.id


def test_a_drill_looks_like_a_drill(client, make_user, incidents):
    drill_id, live_id = incidents
    login(client, make_user("viewer"))
    drill = client.get(f"/console/incidents/{drill_id}").get_data(as_text=True)
    assert re.search(r'<body class="drill"', drill)
    assert '<div class="drill-banner" role="alert">OEFENING' in drill
    live = client.get(f"/console/incidents/{live_id}").get_data(as_text=True)
    assert re.search(r'<body class="live"', live)
    assert "drill-banner" not in live
    listing = client.get("/console/").get_data(as_text=True)
    assert '<span class="badge drill">OEFENING</span>' in listing
    assert '<span class="badge live">ECHT</span>' in listing

