"""Socket.IO on /console against the real server: who may connect, rooms, events, and dropping a
user's sockets when they log out or their role changes."""

from __future__ import annotations

import os
import queue
import re
import threading

import pytest
import requests
import socketio

from crisis import create_app, live
from crisis.extensions import db
from crisis.incidents import service
from tests.conftest import PASSWORD

WAIT = 10  # seconds: an upper bound for something that happens in milliseconds


class Browser:
    """A requests session that logs in through the real forms, as a browser would."""

    def __init__(self, base: str):
        self.base = base
        self.http = requests.Session()

    def csrf(self, path: str) -> str:
        html = self.http.get(self.base + path, timeout=WAIT).text
        return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)

    def post(self, path: str, data: dict):
        data = {"csrf_token": self.csrf("/login" if path == "/login" else "/console/"), **data}
        return self.http.post(self.base + path, data=data, allow_redirects=False, timeout=WAIT)

    def login(self, user) -> Browser:
        response = self.post("/login", {"email": user.email, "password": PASSWORD})
        assert response.status_code == 302, response.text
        if user.totp_secret:
            token = self.csrf("/account/totp")
            response = self.http.post(self.base + "/account/totp", allow_redirects=False,
                                      data={"code": user.code(), "csrf_token": token},
                                      timeout=WAIT)
            assert response.status_code == 302
            assert "/account/totp" not in response.headers["Location"]
        return self

    @property
    def cookie(self) -> str:
        return f"session={self.http.cookies['session']}"


class Socket:
    """A python-socketio client on /console that records events and its disconnection."""

    def __init__(self, base: str, cookie: str | None = None, transport: str = "polling"):
        self.client = socketio.Client(reconnection=False)
        self.events: queue.Queue = queue.Queue()
        self.disconnected = threading.Event()
        self.client.on("*", lambda event, data: self.events.put((event, data)),
                       namespace=live.NAMESPACE)
        self.client.on("disconnect", lambda *args: self.disconnected.set(),
                       namespace=live.NAMESPACE)
        self.client.connect(base, namespaces=[live.NAMESPACE], transports=[transport],
                            headers={"Cookie": cookie} if cookie else {}, wait_timeout=WAIT)

    def join(self, incident_id) -> dict:
        return self.client.call("join", {"incident_id": incident_id}, namespace=live.NAMESPACE,
                                timeout=WAIT)

    def next_event(self) -> tuple[str, dict]:
        return self.events.get(timeout=WAIT)

    def close(self) -> None:
        # abort: do not wait for the read loop (a long-poll may only end with the ping interval).
        self.client.eio.disconnect(abort=True)


@pytest.fixture
def sockets(live_server):
    opened: list[Socket] = []

    def open_socket(cookie: str | None = None, transport: str = "polling") -> Socket:
        sock = Socket(live_server.url, cookie, transport)
        opened.append(sock)
        return sock

    yield open_socket
    for sock in opened:
        sock.close()


@pytest.fixture
def incident_ids(app):
    with app.app_context():
        first = service.create_incident(title="Brand Dalfsen", mode="live", actor_id=None)
        second = service.create_incident(title="Storm Oudleusen", mode="drill", actor_id=None)
        db.session.commit()
        return first.id, second.id


def emit(app, event: str, payload: dict, incident_id=None) -> None:
    with app.app_context():
        live.emit(event, payload, incident_id=incident_id)


def refused(base: str, cookie: str | None) -> bool:
    """Try to connect to /console; True when the server answers with a connect_error."""
    client = socketio.Client(reconnection=False)
    outcome: queue.Queue = queue.Queue()
    client.on("connect", lambda: outcome.put("connected"), namespace=live.NAMESPACE)
    client.on("connect_error", lambda *data: outcome.put("refused"), namespace=live.NAMESPACE)
    client.connect(base, namespaces=[live.NAMESPACE], transports=["polling"],
                   headers={"Cookie": cookie} if cookie else {}, wait=False)
    try:
        return outcome.get(timeout=WAIT) == "refused"
    finally:
        client.eio.disconnect(abort=True)


def test_anonymous_connect_is_refused(live_server):
    assert refused(live_server.url, None)
    assert refused(live_server.url, "session=forged.cookie.value")


def test_logged_in_user_joins_an_incident_and_gets_its_events(app, live_server, make_user,
                                                              sockets, incident_ids):
    first, second = incident_ids
    browser = Browser(live_server.url).login(make_user("viewer"))
    sock = sockets(browser.cookie)
    assert sock.join(first) == {"ok": True, "room": f"incident:{first}"}
    assert sock.join(999_999) == {"ok": False, "error": "no such incident"}
    assert sock.join("abc") == {"ok": False, "error": "incident_id required"}

    # Events arrive in order on one connection: the last one proves the earlier ones were sent.
    emit(app, "message.updated", {"id": 2}, incident_id=second)  # a room it did not join
    emit(app, "message.updated", {"id": 1}, incident_id=first)
    emit(app, "approval.requested", {"id": 3})  # the team room, joined on connect
    assert sock.next_event() == ("message.updated", {"id": 1})
    assert sock.next_event() == ("approval.requested", {"id": 3})
    assert sock.events.empty()


# Polling is what a client falls back to; websocket is what a browser uses first.
@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_logout_drops_the_socket_and_the_old_cookie(app, live_server, make_user, sockets,
                                                    incident_ids, transport):
    first, _ = incident_ids
    user = make_user("editor")
    browser = Browser(live_server.url).login(user)
    old_cookie = browser.cookie
    sock = sockets(old_cookie, transport)
    assert sock.join(first)["ok"]
    other = sockets(Browser(live_server.url).login(make_user("viewer")).cookie)

    response = browser.post("/logout", {})
    assert response.status_code == 302
    assert sock.disconnected.wait(WAIT), "the socket of a logged-out user stayed open"
    assert refused(live_server.url, old_cookie)

    # Someone else's socket is untouched.
    assert not other.disconnected.is_set()
    assert other.join(first)["ok"]
    emit(app, "delivery.updated", {"id": 7}, incident_id=first)
    assert other.next_event() == ("delivery.updated", {"id": 7})


def test_role_change_drops_the_socket(app, live_server, make_user, sockets, incident_ids):
    first, _ = incident_ids
    target = make_user("viewer")
    old_cookie = Browser(live_server.url).login(target).cookie
    sock = sockets(old_cookie)
    assert sock.join(first)["ok"]

    admin = Browser(live_server.url).login(make_user("admin"))
    response = admin.post(f"/console/admin/users/{target.id}/role", {"role": "editor"})
    assert response.status_code == 302
    assert sock.disconnected.wait(WAIT), "the socket survived a role change"
    assert refused(live_server.url, old_cookie)

    fresh = sockets(Browser(live_server.url).login(target).cookie)  # logging in again works
    assert fresh.join(first)["ok"]


def test_a_stale_session_cannot_join(app, live_server, make_user, sockets, incident_ids):
    """A socket whose session ended without a drop (say, on another web process) cannot join."""
    from crisis.models import User

    first, _ = incident_ids
    user = make_user("viewer")
    sock = sockets(Browser(live_server.url).login(user).cookie)
    with app.app_context():
        db.session.get(User, user.id).session_epoch += 1  # what end_sessions does, minus the drop
        db.session.commit()
    replies = []
    sock.client.emit("join", {"incident_id": first}, namespace=live.NAMESPACE,
                     callback=replies.append)
    assert sock.disconnected.wait(WAIT), "a socket with an ended session was not dropped"
    assert all(not reply["ok"] for reply in replies)
    emit(app, "message.updated", {"id": 9}, incident_id=first)
    assert sock.events.empty()


def test_a_second_app_leaves_the_first_apps_sockets_alone(app, live_server, make_user, sockets,
                                                          incident_ids, tmp_path, monkeypatch):
    """Each app has its own Socket.IO server: building another must not re-point the first's."""
    from werkzeug.serving import make_server

    for name in list(os.environ):
        if name.startswith("CRISIS_"):
            monkeypatch.delenv(name)
    other = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "s", "AUDIT_KEY": "a",
                        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"]})
    app.extensions["celery"].set_default()
    app.extensions["celery"].set_current()
    server = make_server("127.0.0.1", 0, other, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert refused(live_server.url, None)
        assert refused(f"http://127.0.0.1:{server.server_port}", None)
        first, _ = incident_ids
        sock = sockets(Browser(live_server.url).login(make_user("viewer")).cookie)
        assert sock.join(first)["ok"]
        emit(app, "message.updated", {"id": 5}, incident_id=first)
        assert sock.next_event() == ("message.updated", {"id": 5})
    finally:
        server.shutdown()


def test_events_are_encoded_as_socketio_encodes_them_without_the_binary_scan(app):
    """The console's packet class skips the scan for bytes, and nothing else changes."""
    from socketio.packet import EVENT, Packet

    from crisis.live import NAMESPACE, JsonPacket

    assert app.extensions["socketio"].server.packet_class is JsonPacket
    payload = ["reactions.created", {"incident_id": 7, "reactions": [
        {"id": 1, "text": "<script>alert(1)</script> ëé", "triggers": {"category": ["water"]}}]}]
    ours = JsonPacket(EVENT, namespace=NAMESPACE, data=payload).encode()
    theirs = Packet(EVENT, namespace=NAMESPACE, data=payload).encode()
    assert ours == theirs
