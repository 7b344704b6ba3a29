"""Fault tests: the production topology in real processes (gunicorn, Celery workers, beat, the
sandbox) with a Redis of their own on its own port, so they can kill and restart it.

Sizes are options so CI stays fast: --fault-recipients, --outage-seconds.
"""

from __future__ import annotations

import os
import shutil

import pytest

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
    """PostgreSQL when CRISIS_DATABASE_URL says so (each topology makes a scratch database of its
    own there), else SQLite in the topology's folder."""
    base = os.environ.get("CRISIS_DATABASE_URL", "")
    return base if base.startswith("postgresql") else None


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
