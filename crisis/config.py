"""Configuration: defaults here, then CRISIS_-prefixed environment variables, then create_app's mapping."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any


class Defaults:
    """The embedded default: SQLite, in-memory broker, everything in one process."""

    SECRET_KEY: str | None = None  # generated into the instance folder when not configured
    AUDIT_KEY: str | None = None  # HMAC key of the audit chain, kept outside the database
    DATABASE_URL: str | None = None  # None: SQLite at instance/crisis.db
    REDIS_URL: str | None = None  # None: embedded Celery (memory transport), no message queue
    PUBLIC_URL = "http://127.0.0.1:5000"
    SANDBOX_URL: str | None = None  # when set, every live channel talks to the sandbox
    SANDBOX_TOKEN: str | None = None

    # pool_size is what a process keeps open, not what it opens: as many connections as it has
    # used at once, up to this. It covers gunicorn's 32 threads: past pool_size every checkout
    # opens and closes a connection (a new PostgreSQL backend), and under a burst of webhooks
    # that churn fed on itself (~250 new connections in 5 s at 550 webhooks/s with 12). A worker
    # keeps what its threads use (a batch's SMS_SEND_THREADS). PostgreSQL's max_connections must
    # cover them all (docker-compose.yml sets 200).
    # No pool_pre_ping: crisis.database checks each checkout's socket instead, without a round trip.
    SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {"pool_size": 32, "max_overflow": 8}
    SQLITE_BUSY_TIMEOUT_MS = 30_000

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_IDLE_MINUTES = 30
    SESSION_REFRESH_EACH_REQUEST = True

    WTF_CSRF_TIME_LIMIT = None  # the session's idle timeout already bounds a token's life
    RATELIMIT_HEADERS_ENABLED = True
    LOGIN_RATE_LIMIT = "5 per minute;30 per hour"

    BABEL_DEFAULT_LOCALE = "nl"
    BABEL_DEFAULT_TIMEZONE = "Europe/Amsterdam"
    LANGUAGES = ("nl", "en")

    # Every text of a drill starts with the marker of its language; GSM-7 only, so SMS stays cheap.
    DRILL_MARKERS = {"nl": "OEFENING:", "en": "EXERCISE:"}
    PUBLISH_MAX_ATTEMPTS = 8
    PUBLISH_BACKOFF_MAX_SECONDS = 300.0
    SWEEP_SECONDS = 2.0
    SMS_RATE_SEGMENTS_PER_SECOND = 100.0
    SMS_BATCH_SIZE = 100
    SMS_SEND_THREADS = 8  # concurrent provider calls per batch task

    # Runbooks (issue "Runbooks", part A): the YAML library, validated when the app starts.
    RUNBOOK_DIR = str(Path(__file__).resolve().parent.parent / "runbooks")

    # The public pages (crisis/public): what residents see, with no socket per resident.
    PUBLIC_SITE_NAME: str | None = None  # e.g. "Gemeente Dalfsen"; None: a generic title
    PUBLIC_POLL_SECONDS = 30  # how often a page with JavaScript asks /status.json for news
    PUBLIC_CACHE_SECONDS = 10  # Cache-Control max-age of the pages, feeds and status.json
    PUBLIC_CHECK_SECONDS = 1.0  # how often a process asks the database whether anything changed
    PUBLIC_FAST_PATH = True  # answer repeated public GETs in front of Flask (crisis.public.fastpath)
    PUBLIC_SNAPSHOT_DIR: str | None = None  # static copy of the pages; None: instance/public-snapshot
    SNAPSHOT_DEBOUNCE_SECONDS = 2.0  # a burst of publishes makes one snapshot
    CAP_SENDER: str | None = None  # CAP <sender>; None: crisis@<host of PUBLIC_URL>

    CELERY_EAGER = False  # tests of pure logic may run tasks inline
    HEARTBEAT_SECONDS = 10.0
    API_TOKEN_DAYS = 90


def finalize(config: dict[str, Any], instance_path: str) -> None:
    """Derive settings that depend on others once every source has been read."""
    instance = Path(instance_path)
    if not config.get("SQLALCHEMY_DATABASE_URI"):
        config["SQLALCHEMY_DATABASE_URI"] = config.get("DATABASE_URL") or (
            f"sqlite:///{instance / 'crisis.db'}"
        )
    public_https = str(config.get("PUBLIC_URL", "")).startswith("https://")
    # Not setdefault: Flask's own defaults already hold SESSION_COOKIE_SECURE = False.
    for name in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE"):
        config[name] = bool(config.get(name)) or public_https
    config["PERMANENT_SESSION_LIFETIME"] = timedelta(minutes=int(config["SESSION_IDLE_MINUTES"]))
    config.setdefault("RATELIMIT_STORAGE_URI", config.get("REDIS_URL") or "memory://")
    for name in ("SECRET_KEY", "AUDIT_KEY"):
        if not config.get(name):
            config[name] = _instance_secret(instance, name.lower())


def _instance_secret(instance: Path, name: str) -> str:
    """A random secret kept in a file of the instance folder, created on first use."""
    import secrets

    instance.mkdir(parents=True, exist_ok=True)
    path = instance / f"{name}.key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()
