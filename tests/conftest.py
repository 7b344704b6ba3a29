"""Shared fixtures: an app on SQLite (default) or PostgreSQL (CRISIS_DATABASE_URL), migrated once.

Under CI=true a service a test needs must be there: the test fails instead of skipping.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from crisis import create_app
from crisis.extensions import db

IN_CI = os.environ.get("CI") == "true"


def pytest_addoption(parser):
    """Sizes of the slow fault tests (tests/faults), so CI can run them small and fast."""
    parser.addoption("--fault-recipients", type=int, default=int(os.environ.get(
        "CRISIS_FAULT_RECIPIENTS", 5000)), help="recipients in the kill -9 and Redis tests")
    parser.addoption("--outage-seconds", type=float, default=float(os.environ.get(
        "CRISIS_OUTAGE_SECONDS", 30)), help="length of the X outage")


def need_service(name: str, reason: str):
    """Skip a test whose service is missing, or fail it under CI."""
    if IN_CI:
        pytest.fail(f"{name} is required in CI: {reason}")
    pytest.skip(f"{name} not available: {reason}")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis of CRISIS_REDIS_URL, answering; skipped (failed under CI) without one."""
    import redis

    url = os.environ.get("CRISIS_REDIS_URL")
    if not url:
        need_service("Redis", "set CRISIS_REDIS_URL")
    try:
        redis.Redis.from_url(url, socket_timeout=3).ping()
    except redis.RedisError as exc:
        need_service("Redis", f"{url}: {exc}")
    return url


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    """Argon2's production cost is not what the tests are about (test_auth checks it)."""
    from argon2 import PasswordHasher

    monkeypatch.setattr("crisis.models.user._hasher",
                        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture(scope="session")
def instance_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("instance")


@pytest.fixture(scope="session")
def app(instance_dir):
    config = {
        "INSTANCE_PATH": str(instance_dir),
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "AUDIT_KEY": "test-audit-key",
        "PUBLIC_URL": "http://127.0.0.1:5000",
        "LOGIN_RATE_LIMIT": "1000 per minute",
        "REDIS_URL": None,  # Redis-backed tests build their own app
    }
    application = create_app(config)
    with application.app_context():
        _fresh_schema()
    return application


def _fresh_schema() -> None:
    """Drop whatever a previous run left (PostgreSQL keeps it), then run every migration."""
    from flask_migrate import upgrade

    with db.engine.begin() as conn:
        existing = sa.MetaData()
        existing.reflect(conn)
        existing.drop_all(conn)
    upgrade()


@pytest.fixture(autouse=True)
def _clean_tables(request):
    """Each test starts with empty tables (and a reset audit head)."""
    yield
    if "app" not in request.fixturenames:
        return
    application = request.getfixturevalue("app")
    with application.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                if table.name == "audit_head":
                    conn.execute(table.update().values(seq=0, mac="", signature=""))
                else:
                    conn.execute(table.delete())


def patch_task(monkeypatch, app, task, apply_async) -> None:
    """Replace `apply_async` of the app's own instance of a shared task (what crisis sends)."""
    monkeypatch.setattr(app.extensions["celery"].tasks[task.name], "apply_async", apply_async)


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield
        db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


PASSWORD = "correct horse battery staple"


@pytest.fixture
def make_user(app):
    """Create a user with a role (and, for approvers and admins, an enrolled TOTP secret)."""
    from crisis.auth import accounts
    from crisis.models import Role

    def make(role: str = "editor", email: str | None = None, totp: bool | None = None):
        with app.app_context():
            role_enum = Role(role)
            user = accounts.create_user(email or f"{role}-{os.urandom(3).hex()}@test.nl", PASSWORD,
                                        role_enum)
            if totp if totp is not None else role_enum.needs_totp:
                from crisis.models.types import utcnow

                user.totp_secret = accounts.new_totp_secret()
                user.totp_enabled_at = utcnow()
            db.session.commit()
            return _UserRef(user.id, user.email, role, user.totp_secret)

    return make


class _UserRef:
    def __init__(self, id, email, role, totp_secret):
        self.id, self.email, self.role, self.totp_secret = id, email, role, totp_secret

    def code(self) -> str:
        import pyotp

        return pyotp.TOTP(self.totp_secret).now()


def csrf_token(client, path: str = "/login") -> str:
    """Read the CSRF token the page carries (the same token serves every form of the session)."""
    import re

    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf-token" content="([^"]+)"', html) or re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', html
    )
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client, user, *, totp: bool = True) -> None:
    """Log in through the real form, and pass the second factor when the user has one."""
    token = csrf_token(client)
    response = client.post("/login", data={"email": user.email, "password": PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    if totp and user.totp_secret:
        # Logging in starts a new session (against fixation), and with it a new CSRF token.
        token = csrf_token(client, "/account/totp")
        response = client.post("/account/totp", data={"code": user.code(), "csrf_token": token})
        assert response.status_code == 302


@pytest.fixture
def logged_in(client, make_user):
    """`logged_in("approver")` -> (client, user), logged in with the second factor passed."""

    def make(role: str = "editor", **kwargs):
        user = make_user(role, **kwargs)
        login(client, user)
        return client, user

    return make


class LiveServer:
    """The real app (with Socket.IO) served on a loopback port in a thread."""

    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()


@pytest.fixture(scope="session")
def live_server(app):
    server = LiveServer(app)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def running(app, live_server):
    """A real worker (threads, in-process broker) and a sandbox that calls back the live server.

    The app's channels are pointed at that sandbox, as in the demo.
    """
    from crisis.embedded import Embedded
    from tests.channels.conftest import RunningSandbox

    sandbox = RunningSandbox({"CONSOLE_URL": live_server.url, "TWILIO_SANDBOX_RATE": 1000})
    sandbox.__enter__()
    app.config.update(SANDBOX_URL=sandbox.url, PUBLIC_URL=live_server.url)
    app.extensions.pop("crisis_channels", None)
    embedded = Embedded(app, worker_concurrency=6)
    embedded.start()
    yield _Running(app, sandbox, live_server)
    sandbox.__exit__()


class _Running:
    def __init__(self, app, sandbox, server):
        self.app, self.sandbox, self.server = app, sandbox, server

    def wait_for(self, predicate, timeout: float = 20.0, interval: float = 0.05):
        """Poll `predicate` (run in an app context) until it returns something truthy."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            with self.app.app_context():
                value = predicate()
                db.session.remove()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {predicate.__name__}")
            time.sleep(interval)


@pytest.fixture
def admin(app, make_user):
    """A test client logged in as admin with the second factor, and its CSRF header."""
    client = app.test_client()
    login(client, make_user("admin"))
    return client, {"X-CSRFToken": csrf_token(client, "/console/")}
