"""One global SMS rate limit, in segments per second, shared by every worker.

Each send reserves its slot: the limiter keeps the time at which the next segment may go (the
"theoretical arrival time" of GCRA) and moves it forward by cost / rate. Callers sleep until their
slot. With Redis the reservation is one Lua call, so all processes share one schedule; without
Redis (the embedded demo: one process) a lock does the same. A provider's 429 pauses everyone,
including senders already asleep until a slot they reserved before it: they look again on waking.
"""

from __future__ import annotations

import threading
import time

import redis

from crisis.coordination import shared_redis

_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local pause = tonumber(redis.call('GET', KEYS[2]) or '0')
local start = math.max(now, tat, pause)
local cost = tonumber(ARGV[1])
redis.call('SET', KEYS[1], start + cost, 'PX', math.ceil((start + cost - now) / 1000) + 60000)
return start - now
"""

_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_us = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_us > current then
  redis.call('SET', KEYS[1], until_us, 'PX', math.ceil(tonumber(ARGV[1]) / 1000) + 1000)
end
return until_us - now
"""

_PAUSED = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
return math.max(0, tonumber(redis.call('GET', KEYS[1]) or '0') - now)
"""


class RateLimiter:
    """`acquire(units)` blocks until those units may go; `pause(seconds)` halts all."""

    def acquire(self, units: float) -> float:
        """Sleep until a slot; a pause that began meanwhile voids it. Returns the time waited."""
        waited = 0.0
        while True:
            wait = self.reserve(units)
            if wait <= 0:
                return waited  # the reservation itself saw any pause
            time.sleep(wait)
            waited += wait
            paused = self.paused_for()
            if paused <= 0:
                return waited
            time.sleep(paused)
            waited += paused

    def reserve(self, units: float) -> float:
        """Reserve the next slot for `units`; return how long until it starts (no sleeping)."""
        raise NotImplementedError

    def paused_for(self) -> float:
        raise NotImplementedError

    def pause(self, seconds: float) -> None:
        raise NotImplementedError


class RedisRateLimiter(RateLimiter):
    def __init__(self, client: redis.Redis, rate: float, name: str = "sms"):
        self.client = client
        self.rate = float(rate)
        self.keys = [f"crisis:rate:{name}:tat", f"crisis:rate:{name}:pause"]
        self._reserve = client.register_script(_RESERVE)
        self._pause = client.register_script(_PAUSE)
        self._paused = client.register_script(_PAUSED)

    def reserve(self, units: float) -> float:
        cost_us = int(units / self.rate * 1_000_000)
        return int(self._reserve(keys=self.keys, args=[cost_us])) / 1_000_000

    def paused_for(self) -> float:
        return int(self._paused(keys=[self.keys[1]])) / 1_000_000

    def pause(self, seconds: float) -> None:
        self._pause(keys=[self.keys[1]], args=[int(seconds * 1_000_000)])


class LocalRateLimiter(RateLimiter):
    """The same schedule for one process (the embedded demo has no Redis)."""

    def __init__(self, rate: float):
        self.rate = float(rate)
        self._lock = threading.Lock()
        self._tat = 0.0
        self._pause_until = 0.0

    def reserve(self, units: float) -> float:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._tat, self._pause_until)
            self._tat = start + units / self.rate
        return start - now

    def paused_for(self) -> float:
        return max(0.0, self._pause_until - time.monotonic())

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._pause_until = max(self._pause_until, time.monotonic() + seconds)


def sms_limiter(app) -> RateLimiter:
    """The process's limiter for SMS, built once per app."""
    limiter = app.extensions.get("crisis_sms_limiter")
    if limiter is None:
        rate = float(app.config["SMS_RATE_SEGMENTS_PER_SECOND"])
        client = shared_redis(app)
        limiter = RedisRateLimiter(client, rate) if client else LocalRateLimiter(rate)
        app.extensions["crisis_sms_limiter"] = limiter
    return limiter
