"""`crisis sandbox` serves as the providers do: one connection carries many API calls."""

from __future__ import annotations

import http.client
import os
import subprocess

import pytest

from crisis.topology import BIN, free_port, wait_until


@pytest.fixture
def sandbox_url(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRISIS_", "SANDBOX_"))}
    with open(tmp_path / "sandbox.log", "wb") as log:
        process = subprocess.Popen([str(BIN / "crisis"), "sandbox", "--port", str(port)],
                                   env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _status(port) == 200, 30, "sandbox")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


def _status(port: int) -> int | None:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/_sandbox/x/tweets")
        return connection.getresponse().status
    except OSError:
        return None


def test_one_connection_carries_several_requests(sandbox_url):
    connection = http.client.HTTPConnection(sandbox_url.removeprefix("http://"), timeout=5)
    connection.request("GET", "/_sandbox/x/tweets")
    first = connection.getresponse()
    first.read()
    socket_after_first = connection.sock
    connection.request("GET", "/_sandbox/x/tweets")
    second = connection.getresponse()
    second.read()
    assert first.status == second.status == 200
    assert first.getheader("Connection") != "close"
    assert socket_after_first is not None and connection.sock is socket_after_first

