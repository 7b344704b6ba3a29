"""Serve the sandbox on its own, as the providers serve their APIs: with keep-alive connections.

Werkzeug's development server closes every connection after one response, so every SDK call
and every status callback paid for a new TCP connection and a new server thread, which the real
providers never charge. gunicorn's threaded worker keeps connections open; one process only,
because the sandbox keeps its whole record in memory.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from gunicorn.app.base import BaseApplication


class SandboxServer(BaseApplication):
    """gunicorn with one process of `threads` threads around an app built in that process."""

    def __init__(self, build: Callable[[], Flask], bind: str, threads: int = 32):
        """`build()` returns the sandbox app; it is called in the serving process, after the fork,
        so that the sandbox's own threads (clock, callback posters) start there."""
        self._build = build
        self._options = {
            "bind": bind,
            "workers": 1,
            "worker_class": "gthread",
            "threads": threads,
            "keepalive": 30,  # the SDK's pooled connections stay open between sends
            "timeout": 120,
            "graceful_timeout": 5,  # a stop should not wait on idle keep-alive connections
            "accesslog": None,
            "control_socket_disable": True,  # nothing manages the sandbox at runtime
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self._build()
