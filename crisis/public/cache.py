"""The public pages' in-process cache, and what happens when public content changes.

Residents all ask for the same few pages, so each is rendered once per change: entries are kept
with the change marker (crisis.public.data.change_marker) they were rendered under and dropped
when it moves. The marker is asked of the database at most every PUBLIC_CHECK_SECONDS per process;
a change committed in this process (a publish, a withdrawal, an incident resolved) clears the cache
at once, and every change schedules the static snapshot.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context
from sqlalchemy.orm import Session

from crisis.extensions import db
from crisis.public import data

_CHANGED = "crisis_public_changed"
MAX_ENTRIES = 512


@dataclass(frozen=True)
class Rendered:
    """One rendered public resource: the exact bytes, their ETag and how to serve them."""

    body: bytes
    mimetype: str
    etag: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


class PublicCache:
    def __init__(self, max_entries: int = MAX_ENTRIES):
        self._lock = threading.Lock()
        self._build = threading.Lock()  # after a change, one thread renders while the rest wait
        self._entries: OrderedDict[Any, tuple[tuple, Any]] = OrderedDict()
        self._fast: OrderedDict[Any, Any] = OrderedDict()  # whole responses (crisis.public.fastpath)
        self._marker: tuple | None = None
        self._checked = 0.0
        self.max_entries = max_entries

    def marker(self, *, fresh: bool = False) -> tuple:
        """The current change marker, asked of the database at most every PUBLIC_CHECK_SECONDS.

        `fresh` asks the database now: entries rendered under the same marker stay valid.
        """
        interval = float(current_app.config["PUBLIC_CHECK_SECONDS"])
        now = time.monotonic()
        marker = self._marker
        if fresh or marker is None or now - self._checked >= interval:
            marker = data.change_marker()
            with self._lock:
                if marker != self._marker:
                    self._entries.clear()
                    self._fast.clear()
                    self._marker = marker
                self._checked = now
        return marker

    def current_marker(self, app: Flask) -> tuple:
        """`marker()` from outside any context: an app context is pushed only to ask the database."""
        marker = self._marker
        if marker is not None and time.monotonic() - self._checked < float(
                app.config["PUBLIC_CHECK_SECONDS"]):
            return marker
        with app.app_context():
            return self.marker()

    def fast_get(self, key: Any, marker: tuple) -> Any:
        entry = self._fast.get(key)
        return entry if entry is not None and entry.marker == marker else None

    def fast_put(self, key: Any, entry: Any) -> None:
        with self._lock:
            if entry.marker != self._marker:
                return  # rendered under a marker that has moved on since
            self._fast[key] = entry
            self._fast.move_to_end(key)
            while len(self._fast) > self.max_entries:
                self._fast.popitem(last=False)

    def _lookup(self, key: Any, marker: tuple) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == marker:
                self._entries.move_to_end(key)
                return entry[1]
        return None

    def get(self, key: Any, build: Callable[[tuple], Any]) -> Any:
        """The entry for `key` rendered under the current marker, building it once if needed."""
        marker = self.marker()
        value = self._lookup(key, marker)
        if value is not None:
            return value
        with self._build:  # a crowd arriving right after a change does not render N times
            value = self._lookup(key, marker)
            if value is not None:
                return value
            value = build(marker)
            if getattr(value, "status", 200) == 404:
                return value  # any path may be asked for: keep only what exists
            with self._lock:
                self._entries[key] = (marker, value)
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return value

    def invalidate(self) -> None:
        """Ask the database again on the next request (a change was committed here)."""
        with self._lock:
            self._marker = None
            self._entries.clear()
            self._fast.clear()


def public_cache() -> PublicCache:
    cache = current_app.extensions.get("crisis_public_cache")
    if cache is None:
        cache = current_app.extensions.setdefault("crisis_public_cache", PublicCache())
    return cache


def changed(session: Session | None = None) -> None:
    """Public content changed in this transaction: after commit, clear the cache and snapshot.

    Called by the website channel's store after a post is saved or withdrawn, and for any change of
    a post or a live incident seen at flush. Once per transaction.
    """
    session = session if session is not None else db.session()
    if session.info.get(_CHANGED) or not has_app_context():
        return
    session.info[_CHANGED] = True
    from crisis.tasks.enqueue import after_commit
    from crisis.tasks.snapshot import write_snapshot

    if session is db.session():
        after_commit(write_snapshot, countdown=float(current_app.config["SNAPSHOT_DEBOUNCE_SECONDS"]))


@sa.event.listens_for(Session, "before_flush")
def _watch(session: Session, flush_context, instances) -> None:
    from crisis.models import Incident, PublicPost

    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, PublicPost) or (isinstance(obj, Incident) and not obj.is_drill):
            changed(session)
            return


@sa.event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_CHANGED, None) and has_app_context():
        cache = current_app.extensions.get("crisis_public_cache")
        if cache is not None:
            cache.invalidate()


@sa.event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction) -> None:
    session.info.pop(_CHANGED, None)
