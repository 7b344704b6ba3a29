"""Pooled connections: a dead one is replaced at checkout, without a round trip for live ones."""

from __future__ import annotations

import socket
import time

import pytest
import sqlalchemy as sa

from crisis.database import socket_idle
from tests.conftest import need_service


class _Connection:
    """What socket_idle reads of a DB-API connection: its socket and whether it is closed."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.closed = False

    def fileno(self) -> int:
        return self.sock.fileno()


def test_socket_idle_tells_a_live_connection_from_a_dead_one():
    ours, server = socket.socketpair()
    connection = _Connection(ours)
    try:
        assert socket_idle(connection)
        server.send(b"E")  # something the server sent unasked: an error before closing
        assert not socket_idle(connection)
        ours.recv(1)
        assert socket_idle(connection)
        server.close()  # the server went away
        assert not socket_idle(connection)
    finally:
        ours.close()
    assert not socket_idle(connection)  # no socket at all
    connection.closed = True
    assert not socket_idle(connection)


@pytest.mark.postgres
def test_a_terminated_backend_is_replaced_at_checkout(app):
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if not url.startswith("postgresql"):
        need_service("PostgreSQL", "set CRISIS_DATABASE_URL to a PostgreSQL database")
    pool = sa.create_engine(url, pool_size=1, max_overflow=0)  # no pool_pre_ping, as the app
    admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with pool.connect() as conn:
            first = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        with admin.connect() as conn:  # the pooled connection is idle now: end it server-side
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            deadline = time.monotonic() + 10
            while conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                               {"pid": first}).scalar():
                assert time.monotonic() < deadline, "the backend did not end"
                time.sleep(0.05)
        with pool.connect() as conn:  # without the checkout check: "terminating connection"
            second = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        assert second != first
    finally:
        pool.dispose()
        admin.dispose()
