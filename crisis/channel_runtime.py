"""The channels a task uses for an incident, built once per process and kind (live or drill)."""

from __future__ import annotations

import logging
import threading

from flask import current_app

from channels.factory import ChannelSet, build_channels
from crisis.models import Incident
from crisis.public.store import DatabasePostStore

_lock = threading.Lock()
log = logging.getLogger(__name__)


def channels_for(incident: Incident) -> ChannelSet:
    """Drills always get the sandbox; the factory decides, whatever this process's config holds."""
    return channel_set(drill=incident.is_drill)


def live_channels() -> ChannelSet:
    """The live channels outside any incident: subscription texts, the X poller."""
    return channel_set(drill=False)


def channel_set(*, drill: bool) -> ChannelSet:
    """The live or the drill channels of this process, built once."""
    cache = current_app.extensions.setdefault("crisis_channels", {})
    key = "drill" if drill else "live"
    with _lock:
        if key not in cache:
            settings = dict(current_app.config)
            if drill and not (settings.get("DRILL_SANDBOX_URL") or settings.get("SANDBOX_URL")):
                settings["DRILL_SANDBOX_URL"] = own_sandbox_url()
            cache[key] = build_channels(settings, drill=drill, website_store=DatabasePostStore())
        return cache[key]


def own_sandbox_url() -> str:
    """No sandbox configured: this process starts one for its drills rather than refuse them.

    In production configure CRISIS_DRILL_SANDBOX_URL (the compose file runs one), so that every
    process of a drill talks to the same sandbox and the exercise leader sees one record.
    """
    app = current_app._get_current_object()
    url = app.extensions.get("crisis_own_sandbox")
    if url is None:
        from werkzeug.serving import make_server

        from channels.sandbox import create_sandbox_app

        sandbox = create_sandbox_app({"CONSOLE_URL": app.config["PUBLIC_URL"]})
        server = make_server("127.0.0.1", 0, sandbox, threaded=True)
        threading.Thread(target=server.serve_forever, name="crisis-drill-sandbox",
                         daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}"
        app.extensions["crisis_own_sandbox"] = url
        log.warning("no sandbox configured: drills use one started in this process at %s", url)
    return url
