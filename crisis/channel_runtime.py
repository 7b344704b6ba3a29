"""The channels a task uses for an incident, built once per process and kind (live or drill)."""

from __future__ import annotations

import threading

from flask import current_app

from channels.factory import ChannelSet, build_channels
from crisis.models import Incident
from crisis.public.store import DatabasePostStore

_lock = threading.Lock()


def channels_for(incident: Incident) -> ChannelSet:
    """Drills always get the sandbox; the factory decides, whatever this process's config holds."""
    cache = current_app.extensions.setdefault("crisis_channels", {})
    key = "drill" if incident.is_drill else "live"
    with _lock:
        if key not in cache:
            cache[key] = build_channels(
                current_app.config, drill=incident.is_drill, website_store=DatabasePostStore()
            )
        return cache[key]
