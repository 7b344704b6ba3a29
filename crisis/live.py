"""The one place that emits Socket.IO events, and the console namespace's connection rules.

Socket.IO only notifies: every page rebuilds its state from the database on (re)connect. Workers
emit through the Redis message queue (a write-only SocketIO); the web process owns the sockets.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, request
from flask_login import current_user
from flask_socketio import SocketIO, disconnect, join_room

from crisis.extensions import db, socketio

NAMESPACE = "/console"
TEAM_ROOM = "team"
log = logging.getLogger(__name__)


def incident_room(incident_id: int) -> str:
    """The room every console viewing one incident joins."""
    return f"incident:{incident_id}"


def user_room(user_id: int) -> str:
    """A room per user, so their sockets can be found and dropped on logout or role change."""
    return f"user:{user_id}"


def emit(event: str, payload: dict[str, Any], *, incident_id: int | None = None) -> None:
    """Send `event` to one incident's room, or to the whole team when no incident is given."""
    room = incident_room(incident_id) if incident_id is not None else TEAM_ROOM
    _emitter().emit(event, payload, to=room, namespace=NAMESPACE)


def drop_user(user_id: int) -> None:
    """Disconnect every socket of one user; they must reconnect and pass the checks again."""
    server = socketio.server
    if server is None:
        return
    for sid, _eio_sid in list(server.manager.get_participants(NAMESPACE, user_room(user_id))):
        server.disconnect(sid, namespace=NAMESPACE)


def _emitter():
    """The web app's SocketIO, or (in a worker process) a write-only one on the message queue."""
    if socketio.server is not None:
        return socketio
    emitter = current_app.extensions.get("crisis_emitter")
    if emitter is None:
        url = current_app.config.get("REDIS_URL")
        emitter = SocketIO(message_queue=url) if url else _NullEmitter()
        current_app.extensions["crisis_emitter"] = emitter
    return emitter


class _NullEmitter:
    """No sockets and no message queue (a worker without Redis): nobody is listening."""

    def emit(self, *args, **kwargs) -> None:
        return None


def _user_may_view() -> bool:
    from crisis.auth.permissions import can

    return current_user.is_authenticated and can("incident.view", current_user.role)


@socketio.on("connect", namespace=NAMESPACE)
def on_connect(auth=None):
    if not _user_may_view():
        return False  # refused: the client sees a connect_error
    join_room(user_room(current_user.id))
    join_room(TEAM_ROOM)
    return True


@socketio.on("join", namespace=NAMESPACE)
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
