"""Atom: /feed.atom and /cap.atom validate against the RFC 4287 RELAX NG grammar; drills never."""

from __future__ import annotations

import pytest
from lxml import etree

from crisis.extensions import db
from tests.conformance import conformance_file
from tests.crisis.test_public_pages import fresh_pages, make_area, make_incident, publish

ATOM = {"atom": "http://www.w3.org/2005/Atom"}


@pytest.fixture
def fresh(app, monkeypatch):
    yield from fresh_pages(app, monkeypatch)


@pytest.fixture(scope="module")
def grammar():
    return etree.RelaxNG(etree.parse(str(conformance_file("atom/atom_rfc4287.rng"))))


def test_the_grammar_accepts_the_valid_example_and_rejects_the_broken_ones(grammar):
    assert grammar.validate(etree.parse(str(conformance_file("atom/valid_rfc4287_example.xml"))))
    for name in ("derived_invalid_feed_missing_id.xml", "derived_invalid_missing_updated.xml"):
        assert not grammar.validate(etree.parse(str(conformance_file(f"atom/{name}")))), name


@pytest.fixture
def published(fresh):
    with fresh.app_context():
        area = make_area()
        live = make_incident("Brand Industrieweg", areas=[area])
        alert = publish(live, "Grote brand. Veel rook.", kind="alert", headline="Grote brand",
                        instruction="Ga naar binnen.")
        update = publish(live, "De brand is bij de Stationsweg.", headline="Brand verplaatst")
        correction = publish(live, "CORRECTIE: de brand is bij de Spoorstraat.", kind="correction",
                             supersedes=update)
        drill = make_incident("Oefening hoogwater", mode="drill")
        drill_post = publish(drill, "OEFENING: de Vecht stijgt.", kind="alert", headline="Oefening")
        return {"slug": live.slug, "ids": [alert.id, update.id, correction.id],
                "drill": drill_post.id}


def _feed(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "application/atom+xml"
    assert response.headers["Cache-Control"] == "public, max-age=10"
    return response, etree.fromstring(response.data)


def test_updates_feed_is_valid_atom(client, published, grammar):
    response, feed = _feed(client, "/feed.atom")
    assert grammar.validate(feed), grammar.error_log
    entries = feed.findall("atom:entry", ATOM)
    assert len(entries) == 3
    links = [e.find("atom:link[@rel='alternate']", ATOM).get("href") for e in entries]
    assert links == [f"http://127.0.0.1:5000/incidents/{published['slug']}/updates/{i}"
                     for i in reversed(published["ids"])]  # newest first
    titles = [e.findtext("atom:title", namespaces=ATOM) for e in entries]
    assert titles[1] == "Gecorrigeerd: Brand verplaatst"
    alert = entries[2].findtext("atom:content", namespaces=ATOM)
    assert "Grote brand. Veel rook." in alert and "Wat moet u doen? Ga naar binnen." in alert


def test_feeds_answer_304_to_their_etag(client, published):
    response, _ = _feed(client, "/feed.atom")
    again = client.get("/feed.atom", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_cap_feed_is_valid_atom_linking_each_cap_file(client, published, grammar):
    _, feed = _feed(client, "/cap.atom")
    assert grammar.validate(feed), grammar.error_log
    alternates = feed.findall("atom:entry/atom:link[@rel='alternate']", ATOM)
    assert {a.get("type") for a in alternates} == {"application/cap+xml"}
    assert sorted(a.get("href") for a in alternates) == sorted(
        f"http://127.0.0.1:5000/cap/{i}.xml" for i in published["ids"])
    for href in (a.get("href") for a in alternates):
        assert client.get(href.removeprefix("http://127.0.0.1:5000")).status_code == 200


def test_no_drill_in_any_feed(client, published):
    for path in ("/feed.atom", "/cap.atom"):
        body = client.get(path).get_data(as_text=True)
        assert "Oefening" not in body and "OEFENING" not in body
        assert f"/updates/{published['drill']}" not in body and f"/cap/{published['drill']}." not in body


def test_empty_feeds_are_valid(client, fresh, grammar):
    for path in ("/feed.atom", "/cap.atom"):
        _, feed = _feed(client, path)
        assert grammar.validate(feed), (path, grammar.error_log)
        assert feed.findall("atom:entry", ATOM) == []


def test_withdrawn_posts_leave_the_feeds(client, published, fresh):
    from crisis.public.store import DatabasePostStore

    with fresh.app_context():
        DatabasePostStore().withdraw(str(published["ids"][0]))
        db.session.commit()
    for path in ("/feed.atom", "/cap.atom"):
        body = client.get(path).get_data(as_text=True)
        assert "Grote brand. Veel rook." not in body, path
