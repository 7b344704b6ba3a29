"""Database connection settings: SQLite gets WAL and a busy timeout; pooled connections are
checked for life at checkout; schema by migrations."""

from __future__ import annotations

import select
import sqlite3
from pathlib import Path

import sqlalchemy as sa
from flask import Flask


def configure(app: Flask) -> None:
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    app.config.setdefault("SQLITE_BUSY_TIMEOUT_MS", 30_000)
    _SqlitePragmas.busy_ms = int(app.config["SQLITE_BUSY_TIMEOUT_MS"])


class _SqlitePragmas:
    busy_ms = 30_000


@sa.event.listens_for(sa.engine.Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    # WAL lets the console read while a worker writes; the timeout makes writers wait, not fail.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={_SqlitePragmas.busy_ms}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@sa.event.listens_for(sa.pool.Pool, "checkout")
def _drop_dead_connection(dbapi_connection, connection_record, connection_proxy) -> None:
    """Pessimistic disconnect handling without a round trip to the server.

    A pooled PostgreSQL connection is idle between checkouts: the server sends it nothing unless
    it went away (restart, terminated backend, idle timeout), and then its socket reads as closed.
    So a zero-timeout poll of the socket tells a dead connection apart before it is used; the
    pool replaces it (DisconnectionError). SQLAlchemy's pool_pre_ping runs `SELECT 1` instead: a
    round trip on every checkout (it was one in three of an inbound SMS webhook's).
    """
    if isinstance(dbapi_connection, sqlite3.Connection):
        return
    if not socket_idle(dbapi_connection):
        raise sa.exc.DisconnectionError("the database closed the connection")


def socket_idle(connection) -> bool:
    """True when the DB-API connection is open and nothing is waiting on its socket."""
    try:
        if connection.closed or getattr(connection, "broken", False):
            return False
        poller = select.poll()
        poller.register(connection.fileno(), select.POLLIN | select.POLLPRI)
    except Exception:  # noqa: BLE001  (no usable socket: not a connection to hand out)
        return False
    return not poller.poll(0)


def upgrade(app: Flask) -> None:
    """Bring the schema to the newest migration (what `crisis db upgrade` does)."""
    from flask_migrate import upgrade as alembic_upgrade

    with app.app_context():
        alembic_upgrade()
