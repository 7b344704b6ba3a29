"""Small marks shared by every process through Redis: "a task is on its way", "I counted just now".

Where the app runs without Redis (the embedded demo: one process) there is nobody to share with,
and `shared_redis()` is None.
"""

from __future__ import annotations

from flask import current_app


def shared_redis():
    """The app's Redis client for such marks (2 s timeouts), or None without Redis."""
    url = current_app.config.get("REDIS_URL")
    if not url:
        return None
    client = current_app.extensions.get("crisis_shared_redis")
    if client is None:
        import redis

        client = current_app.extensions["crisis_shared_redis"] = redis.Redis.from_url(
            url, socket_timeout=2)
    return client
