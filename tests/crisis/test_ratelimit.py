"""The SMS rate limiter of one process (the embedded default); the Redis one is tested beside
the Redis topology with the same checks."""

from __future__ import annotations

import threading
import time

from crisis.ratelimit import LocalRateLimiter


def pause_voids_reserved_slots(limiter) -> None:
    """A sender asleep until its slot looks again on waking: a pause meanwhile holds it too."""
    limiter.acquire(1)  # the next slot is now 0.2 s away
    woke = []
    sender = threading.Thread(target=lambda: woke.append((limiter.acquire(1), time.monotonic())))
    sender.start()
    time.sleep(0.05)  # the sender has reserved its slot and sleeps
    paused_at = time.monotonic()
    limiter.pause(0.6)
    sender.join(5)
    waited, at = woke[0]
    assert at - paused_at >= 0.55  # it went after the pause, not at its slot 0.15 s later
    assert waited >= 0.55


def test_a_pause_voids_slots_reserved_before_it():
    pause_voids_reserved_slots(LocalRateLimiter(rate=5))


def test_slots_are_spaced_by_the_rate():
    limiter = LocalRateLimiter(rate=50)
    waits = [limiter.reserve(1) for _ in range(10)]
    assert waits == sorted(waits) and waits[-1] - waits[0] > 8 * 0.02
