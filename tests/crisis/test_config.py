"""Configuration: defaults < CRISIS_* environment < create_app's mapping; nothing at import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from crisis import ROOT, create_app

BASE = {"SECRET_KEY": "k", "AUDIT_KEY": "a"}


@pytest.fixture
def factory(app, tmp_path, monkeypatch):
    """create_app in a temporary instance folder, with no CRISIS_* variable from the shell.

    Every create_app makes its Celery the process default; the session app's is put back after.
    """
    for name in list(os.environ):
        if name.startswith("CRISIS_"):
            monkeypatch.delenv(name)

    def make(config=None, **extra):
        return create_app({"INSTANCE_PATH": str(tmp_path / "instance"), **(config or {}), **extra})

    yield make
    app.extensions["celery"].set_default()
    app.extensions["celery"].set_current()


def test_defaults(factory):
    app = factory(BASE)
    assert app.config["SESSION_IDLE_MINUTES"] == 30
    assert app.config["PERMANENT_SESSION_LIFETIME"] == timedelta(minutes=30)
    assert app.config["BABEL_DEFAULT_LOCALE"] == "nl"
    assert app.config["REDIS_URL"] is None
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("/instance/crisis.db")
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["SESSION_COOKIE_SECURE"] is False  # PUBLIC_URL is http by default


def test_environment_overrides_defaults(factory, monkeypatch):
    monkeypatch.setenv("CRISIS_SESSION_IDLE_MINUTES", "45")
    monkeypatch.setenv("CRISIS_PUBLIC_URL", "https://crisis.example.nl")
    monkeypatch.setenv("CRISIS_DATABASE_URL", "postgresql+psycopg://u@db.example/crisis")
    app = factory(BASE)
    assert app.config["SESSION_IDLE_MINUTES"] == 45
    assert app.config["PERMANENT_SESSION_LIFETIME"] == timedelta(minutes=45)
    assert app.config["PUBLIC_URL"] == "https://crisis.example.nl"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db.example/crisis"
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True


def test_mapping_overrides_environment(factory, monkeypatch):
    monkeypatch.setenv("CRISIS_SESSION_IDLE_MINUTES", "45")
    monkeypatch.setenv("CRISIS_PUBLIC_URL", "https://crisis.example.nl")
    app = factory(BASE, SESSION_IDLE_MINUTES=10, PUBLIC_URL="http://127.0.0.1:5000")
    assert app.config["SESSION_IDLE_MINUTES"] == 10
    assert app.config["PERMANENT_SESSION_LIFETIME"] == timedelta(minutes=10)
    assert app.config["SESSION_COOKIE_SECURE"] is False


def session_cookie(response) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert len(cookies) == 1, response.headers.getlist("Set-Cookie")
    return cookies[0]


def test_secure_cookie_when_public_url_is_https(factory):
    app = factory(BASE, PUBLIC_URL="https://crisis.example.nl")
    response = app.test_client().get("/login")  # the CSRF token puts something in the session
    cookie = session_cookie(response)
    assert "; Secure" in cookie
    assert "; HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_session_cookie_flags_over_http(client):
    cookie = session_cookie(client.get("/login"))
    assert "; HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_pages_without_a_session_set_no_cookie(client):
    """Residents' pages and probes stay cookie-free (and cacheable)."""
    for path in ("/", "/healthz"):
        response = client.get(path)
        assert "Set-Cookie" not in response.headers, path


def test_secrets_are_generated_once_into_the_instance_folder(factory, tmp_path):
    first = factory()
    second = factory()
    key_file = tmp_path / "instance" / "secret_key.key"
    audit_file = tmp_path / "instance" / "audit_key.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert audit_file.stat().st_mode & 0o777 == 0o600
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"] == key_file.read_text()
    assert first.config["AUDIT_KEY"] == audit_file.read_text()
    assert first.config["AUDIT_KEY"] != first.config["SECRET_KEY"]


def test_each_app_gets_its_own_socketio(app, factory):
    """A second create_app must not re-point the first app's Socket.IO server."""
    other = factory(BASE)
    assert other.extensions["socketio"] is not app.extensions["socketio"]
    assert app.extensions["socketio"].server is not other.extensions["socketio"].server


IMPORT_PROBE = r"""
import json, os, pkgutil, importlib, sys
import flask

made = []
original = flask.Flask.__init__
def spy(self, *args, **kwargs):
    made.append(args[0] if args else kwargs.get("import_name"))
    original(self, *args, **kwargs)
flask.Flask.__init__ = spy

import crisis
# Modules whose whole purpose is to build the app for a server: gunicorn's and celery's targets.
ENTRY_POINTS = {"crisis.wsgi", "crisis.celery_worker"}
imported = []
for info in pkgutil.walk_packages(crisis.__path__, "crisis."):
    if info.name.startswith("crisis.migrations") or info.name in ENTRY_POINTS:
        continue  # Alembic's env.py runs only inside Alembic
    importlib.import_module(info.name)
    imported.append(info.name)
import crisis.cli  # the console script's module

print(json.dumps({"apps": made, "imported": imported}))
"""


def test_importing_creates_no_app_and_no_files(tmp_path):
    instance = tmp_path / "instance"
    work = tmp_path / "cwd"
    work.mkdir()
    env = _clean_env(instance, PYTHONDONTWRITEBYTECODE="1")
    default_instance = ROOT / "instance"
    before = _listing(default_instance)
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "crisis.cli" in report["imported"] and "crisis.live" in report["imported"]
    assert report["apps"] == [], "importing crisis created a Flask app"
    assert not instance.exists(), "importing crisis created the instance folder"
    assert list(work.iterdir()) == [], "importing crisis wrote into the working directory"
    assert _listing(default_instance) == before


def _clean_env(instance: Path, **extra: str) -> dict[str, str]:
    """This environment without CRISIS_ settings, the project importable, `instance` as the
    instance folder: what a new process on this checkout starts from."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRISIS_")}
    env.update(CRISIS_INSTANCE_PATH=str(instance),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               **extra)
    return env


def _listing(folder: Path) -> dict[str, float] | None:
    if not folder.exists():
        return None
    return {p.name: p.stat().st_mtime for p in folder.iterdir()}


def test_tasks_go_to_the_broker_of_the_app_that_sends_them(factory):
    """Two apps in one process (tests, the fault harness): a task sent from one app's context
    lands in that app's queue, not in the queue of whichever app was created last."""
    from crisis.tasks.enqueue import send
    from crisis.tasks.housekeeping import heartbeat

    first, second = factory(BASE), factory(BASE)  # `second` is now Celery's default app

    def waiting(app) -> int:
        celery = app.extensions["celery"]
        with celery.connection_for_write() as conn:
            return conn.default_channel.queue_declare(celery.conf.task_default_queue).message_count

    with first.app_context():
        send(heartbeat)
    assert (waiting(first), waiting(second)) == (1, 0)


def test_the_embedded_pool_runs_tasks_under_its_own_celery_app(factory):
    """Celery's worker finds a task by name in the *current* Celery app; with a second app
    created later (the new default) the embedded pool must still use its own."""
    from celery import current_app as current_celery

    from crisis.embedded import OwnAppThreadPool

    first, _second = factory(BASE), factory(BASE)
    pool = OwnAppThreadPool(limit=1, app=first.extensions["celery"])
    pool.start()
    seen = []
    try:
        pool.on_apply(lambda: current_celery._get_current_object(), args=(),
                      callback=seen.append).wait(timeout=5)
    finally:
        pool.stop()
    assert seen == [first.extensions["celery"]]


def test_the_web_process_freezes_what_startup_built(tmp_path):
    """Full collections skip the app's long-lived objects: no ~100 ms pause of every thread."""
    env = _clean_env(tmp_path / "instance")
    probe = ("import gc; import crisis.wsgi; gc.collect(); "
             "print(gc.get_freeze_count(), len(gc.get_objects()))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    frozen, tracked = map(int, result.stdout.split()[-2:])
    assert frozen > 10 * tracked, (frozen, tracked)
