"""With CRISIS_REDIS_URL the web process uses Redis as Celery broker and Socket.IO message queue:
an event a worker process emits reaches a browser's socket through Redis."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading

import pytest
import redis
import socketio
from werkzeug.serving import make_server

from crisis import create_app
from crisis.extensions import db
from crisis.ratelimit import RedisRateLimiter
from tests.crisis.test_live import Browser
from tests.crisis.test_ratelimit import pause_voids_reserved_slots

pytestmark = pytest.mark.redis
WAIT = 10


def test_worker_events_reach_sockets_through_redis(app, redis_url, make_user, tmp_path):
    web = create_app({**{k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "SECRET_KEY",
                                                   "AUDIT_KEY")},
                      "INSTANCE_PATH": str(tmp_path), "REDIS_URL": redis_url,
                      "LOGIN_RATE_LIMIT": "1000 per minute"})
    assert web.extensions["celery"].conf.broker_url == redis_url
    server = make_server("127.0.0.1", 0, web, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        user = make_user("viewer")
        with web.app_context():
            from crisis.incidents import service

            incident = service.create_incident(title="Redis test", mode="drill", actor_id=None)
            db.session.commit()
            incident_id = incident.id
        browser = Browser(base).login(user)
        received: queue.Queue = queue.Queue()
        client = socketio.Client()
        client.on("delivery.updated", lambda data: received.put(data), namespace="/console")
        client.connect(base, namespaces=["/console"], headers={"Cookie": browser.cookie},
                       transports=["websocket"], wait_timeout=WAIT)
        assert client.call("join", {"incident_id": incident_id}, namespace="/console",
                           timeout=WAIT)["ok"]
        # Another process, as a Celery worker is: a write-only emitter on the message queue.
        code = ("from flask_socketio import SocketIO; import sys; "
                "SocketIO(message_queue=sys.argv[1]).emit('delivery.updated', {'from': 'worker'}, "
                f"to='incident:{incident_id}', namespace='/console')")
        subprocess.run([sys.executable, "-c", code, redis_url], check=True, timeout=WAIT)
        assert received.get(timeout=WAIT) == {"from": "worker"}
        client.disconnect()
    finally:
        server.shutdown()


def test_the_redis_rate_limiter_schedules_one_global_rate(redis_url):
    client = redis.Redis.from_url(redis_url)
    limiter = RedisRateLimiter(client, rate=50, name=f"test-{os.getpid()}")
    other = RedisRateLimiter(redis.Redis.from_url(redis_url), rate=50, name=f"test-{os.getpid()}")
    waits = [(limiter if i % 2 else other).reserve(1) for i in range(20)]
    # Both limiters (two processes' worth) take slots from one schedule, 1/50 s apart: the
    # 20th reservation starts 19 slots after the first, whichever limiter made it.
    assert waits == sorted(waits)
    assert waits[-1] - waits[0] > 18 * 0.02
    client.delete(*limiter.keys)


def test_a_pause_voids_slots_reserved_before_it(redis_url):
    """A sender asleep until its slot looks again on waking: a 429 meanwhile makes it wait too."""
    limiter = RedisRateLimiter(redis.Redis.from_url(redis_url), rate=5, name=f"pause-{os.getpid()}")
    try:
        pause_voids_reserved_slots(limiter)
    finally:
        limiter.client.delete(*limiter.keys)

