"""The one place that emits Socket.IO events, and the console namespace's connection rules.

Socket.IO only notifies: every page rebuilds its state from the database on (re)connect. Workers
emit through the Redis message queue (a write-only SocketIO); the web process owns the sockets.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, request
from flask_login import current_user
from flask_socketio import SocketIO, disconnect, join_room
from socketio.packet import Packet
from sqlalchemy.orm import Session

from crisis.extensions import db

NAMESPACE = "/console"
_PENDING = "crisis_live_pending"
TEAM_ROOM = "team"
log = logging.getLogger(__name__)


def init_app(app: Flask) -> SocketIO:
    """Give the app its own SocketIO (app.extensions["socketio"]) with the /console handlers.

    Flask-SocketIO keeps one server per SocketIO object, so a shared one would be re-pointed by
    every create_app: the earlier app's handlers would then look sockets up in the wrong server.
    """
    sio = SocketIO(
        app,
        async_mode="threading",
        message_queue=app.config.get("REDIS_URL"),
        # None: only same-origin pages may open a socket (a cross-site page cannot ride a session).
        cors_allowed_origins=None,
        serializer=JsonPacket,
    )
    sio.on_event("connect", on_connect, namespace=NAMESPACE)
    sio.on_event("join", on_join, namespace=NAMESPACE)
    return sio


class JsonPacket(Packet):
    """Socket.IO packets for payloads that are JSON through and through.

    python-socketio looks for bytes in every payload, recursively, before it encodes it: with a
    batch of reactions per event that scan was a twentieth of the web process's CPU at a few
    hundred reactions a second. Nothing the console sends is binary (and incoming packets are
    decoded from their own header, without the scan).
    """

    @classmethod
    def data_is_binary(cls, data) -> bool:
        return False


def incident_room(incident_id: int) -> str:
    """The room every console viewing one incident joins."""
    return f"incident:{incident_id}"


def user_room(user_id: int) -> str:
    """A room per user, so their sockets can be found and dropped on logout or role change."""
    return f"user:{user_id}"


def emit(event: str, payload: dict[str, Any], *, incident_id: int | None = None) -> None:
    """Send `event` to one incident's room, or to the whole team when no incident is given."""
    room = incident_room(incident_id) if incident_id is not None else TEAM_ROOM
    try:
        _emitter().emit(event, payload, to=room, namespace=NAMESPACE)
    except Exception:  # noqa: BLE001
        # A notification lost while Redis restarts must not fail the send that caused it:
        # consoles rebuild their state from the database when they reconnect.
        log.warning("could not emit %s to %s", event, room, exc_info=True)


def after_commit(event: str, payload: dict[str, Any], *, incident_id: int | None = None) -> None:
    """Emit once the current transaction commits, so a listener that reloads sees the change."""
    pending = db.session().info.setdefault(_PENDING, [])
    pending.append((event, payload, incident_id))


def message_changed(message) -> None:
    """Tell the incident's room a message changed (its state, deliveries or counts)."""
    from crisis.messages.service import message_json

    db.session.flush()
    after_commit("message.updated", message_json(message), incident_id=message.incident_id)


def drop_user(user_id: int) -> None:
    """Disconnect every socket of one user; they must reconnect and pass the checks again."""
    sio = current_app.extensions.get("socketio")
    server = sio.server if sio is not None else None
    if server is None:
        return
    for sid, _eio_sid in list(server.manager.get_participants(NAMESPACE, user_room(user_id))):
        server.disconnect(sid, namespace=NAMESPACE)


def _emitter():
    """The web app's SocketIO, or (in a worker process) a write-only one on the message queue."""
    sio = current_app.extensions.get("socketio")
    if sio is not None and sio.server is not None:
        return sio
    emitter = current_app.extensions.get("crisis_emitter")
    if emitter is None:
        url = current_app.config.get("REDIS_URL")
        emitter = SocketIO(message_queue=url) if url else _NullEmitter()
        current_app.extensions["crisis_emitter"] = emitter
    return emitter


@sa.event.listens_for(Session, "after_commit")
def _emit_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, [])
    for event, payload, incident_id in pending:
        emit(event, payload, incident_id=incident_id)


@sa.event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction) -> None:
    session.info.pop(_PENDING, None)


class _NullEmitter:
    """No sockets and no message queue (a worker without Redis): nobody is listening."""

    def emit(self, *args, **kwargs) -> None:
        return None


def _user_may_view() -> bool:
    from crisis.auth.permissions import can

    return current_user.is_authenticated and can("incident.view", current_user.role)


def on_connect(auth=None):
    if not _user_may_view():
        return False  # refused: the client sees a connect_error
    join_room(user_room(current_user.id))
    join_room(TEAM_ROOM)
    return True


def on_join(data):
    """Join an incident's room, after checking the session again and that the incident exists."""
    from crisis.models import Incident

    if not _user_may_view():
        disconnect()
        return {"ok": False, "error": "unauthorized"}
    try:
        incident_id = int((data or {}).get("incident_id"))
    except (TypeError, ValueError):
        return {"ok": False, "error": "incident_id required"}
    if db.session.get(Incident, incident_id) is None:
        return {"ok": False, "error": "no such incident"}
    join_room(incident_room(incident_id))
    log.debug("socket %s joined incident %s", request.sid, incident_id)
    return {"ok": True, "room": incident_room(incident_id)}
