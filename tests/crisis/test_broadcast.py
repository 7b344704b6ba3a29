"""The broadcast path end to end: API → approval → real worker → real SDKs → sandbox."""

from __future__ import annotations

import pytest
import requests
import sqlalchemy as sa

from crisis.extensions import db
from crisis.models import (
    Area,
    Delivery,
    Message,
    RecipientState,
    SmsRecipient,
    Subscriber,
    SubscriberStatus,
)


@pytest.fixture
def team(running, make_user, app):
    """An editor and an approver with API sessions, two areas with subscribers."""
    running.sandbox.control("POST", "/reset")
    editor, approver = make_user("editor"), make_user("approver")
    with app.app_context():
        north = Area(code="noord", name="Noord", postcodes=["7711"])
        south = Area(code="zuid", name="Zuid", postcodes=["8151"])
        db.session.add_all([north, south])
        db.session.flush()
        for i in range(6):
            db.session.add(Subscriber(phone=f"+3161000{i:04d}", area_ids=[north.id],
                                      language="en" if i % 3 == 0 else "nl",
                                      status=SubscriberStatus.active))
        db.session.add(Subscriber(phone="+31610009999", area_ids=[south.id],
                                  status=SubscriberStatus.active))
        db.session.commit()
        areas = {"north": north.id, "south": south.id}
    return _Team(running, editor, approver, areas)


class _Team:
    def __init__(self, running, editor, approver, areas):
        self.running, self.areas = running, areas
        self.editor = _api(running.server.url, editor)
        self.approver = _api(running.server.url, approver)

    def incident(self, mode="live"):
        response = self.editor.post("/api/v1/incidents", json={
            "title": "Brand Industrieweg", "mode": mode, "area_ids": [self.areas["north"]]})
        assert response.status_code == 201, response.text
        return response.json()

    def approved_message(self, incident, **fields):
        body = {"body": "Grote brand bij de Industrieweg. Houd ramen en deuren dicht.",
                "translations": {"en": "Large fire on Industrieweg. Keep windows and doors shut."},
                **fields}
        draft = self.editor.post(f"/api/v1/incidents/{incident['id']}/messages", json=body)
        assert draft.status_code == 201, draft.text
        message = self.editor.post(f"/api/v1/messages/{draft.json()['id']}/submit").json()
        approved = self.approver.post(f"/api/v1/messages/{message['id']}/approve", json={
            "approval_hash": message["approval_hash"], "confirmation": incident["title"]})
        assert approved.status_code == 200, approved.text
        return approved.json()


class _Api(requests.Session):
    def __init__(self, base):
        super().__init__()
        self.base = base

    def request(self, method, url, *args, **kwargs):
        if method.upper() != "GET":
            kwargs.setdefault("headers", {})["X-CSRFToken"] = self.csrf
        return super().request(method, self.base + url, *args, timeout=10, **kwargs)


def _api(base, user):
    """A browser-like session: logged in through the form, CSRF header on every write."""
    session = _Api(base)
    page = requests.Session.request(session, "GET", base + "/login")
    import re

    session.csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
    form = {"email": user.email, "password": "correct horse battery staple",
            "csrf_token": session.csrf}
    after = requests.Session.request(session, "POST", base + "/login", data=form)
    assert after.ok
    # Logging in starts a new session (against fixation), and with it a new CSRF token.
    session.csrf = re.search(r'name="csrf-token" content="([^"]+)"', after.text).group(1)
    if user.totp_secret:
        assert requests.Session.request(session, "POST", base + "/account/totp",
                                        data={"code": user.code(), "csrf_token": session.csrf}).ok
    return session


def test_approved_message_reaches_every_channel_once(team):
    incident = team.incident()
    message = team.approved_message(incident)
    running = team.running

    def all_accepted():
        rows = db.session.scalars(sa.select(Delivery).where(
            Delivery.message_id == message["id"])).all()
        return len(rows) == 4 and all(d.state.value == "accepted" for d in rows) and rows

    running.wait_for(all_accepted)
    tweets = running.sandbox.control("GET", "/x/tweets")
    posts = running.sandbox.control("GET", "/facebook/posts")
    sms = running.sandbox.control("GET", "/twilio/messages")
    assert len(tweets["tweets"] if isinstance(tweets, dict) else tweets) == 1
    assert len(posts["posts"] if isinstance(posts, dict) else posts) == 1
    sent = sms["messages"] if isinstance(sms, dict) else sms
    # Six subscribers in the north, each once, in their own language; none in the south.
    assert sorted(m["to"] for m in sent) == [f"+3161000{i:04d}" for i in range(6)]
    for m in sent:
        english = m["to"] in {"+31610000000", "+31610000003"}
        assert ("Large fire" in m["body"]) is english
    state = team.editor.get(f"/api/v1/messages/{message['id']}").json()
    assert state["state"] == "sent"
    assert state["sms"]["accepted_total"] == 6


def test_author_cannot_approve_own_message(team, make_user):
    incident = team.incident()
    draft = team.approver.post(f"/api/v1/incidents/{incident['id']}/messages",
                               json={"body": "Test", "channels": ["website"]}).json()
    submitted = team.approver.post(f"/api/v1/messages/{draft['id']}/submit").json()
    refused = team.approver.post(f"/api/v1/messages/{draft['id']}/approve",
                                 json={"approval_hash": submitted["approval_hash"],
                                       "confirmation": incident["title"]})
    assert refused.status_code == 403
    assert "second person" in refused.json()["error"]


def test_edit_after_submit_voids_the_approval(team):
    incident = team.incident()
    draft = team.editor.post(f"/api/v1/incidents/{incident['id']}/messages",
                             json={"body": "Eerste tekst", "channels": ["website"]}).json()
    submitted = team.editor.post(f"/api/v1/messages/{draft['id']}/submit").json()
    edited = team.editor.patch(f"/api/v1/messages/{draft['id']}",
                               json={"body": "Andere tekst", "version": submitted["version"]})
    assert edited.status_code == 200 and edited.json()["state"] == "draft"
    stale = team.approver.post(f"/api/v1/messages/{draft['id']}/approve",
                               json={"approval_hash": submitted["approval_hash"],
                                     "confirmation": incident["title"]})
    assert stale.status_code == 409


def test_concurrent_edits_do_not_overwrite(team):
    incident = team.incident()
    draft = team.editor.post(f"/api/v1/incidents/{incident['id']}/messages",
                             json={"body": "Versie een", "channels": ["website"]}).json()
    first = team.editor.patch(f"/api/v1/messages/{draft['id']}",
                              json={"body": "Versie twee", "version": draft["version"]})
    second = team.editor.patch(f"/api/v1/messages/{draft['id']}",
                               json={"body": "Versie drie", "version": draft["version"]})
    assert first.status_code == 200 and second.status_code == 409


def test_correction_reaches_exactly_where_the_original_went(team, app):
    incident = team.incident()
    original = team.approved_message(incident, channels=["x", "sms", "website"])
    running = team.running
    running.wait_for(lambda: db.session.get(Message, original["id"]).state.value == "sent")
    with app.app_context():
        # One subscriber stops after the original: the correction must not reach them.
        stopped = db.session.scalar(sa.select(Subscriber).where(Subscriber.phone == "+31610000001"))
        stopped.status = SubscriberStatus.stopped
        db.session.commit()
    correction = team.editor.post(f"/api/v1/messages/{original['id']}/correct",
                                  json={"body": "CORRECTIE: de brand is bij de Stationsweg."})
    assert correction.status_code == 201, correction.text
    assert correction.json()["channels"] == ["x", "sms", "website"]
    submitted = team.editor.post(f"/api/v1/messages/{correction.json()['id']}/submit").json()
    assert submitted["recipient_count"] == 5
    approved = team.approver.post(f"/api/v1/messages/{submitted['id']}/approve", json={
        "approval_hash": submitted["approval_hash"], "confirmation": incident["title"]})
    assert approved.status_code == 200, approved.text
    running.wait_for(lambda: db.session.get(Message, submitted["id"]).state.value == "sent")
    tweets = running.sandbox.control("GET", "/x/tweets")
    tweets = tweets["tweets"] if isinstance(tweets, dict) else tweets
    assert len(tweets) == 2
    with app.app_context():
        x_original = db.session.get(Message, original["id"]).delivery("x").provider_id
        reached = {r.phone for r in db.session.scalars(sa.select(SmsRecipient).where(
            SmsRecipient.message_id == submitted["id"],
            SmsRecipient.state.in_([RecipientState.accepted, RecipientState.sent,
                                    RecipientState.delivered])))}
    reply = next(t for t in tweets if "Stationsweg" in t["text"])
    assert x_original in str(reply)  # a reply in the original's thread
    assert "+31610000001" not in reached and len(reached) == 5
