"""What every process shares through Redis: small marks ("a task is on its way", "I counted just
now") and the SMS rate limit's schedule (crisis.ratelimit).

Where the app runs without Redis (the embedded demo: one process) there is nobody to share with,
and `shared_redis()` is None.
"""

from __future__ import annotations

from flask import Flask, current_app


def shared_redis(app: Flask | None = None):
    """The app's (default: the current app's) Redis client for such marks and the SMS rate
    limit, one per process, with 2 s timeouts; None without Redis."""
    app = app or current_app
    url = app.config.get("REDIS_URL")
    if not url:
        return None
    client = app.extensions.get("crisis_shared_redis")
    if client is None:
        import redis

        client = app.extensions["crisis_shared_redis"] = redis.Redis.from_url(url, socket_timeout=2)
    return client
