"""Fault tests: the production topology in real processes (gunicorn, Celery workers, beat, the
sandbox) with a Redis of their own on its own port, so they can kill and restart it.

Sizes are options so CI stays fast: --fault-recipients, --outage-seconds.
"""

from __future__ import annotations

import os
import shutil
import uuid

import pytest
import sqlalchemy as sa

from crisis.topology import Topology
from tests.conftest import need_service


@pytest.fixture
def recipients(request) -> int:
    return request.config.getoption("--fault-recipients")


@pytest.fixture
def outage_seconds(request) -> float:
    return request.config.getoption("--outage-seconds")


@pytest.fixture
def database_url():
    """A fresh database per topology: PostgreSQL when CRISIS_DATABASE_URL says so, else SQLite."""
    base = os.environ.get("CRISIS_DATABASE_URL", "")
    if not base.startswith("postgresql"):
        yield None  # the topology puts SQLite in its work folder
        return
    name = f"crisis_fault_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def make_topology(tmp_path, database_url):
    if shutil.which("redis-server") is None:
        need_service("redis-server", "the fault tests start and restart a Redis of their own")
    started = []

    def make(**kwargs) -> Topology:
        top = Topology(tmp_path / f"top{len(started)}", database_url=database_url, **kwargs)
        started.append(top)
        return top.start()

    yield make
    for top in started:
        top.stop()
