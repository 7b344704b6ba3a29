"""Fixtures for channel tests: a real sandbox served over HTTP on a loopback port."""

from __future__ import annotations

import threading

import pytest
import requests
from werkzeug.serving import make_server

from channels.sandbox import create_sandbox_app


class RunningSandbox:
    """A sandbox app served by werkzeug in a thread; `url` is its origin."""

    def __init__(self, config=None):
        self.app = create_sandbox_app(config)
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def control(self, method: str, path: str, **kwargs):
        response = requests.request(method, f"{self.url}/_sandbox{path}", timeout=5, **kwargs)
        response.raise_for_status()
        return response.json()

    def fault(self, provider: str, **spec):
        return self.control("POST", "/faults", json={"provider": provider, **spec})


@pytest.fixture(scope="session")
def sandbox_session():
    with RunningSandbox() as running:
        yield running


@pytest.fixture
def sandbox(sandbox_session):
    """The session's sandbox, reset (state and faults) before each test."""
    sandbox_session.control("POST", "/reset")
    yield sandbox_session
