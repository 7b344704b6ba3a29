"""A micro-cache in front of the app for the public pages: a repeated GET costs almost nothing.

During a crisis thousands of phones ask for the same few URLs. The first request of a URL after a
change goes through Flask as usual (views, after_request hooks, security headers); the fast path
keeps the exact status, headers and body Flask produced and answers the next identical requests
itself (or with 304 to a matching If-None-Match) until the change marker moves
(crisis.public.cache). Only anonymous, public, ETag'd 200 responses of the public URLs are kept;
anything with a session cookie, another method, an unusual query or a personal answer goes to Flask.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask
from werkzeug.http import parse_etags

from crisis.public.cache import public_cache

PATHS = ("/", "/status.json", "/feed.atom", "/cap.atom")
PREFIXES = ("/incidents/", "/cap/")
NOT_MODIFIED = "304 NOT MODIFIED"


@dataclass(frozen=True)
class Entry:
    marker: tuple
    status: str
    headers: list[tuple[str, str]]
    not_modified: list[tuple[str, str]]  # the same without the body's headers, for 304
    body: bytes
    etag: str

    def matches(self, if_none_match: str | None) -> bool:
        return bool(if_none_match) and parse_etags(if_none_match).contains_weak(self.etag)


class FastPath:
    """WSGI middleware around the app's own wsgi_app (installed by the public blueprint)."""

    def __init__(self, app: Flask, wrapped):
        self.app = app
        self.wrapped = wrapped

    def __call__(self, environ, start_response):
        key = self._key(environ)
        cache = self.app.extensions.get("crisis_public_cache") if key is not None else None
        if cache is None:
            return self.wrapped(environ, start_response)
        marker = cache.current_marker(self.app)
        entry = cache.fast_get(key, marker)
        if entry is None:
            return self._through_flask(environ, start_response, cache, key, marker)
        if entry.matches(environ.get("HTTP_IF_NONE_MATCH")):
            start_response(NOT_MODIFIED, entry.not_modified)
            return []
        start_response(entry.status, entry.headers)
        return [entry.body]

    def _key(self, environ) -> tuple | None:
        if environ.get("REQUEST_METHOD") != "GET":
            return None
        path = environ.get("PATH_INFO") or "/"
        if path not in PATHS and not path.startswith(PREFIXES):
            return None
        query = environ.get("QUERY_STRING", "")
        if query and not (query.startswith("lang=") and len(query) <= 10):
            return None
        config = self.app.config
        if config["SESSION_COOKIE_NAME"] + "=" in environ.get("HTTP_COOKIE", ""):
            return None  # a session may have chosen the language: Flask decides
        return (path, query, config["PUBLIC_URL"], config["PUBLIC_POLL_SECONDS"],
                config.get("PUBLIC_SITE_NAME"), config["PUBLIC_CACHE_SECONDS"])

    def _through_flask(self, environ, start_response, cache, key, marker):
        captured: dict = {}

        def capture(status, headers, exc_info=None):
            captured.update(status=status, headers=headers)

        # Ask without the validator, so Flask answers with the body the next requests need.
        conditional = environ.pop("HTTP_IF_NONE_MATCH", None)
        iterable = self.wrapped(environ, capture)
        try:
            body = b"".join(iterable)
        finally:
            if hasattr(iterable, "close"):
                iterable.close()
        status, headers = captured["status"], captured["headers"]
        entry = _entry(marker, status, headers, body)
        if entry is not None:
            cache.fast_put(key, entry)
            if entry.matches(conditional):
                start_response(NOT_MODIFIED, entry.not_modified)
                return []
        start_response(status, headers)
        return [body]


def _entry(marker: tuple, status: str, headers, body: bytes) -> Entry | None:
    if not status.startswith("200"):
        return None
    names = {name.lower(): value for name, value in headers}
    # `Vary: Cookie` is fine here: only requests without a session cookie are kept or answered.
    if ("set-cookie" in names or not names.get("cache-control", "").startswith("public")
            or "etag" not in names):
        return None
    not_modified = [(n, v) for n, v in headers if n.lower() not in ("content-length", "content-type")]
    return Entry(marker, status, list(headers), not_modified, body, names["etag"].strip('"'))


def install(app: Flask) -> None:
    """Put the fast path in front of the app's WSGI callable (and Flask-SocketIO's middleware)."""
    app.wsgi_app = FastPath(app, app.wsgi_app)
    with app.app_context():
        public_cache()  # created now, so the fast path finds it from the first request
