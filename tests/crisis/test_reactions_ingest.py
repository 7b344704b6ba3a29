"""Reactions end to end: the public answers through the sandbox on X (the poller), Facebook (the
signed page webhook), SMS (the signed Twilio webhook) and the public form; a real python-socketio
client in the incident's room receives each one classified and clustered. Redeliveries are stored
once; forged, unsigned and malformed webhooks are refused and stored nowhere."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import queue
import re
import threading
import time

import pytest
import requests
import socketio
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from channels.factory import sandbox_settings
from crisis import live
from crisis.extensions import db
from crisis.models import (
    Area,
    AuditEvent,
    Message,
    PollState,
    Reaction,
    Subscriber,
    SubscriberStatus,
)
from tests.conftest import PASSWORD

WAIT = 20
SANDBOX = sandbox_settings()
QUESTIONS = {
    "x": "Mag ik het kraanwater nog drinken?",
    "facebook": "Is het kraanwater veilig om te drinken?",
    "sms": "Kan ik het kraanwater drinken of moet ik koken?",
    "form": "Mogen de kinderen het kraanwater drinken?",
}


class Api(requests.Session):
    """A browser-like session: logged in through the form, CSRF header on every write."""

    def __init__(self, base: str, user):
        super().__init__()
        self.base = base
        page = super().request("GET", base + "/login", timeout=WAIT)
        self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
        after = super().request("POST", base + "/login", timeout=WAIT, data={
            "email": user.email, "password": PASSWORD, "csrf_token": self.csrf})
        assert after.ok
        self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', after.text).group(1)
        if user.totp_secret:
            assert super().request("POST", base + "/account/totp", timeout=WAIT, data={
                "code": user.code(), "csrf_token": self.csrf}).ok

    def request(self, method, url, *args, **kwargs):
        if method.upper() != "GET":
            kwargs.setdefault("headers", {})["X-CSRFToken"] = self.csrf
        return super().request(method, self.base + url, *args, timeout=WAIT, **kwargs)


class Socket:
    """A python-socketio client on /console, joined to one incident's room, recording events."""

    def __init__(self, base: str, cookie: str, incident_id: int):
        self.client = socketio.Client(reconnection=False)
        self.events: queue.Queue = queue.Queue()
        self.seen: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        self.client.on("*", lambda event, data: self.events.put((event, data)), namespace=live.NAMESPACE)
        self.client.connect(base, namespaces=[live.NAMESPACE], transports=["websocket"],
                            headers={"Cookie": cookie}, wait_timeout=WAIT)
        joined = self.client.call("join", {"incident_id": incident_id}, namespace=live.NAMESPACE,
                                  timeout=WAIT)
        assert joined["ok"], joined

    def wait_for(self, event: str, predicate, timeout: float = WAIT) -> dict:
        for name, data in self.seen:
            if name == event and predicate(data):
                return data
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                name, data = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append((name, data))
            if name == event and predicate(data):
                return data
        raise AssertionError(f"no {event} matching within {timeout}s; saw {[n for n, _ in self.seen]}")

    def wait_for_reaction(self, predicate, timeout: float = WAIT) -> dict:
        """The first new reaction matching `predicate`, from the batches of `reactions.created`."""
        batch = self.wait_for("reactions.created",
                              lambda b: any(predicate(r) for r in b["reactions"]), timeout)
        return next(r for r in batch["reactions"] if predicate(r))

    def close(self):
        self.client.disconnect()


def published_incident(running, make_user, app, title: str = "Kookadvies Dalfsen"):
    """A live incident whose update went out on X, Facebook, SMS (three subscribers) and the website.

    Returns (incident JSON, message id, {channel: provider id}, the editor, the editor's session).
    """
    running.sandbox.control("POST", "/reset")
    editor, approver = make_user("editor"), make_user("approver")
    with app.app_context():
        area = Area(code="dalfsen", name="Dalfsen", postcodes=["7721"])
        db.session.add(area)
        db.session.flush()
        for i in range(3):
            db.session.add(Subscriber(phone=f"+3161200000{i}", area_ids=[area.id],
                                      status=SubscriberStatus.active))
        db.session.commit()
        area_id = area.id
    base = running.server.url
    editor_api, approver_api = Api(base, editor), Api(base, approver)
    incident = editor_api.post("/api/v1/incidents", json={
        "title": title, "mode": "live", "area_ids": [area_id]}).json()
    draft = editor_api.post(f"/api/v1/incidents/{incident['id']}/messages", json={
        "body": "Kook uw kraanwater voor gebruik.", "channels": ["x", "facebook", "sms", "website"]}).json()
    submitted = editor_api.post(f"/api/v1/messages/{draft['id']}/submit").json()
    approved = approver_api.post(f"/api/v1/messages/{draft['id']}/approve", json={
        "approval_hash": submitted["approval_hash"], "confirmation": incident["title"]})
    assert approved.status_code == 200, approved.text

    def sent():
        message = db.session.get(Message, draft["id"])
        return message.state.value == "sent" and {d.channel: d.provider_id for d in message.deliveries}

    posts = running.wait_for(sent, timeout=30)
    return incident, draft["id"], posts, editor, editor_api


@pytest.fixture
def scene(running, make_user, app):
    """A published live incident; an editor's socket in its room."""
    incident, message_id, posts, _editor, editor_api = published_incident(running, make_user, app)
    socket = Socket(running.server.url, f"session={editor_api.cookies['session']}", incident["id"])
    yield Scene(running, app, incident, message_id, posts, editor_api, socket)
    socket.close()


def poll_x_until(app, predicate, timeout: float = WAIT):
    """Run the X poller (as beat does) until `predicate` holds in the database."""
    from crisis.tasks.reactions import poll_x

    deadline = time.monotonic() + timeout
    while True:
        with app.app_context():
            poll_x()
            value = predicate()
            db.session.remove()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("the poller did not store the mention")
        time.sleep(0.5)


class Scene:
    def __init__(self, running, app, incident, message_id, posts, api, socket):
        self.running, self.app, self.incident, self.message_id = running, app, incident, message_id
        self.posts, self.api, self.socket = posts, api, socket
        self.base = running.server.url

    def inject(self, **spec):
        return self.running.sandbox.control("POST", "/inject", json=spec)

    def poll_x_until(self, predicate, timeout: float = WAIT):
        return poll_x_until(self.app, predicate, timeout)

    def reactions(self) -> list[Reaction]:
        with self.app.app_context():
            rows = list(db.session.scalars(sa.select(Reaction).order_by(Reaction.id)))
            for row in rows:
                db.session.expunge(row)
            return rows

    def ask_on_the_form(self, text: str) -> requests.Response:
        return ask_on_the_form(self.base, self.incident["slug"], text)


def ask_on_the_form(base: str, slug: str, text: str, name: str = "Anna") -> requests.Response:
    """A resident's visit: the form page (private, with a CSRF token), then the question."""
    session = requests.Session()
    url = f"{base}/incidents/{slug}/questions"
    page = session.get(url, timeout=WAIT)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    return session.post(url, data={"csrf_token": token, "text": text, "name": name, "website": ""},
                        timeout=WAIT)


def test_every_channel_reaches_the_console_classified_and_clustered(scene):
    scene.inject(channel="x", text=QUESTIONS["x"], in_reply_to=scene.posts["x"], author="anna")
    scene.poll_x_until(lambda: db.session.scalar(sa.select(sa.func.count()).select_from(Reaction)
                                                 .where(Reaction.channel == "x")))
    scene.inject(channel="facebook", text=QUESTIONS["facebook"], post_id=scene.posts["facebook"],
                 author="Bert de Vries")
    scene.inject(channel="sms", **{"from": "+31612000001", "body": QUESTIONS["sms"]})
    answered = scene.ask_on_the_form(QUESTIONS["form"])
    assert answered.status_code == 200 and "/questions/thanks" in answered.url

    events = {}
    for channel, text in QUESTIONS.items():
        events[channel] = scene.socket.wait_for_reaction(
            lambda r, c=channel, t=text: r["channel"] == c and t in r["text"])
    for channel, event in events.items():
        assert event["incident_id"] == scene.incident["id"]
        assert event["category"] == "question", (channel, event)
        assert event["triggers"]["category"]
        assert event["cluster_id"] and "kraanwater" in event["cluster_label"]
        assert event["drill"] is False
    assert len({e["cluster_id"] for e in events.values()}) == 1  # one theme across four channels
    for channel in ("x", "facebook", "sms"):
        assert events[channel]["message_id"] == scene.message_id
    assert events["facebook"]["author_name"] == "Bert de Vries"
    assert "+3161" not in json.dumps(events["sms"])  # the console never gets the number
    cluster = scene.socket.wait_for("cluster.updated", lambda c: c["count"] == 4)
    assert cluster["open_count"] == 4 and cluster["id"] == events["x"]["cluster_id"]


def test_facebook_edits_and_removals_follow_the_comment(scene):
    added = scene.inject(channel="facebook", text="Waar kan ik water halen?", post_id=scene.posts["facebook"])
    first = scene.socket.wait_for_reaction(lambda r: "water halen" in r["text"])
    scene.inject(channel="facebook", verb="edited", comment_id=added["comment_id"],
                 text="Waar kan ik flessen water halen?")
    scene.socket.wait_for("reaction.updated", lambda r: r["id"] == first["id"] and "flessen" in r["text"])
    scene.inject(channel="facebook", verb="remove", comment_id=added["comment_id"])
    removed = scene.socket.wait_for("reaction.updated", lambda r: r["id"] == first["id"] and r["removed_at"])
    assert removed["can_reply"] is False
    assert len(scene.reactions()) == 1


def test_answers_go_out_on_the_reactions_own_channel(scene):
    scene.inject(channel="sms", **{"from": "+31612000002", "body": "Hoe lang moeten we koken?"})
    scene.inject(channel="facebook", text="Geldt dit ook voor Lemelerveld?", post_id=scene.posts["facebook"])
    scene.inject(channel="x", text="Tot wanneer geldt het kookadvies?", in_reply_to=scene.posts["x"])
    scene.poll_x_until(lambda: db.session.scalar(sa.select(sa.func.count()).select_from(Reaction)
                                                 .where(Reaction.channel == "x")))
    created = {c: scene.socket.wait_for_reaction(lambda r, c=c: r["channel"] == c)
               for c in ("sms", "facebook", "x")}
    for channel, reaction in created.items():
        response = scene.api.post(f"/api/v1/reactions/{reaction['id']}/reply",
                                  json={"text": f"Antwoord via {channel}: minstens tot morgen."})
        assert response.status_code == 202, response.text
    for reaction in created.values():
        done = scene.socket.wait_for("reaction.updated",
                                     lambda r, i=reaction["id"]: r["id"] == i and r["replied_at"])
        assert done["handling"] == "handled" and done["reply_error"] is None
    sms = scene.running.sandbox.control("GET", "/twilio/messages")
    sms = sms["messages"] if isinstance(sms, dict) else sms
    assert any(m["to"] == "+31612000002" and "Antwoord via sms" in m["body"] for m in sms)
    tweets = scene.running.sandbox.control("GET", "/x/tweets")
    tweets = tweets["tweets"] if isinstance(tweets, dict) else tweets
    reply = next(t for t in tweets if "Antwoord via x" in t["text"])
    comments = scene.running.sandbox.control("GET", "/facebook/posts")
    with scene.app.app_context():
        mention = db.session.scalars(sa.select(Reaction).where(Reaction.channel == "x")).one()
        comment = db.session.scalars(sa.select(Reaction).where(Reaction.channel == "facebook")).one()
        assert reply["in_reply_to"] == mention.provider_id  # a reply under the mention
        assert any(c.get("parent_id") == comment.provider_id and "Antwoord via facebook" in c["message"]
                   for c in comments)
        entries = db.session.scalars(sa.select(AuditEvent).where(
            AuditEvent.action == "reaction.replied")).all()
        assert sorted(e.data["channel"] for e in entries) == ["facebook", "sms", "x"]


def _sign_twilio(url: str, params: dict) -> str:
    return RequestValidator(SANDBOX["TWILIO_AUTH_TOKEN"]).compute_signature(url, params)


def _sign_facebook(body: bytes, secret: str = SANDBOX["FACEBOOK_APP_SECRET"]) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _sign_x(body: bytes, secret: str = SANDBOX["X_API_SECRET"]) -> str:
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _sms_params(sid: str, body: str) -> dict:
    return {"MessageSid": sid, "SmsSid": sid, "AccountSid": SANDBOX["TWILIO_ACCOUNT_SID"],
            "From": "+31612000001", "To": SANDBOX["TWILIO_FROM"], "Body": body, "NumMedia": "0"}


def _facebook_payload(comment_id: str, post_id: str, text: str) -> bytes:
    return json.dumps({"object": "page", "entry": [{"id": SANDBOX["FACEBOOK_PAGE_ID"], "time": 1,
        "changes": [{"field": "feed", "value": {
            "item": "comment", "verb": "add", "comment_id": comment_id, "post_id": post_id,
            "parent_id": post_id, "from": {"id": "99", "name": "Cor"}, "message": text,
            "created_time": int(time.time())}}]}]}).encode()


def _x_payload(tweet_id: str, reply_to: str, text: str) -> bytes:
    return json.dumps({"for_user_id": "1500000000000000001", "tweet_create_events": [{
        "id_str": tweet_id, "text": text, "in_reply_to_status_id_str": reply_to,
        "user": {"id_str": "4200123", "screen_name": "cor"},
        "created_at": "Sun Nov 29 03:00:00 +0000 2026"}]}).encode()


def test_the_same_webhook_twice_is_stored_once(scene):
    sms_url = scene.base + "/webhooks/twilio/sms"
    params = _sms_params("SM" + "1" * 32, "Hoe lang blijft het kookadvies?")
    fb_body = _facebook_payload("55_777", scene.posts["facebook"], "Wanneer is het water weer goed?")
    x_body = _x_payload("1900000000000000123", scene.posts["x"], "@crisis_nl is het water al goed?")
    for _ in range(2):
        response = requests.post(sms_url, data=params, timeout=WAIT,
                                 headers={"X-Twilio-Signature": _sign_twilio(sms_url, params)})
        assert response.status_code == 200, response.text
        response = requests.post(scene.base + "/webhooks/facebook", data=fb_body, timeout=WAIT,
                                 headers={"Content-Type": "application/json",
                                          "X-Hub-Signature-256": _sign_facebook(fb_body)})
        assert response.status_code == 200, response.text
        response = requests.post(scene.base + "/webhooks/x", data=x_body, timeout=WAIT,
                                 headers={"Content-Type": "application/json",
                                          "x-twitter-webhooks-signature": _sign_x(x_body)})
        assert response.status_code == 200, response.text
    for channel in ("sms", "facebook", "x"):
        scene.socket.wait_for_reaction(lambda r, c=channel: r["channel"] == c)
    rows = scene.reactions()
    assert sorted(r.channel.value for r in rows) == ["facebook", "sms", "x"]
    assert all(r.incident_id == scene.incident["id"] for r in rows)
    # The poller reading the same mention again (its cursor lost) stores nothing new either.
    scene.inject(channel="x", text="Nog een vraag over het water?", in_reply_to=scene.posts["x"])
    scene.poll_x_until(lambda: len(db.session.scalars(sa.select(Reaction).where(
        Reaction.channel == "x")).all()) == 2)
    with scene.app.app_context():
        db.session.execute(sa.update(PollState).values(since_id=None, wait_until=None, lease_until=None))
        db.session.commit()
    scene.poll_x_until(lambda: True)
    assert len([r for r in scene.reactions() if r.channel.value == "x"]) == 2
    # A double-clicked form (same session, same text) is stored once as well.
    session = requests.Session()
    url = f"{scene.base}/incidents/{scene.incident['slug']}/questions"
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      session.get(url, timeout=WAIT).text).group(1)
    for _ in range(2):
        assert session.post(url, data={"csrf_token": token, "text": "Dubbel verstuurd?"}, timeout=WAIT).ok
    assert len([r for r in scene.reactions() if r.channel.value == "form"]) == 1


def test_forged_unsigned_and_malformed_webhooks_are_refused(scene):
    sms_url = scene.base + "/webhooks/twilio/sms"
    params = _sms_params("SM" + "2" * 32, "Vervalst bericht")
    fb_body = _facebook_payload("55_888", scene.posts["facebook"], "Vervalst")
    x_body = _x_payload("1900000000000000999", scene.posts["x"], "Vervalst")
    forged = RequestValidator("wrong").compute_signature(sms_url, params)
    refused = [
        requests.post(sms_url, data=params, timeout=WAIT),
        requests.post(sms_url, data=params, timeout=WAIT,
                      headers={"X-Twilio-Signature": forged}),
        requests.post(sms_url, data={**params, "Body": "changed"}, timeout=WAIT,
                      headers={"X-Twilio-Signature": _sign_twilio(sms_url, params)}),
        requests.post(scene.base + "/webhooks/facebook", data=fb_body, timeout=WAIT),
        requests.post(scene.base + "/webhooks/facebook", data=fb_body, timeout=WAIT,
                      headers={"X-Hub-Signature-256": _sign_facebook(fb_body, "wrong-secret")}),
        requests.post(scene.base + "/webhooks/facebook", data=fb_body + b" ", timeout=WAIT,
                      headers={"X-Hub-Signature-256": _sign_facebook(fb_body)}),
        requests.post(scene.base + "/webhooks/x", data=x_body, timeout=WAIT),
        requests.post(scene.base + "/webhooks/x", data=x_body, timeout=WAIT,
                      headers={"x-twitter-webhooks-signature": _sign_x(x_body, "wrong-secret")}),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert requests.get(scene.base + "/webhooks/facebook", timeout=WAIT, params={
        "hub.mode": "subscribe", "hub.challenge": "123", "hub.verify_token": "wrong"}).status_code == 403
    verified = requests.get(scene.base + "/webhooks/facebook", timeout=WAIT, params={
        "hub.mode": "subscribe", "hub.challenge": "123",
        "hub.verify_token": SANDBOX["FACEBOOK_VERIFY_TOKEN"]})
    assert verified.status_code == 200 and verified.text == "123"
    crc = requests.get(scene.base + "/webhooks/x", params={"crc_token": "abc"}, timeout=WAIT).json()
    assert crc["response_token"] == _sign_x(b"abc")
    # Signed but malformed: 400, never 500.
    for body in (b"not json", b"[1, 2]", json.dumps({"object": "page", "entry": "x"}).encode(),
                 json.dumps({"object": "page", "entry": [{"changes": [{"field": "feed", "value": {
                     "item": "comment", "verb": "add", "comment_id": "1_2", "post_id": "3",
                     "created_time": 10 ** 30}}]}]}).encode()):
        response = requests.post(scene.base + "/webhooks/facebook", data=body, timeout=WAIT,
                                 headers={"X-Hub-Signature-256": _sign_facebook(body)})
        assert response.status_code == 400, (body, response.status_code)
    no_id = {"for_user_id": "1", "tweet_create_events": [{"text": "no id", "user": {"id_str": "2"}}]}
    for body in (b"\xff\xfe", json.dumps(no_id).encode()):
        response = requests.post(scene.base + "/webhooks/x", data=body, timeout=WAIT,
                                 headers={"x-twitter-webhooks-signature": _sign_x(body)})
        assert response.status_code == 400, (body, response.status_code)
    incomplete = {"Body": "no sender"}
    response = requests.post(sms_url, data=incomplete, timeout=WAIT,
                             headers={"X-Twilio-Signature": _sign_twilio(sms_url, incomplete)})
    assert response.status_code == 400
    # Bytes that are no form, and a form far larger than any Twilio sends: refused, never a 500.
    for url in (sms_url, scene.base + "/webhooks/twilio/status"):
        assert requests.post(url, data=b"Body=\xff\xfe", timeout=WAIT, headers={
            "Content-Type": "application/x-www-form-urlencoded"}).status_code == 400
        huge = {**params, "Body": "x" * 70_000}
        assert requests.post(url, data=huge, timeout=WAIT, headers={
            "X-Twilio-Signature": _sign_twilio(url, huge)}).status_code == 413
    # The form without its CSRF token, or with the honeypot filled: nothing stored either.
    url = f"{scene.base}/incidents/{scene.incident['slug']}/questions"
    assert requests.post(url, data={"text": "Zonder token"}, timeout=WAIT).status_code == 400
    session = requests.Session()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      session.get(url, timeout=WAIT).text).group(1)
    bot = session.post(url, data={"csrf_token": token, "text": "Koop nu!", "website": "http://spam"},
                       timeout=WAIT)
    assert bot.status_code == 200 and "/questions/thanks" in bot.url
    time.sleep(0.5)
    assert scene.reactions() == []


def test_the_poller_waits_when_x_says_so(scene):
    from crisis.tasks.reactions import poll_x

    scene.running.sandbox.fault("x", rate_limit_for=60)
    scene.inject(channel="x", text="Wordt dit gelezen?", in_reply_to=scene.posts["x"])

    def state():
        return db.session.scalars(sa.select(PollState)).first()

    with scene.app.app_context():
        deadline = time.monotonic() + WAIT
        while (row := state()) is None or row.wait_until is None:
            assert time.monotonic() < deadline, "the poller never met the 429"
            poll_x()
            db.session.remove()
            time.sleep(0.2)
        assert row.lease_until is None
        counts = scene.running.sandbox.control("GET", "/faults")
        served = counts.get("x", {}).get("rate_limit", 0)
        assert poll_x() == 0  # X said wait: not asked again
        db.session.remove()
    assert scene.running.sandbox.control("GET", "/faults").get("x", {}).get("rate_limit", 0) == served
    assert [r for r in scene.reactions() if r.channel.value == "x"] == []
    scene.running.sandbox.fault("x")  # X answers again, for the tests that follow


def test_the_form_is_bounded_and_rate_limited(scene, monkeypatch):
    monkeypatch.setitem(scene.app.config, "QUESTION_RATE_LIMIT", "3 per minute")
    url = f"{scene.base}/incidents/{scene.incident['slug']}/questions"
    public_page = requests.get(f"{scene.base}/incidents/{scene.incident['slug']}", timeout=WAIT).text
    assert f'href="/incidents/{scene.incident["slug"]}/questions"' in public_page
    session = requests.Session()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      session.get(url, timeout=WAIT).text).group(1)
    too_long = session.post(url, data={"csrf_token": token, "text": "x" * 1001}, timeout=WAIT)
    assert too_long.status_code == 400 and "1000" in too_long.text
    statuses = [session.post(url, data={"csrf_token": token, "text": f"Vraag {i}?"}, timeout=WAIT,
                             allow_redirects=False).status_code for i in range(4)]
    assert statuses[:2] == [302, 302] and statuses[-1] == 429
    assert len(scene.reactions()) == 2
    # A drill never shows the form: its reactions come from the exercise leader's injects.
    drill = scene.api.post("/api/v1/incidents", json={"title": "Oefening kookadvies", "mode": "drill"})
    assert drill.status_code == 201, drill.text
    assert requests.get(f"{scene.base}/incidents/{drill.json()['slug']}/questions",
                        timeout=WAIT).status_code == 404
