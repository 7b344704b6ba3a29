"""SMS fan-out at scale: achieved rate against the configured rate R (segments per second), on the
production topology (Redis, a `publish` worker and a `bulk` worker, the sandbox at R).

Also measured in the same run: the ceiling of the same path with no limit, and the sandbox's own
ceiling (the real Twilio SDK sending straight to it from threads, no database) — the physical
limit of this machine. Beside it, the sandbox's ceiling for tracked messages: the same sends with
a status callback each, answered by a bare Flask endpoint under gunicorn, counted until every
callback (sent, delivered) arrived. No path that tracks delivery can beat that one: it is the
path with nothing of the console's own work in it. Duplicates and lost messages are counted from
the sandbox's own records.
"""

from __future__ import annotations

import argparse
import collections
import threading
import time
from datetime import datetime

import requests
from common import bare_server, emit, topology, wait_until_quiet  # noqa: I001

from channels.base import Outbound
from channels.factory import sandbox_settings
from channels.sms import SmsChannel


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=100.0, help="R, segments per second")
    # As docker-compose.yml runs the bulk worker: 2 processes x 32 send threads.
    parser.add_argument("--bulk-concurrency", type=int, default=2)
    parser.add_argument("--send-threads", type=int, default=32, help="SMS_SEND_THREADS")
    parser.add_argument("--ceiling-recipients", type=int, default=2_000,
                        help="recipients for the unlimited-path run, with the sandbox ceiling (0: skip both)")
    parser.add_argument("--sandbox-ceiling-seconds", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=3600.0)
    return parser.parse_args()


PREFIX = "+3162"  # the recipients' numbers; the sandbox-ceiling run sends to others


def seed(top, count: int) -> int:
    return top.seed_area("bench", count, prefix=PREFIX)


def run_fanout(top, recipients: int, timeout: float) -> dict:
    editor = top.api_user("editor@bench.test", "editor")
    approver = top.api_user("approver@bench.test", "approver")
    area_id = seed(top, recipients)
    incident = editor.post("/incidents", json={"title": "SMS benchmark", "mode": "live",
                                               "area_ids": [area_id]}).json()
    body = "Grote brand bij de Industrieweg in Dalfsen. Ga naar binnen en houd ramen dicht."
    draft = editor.post(f"/incidents/{incident['id']}/messages",
                        json={"body": body, "channels": ["sms"], "area_ids": [area_id]}).json()
    submitted = editor.post(f"/messages/{draft['id']}/submit").json()
    assert submitted["recipient_count"] == recipients, submitted["recipient_count"]
    started = time.monotonic()
    approver.post(f"/messages/{draft['id']}/approve", json={
        "approval_hash": submitted["approval_hash"], "confirmation": incident["title"]})
    while time.monotonic() - started < timeout:
        message = editor.get(f"/messages/{draft['id']}").json()
        if message["state"] in ("sent", "partially_failed", "failed", "stopped"):
            break
        time.sleep(1.0)
    return {"message": message, "wall_s": time.monotonic() - started}


def sandbox_records(top) -> dict:
    sent = top.sandbox("GET", "/twilio/messages")
    sent = sent["messages"] if isinstance(sent, dict) else sent
    outbound = [m for m in sent if m.get("direction", "outbound-api").startswith("outbound")
                and m["to"].startswith(PREFIX)]
    per_number = collections.Counter(m["to"] for m in outbound)
    times = sorted(datetime.fromisoformat(m["created_at"].replace("Z", "+00:00")).timestamp()
                   for m in outbound)
    segments = sum(int(m.get("segments") or 1) for m in outbound)
    return {"per_number": per_number, "times": times, "segments": segments, "count": len(outbound)}


def measure(top, recipients: int, rate: float, timeout: float) -> dict:
    outcome = run_fanout(top, recipients, timeout)
    records = sandbox_records(top)
    counts = outcome["message"].get("sms", {})
    span = (records["times"][-1] - records["times"][0]) if len(records["times"]) > 1 else 0.0
    # n segments spaced 1/R apart span (n - 1)/R seconds.
    achieved = (records["segments"] - 1) / span if span else 0.0
    faults = top.sandbox("GET", "/faults").get("twilio", {})
    return {
        "recipients": recipients,
        "state": outcome["message"]["state"],
        "achieved_segments_per_s": round(achieved, 1),
        "ratio": round(achieved / rate, 3) if rate else None,
        "duplicates": sum(n - 1 for n in records["per_number"].values() if n > 1),
        "lost": recipients - len(records["per_number"]) - counts.get("unknown", 0),
        "unknown": counts.get("unknown", 0),
        "responses_429": faults.get("rate_limit", 0),
        "wall_s": round(outcome["wall_s"], 1),
        "counts": {k: v for k, v in counts.items() if v},
    }


def sandbox_ceiling(top, seconds: float, threads: int = 16, callback: str | None = None) -> int:
    """Send to the sandbox from `threads` threads of the real SDK for `seconds`; return how many
    it accepted. With `callback`, each message asks for status callbacks there."""
    settings = sandbox_settings()
    sent = [0] * threads
    stop_at = time.monotonic() + seconds

    def blast(index: int) -> None:
        channel = SmsChannel.from_settings(settings, top.sandbox_url)
        n = 0
        while time.monotonic() < stop_at:
            channel.publish(Outbound(key=f"c{index}-{n}", text="Ceiling test", status_callback=callback,
                                     to=f"+3163{index:02d}{n:05d}"))
            n += 1
        sent[index] = n

    workers = [threading.Thread(target=blast, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(sent)


def plain_ceiling(top, seconds: float) -> float:
    """Messages per second the sandbox takes from the real SDK with no database in the way."""
    start = time.monotonic()
    return sandbox_ceiling(top, seconds) / (time.monotonic() - start)


# Answers Twilio's status callbacks and counts them; nothing else.
BARE_STATUS_APP = """
import threading
from flask import Flask, request
app = Flask(__name__)
lock, received = threading.Lock(), [0]
@app.post("/webhooks/twilio/status")
def status():
    request.form.get("MessageStatus")
    with lock:
        received[0] += 1
    return "", 204
@app.get("/received")
def count():
    return {"received": received[0]}
"""


def tracked_ceiling(top, seconds: float, timeout: float = 120.0) -> float:
    """Messages per second with delivery tracked: sent with a status callback each to a bare
    endpoint, until their callbacks (sent and delivered: two each) all arrived there."""
    bare, port = bare_server(top.workdir, BARE_STATUS_APP)
    try:
        start = time.monotonic()
        sent = sandbox_ceiling(top, seconds, callback=f"http://127.0.0.1:{port}/webhooks/twilio/status")
        while time.monotonic() - start < seconds + timeout:
            received = requests.get(f"http://127.0.0.1:{port}/received", timeout=10).json()["received"]
            if received >= 2 * sent:
                break
            time.sleep(0.05)
        return sent / (time.monotonic() - start)
    finally:
        bare.stop()


def main() -> None:
    args = parse_args()
    workers = [("publish,default", 4), ("bulk", args.bulk_concurrency)]
    limited = topology(workers=workers, sandbox_settings={"TWILIO_SANDBOX_RATE": args.rate},
                       settings={"SMS_RATE_SEGMENTS_PER_SECOND": args.rate,
                                 "SMS_BATCH_SIZE": 50, "SMS_SEND_THREADS": args.send_threads})
    with limited:
        result = measure(limited, args.recipients, args.rate, args.timeout)
    path, ceiling_sandbox, ceiling_tracked = None, None, None
    if args.ceiling_recipients:
        unlimited = topology(workers=workers, sandbox_settings={"TWILIO_SANDBOX_RATE": 0},
                             settings={"SMS_RATE_SEGMENTS_PER_SECOND": 1_000_000,
                                       "SMS_BATCH_SIZE": 50, "SMS_SEND_THREADS": args.send_threads})
        with unlimited:
            # The sandbox's ceilings first, on a quiet machine and a warm sandbox (a second of
            # sends, not counted): after a fan-out it is busy with status callbacks for a while,
            # and right after the start (the last run's processes still stopping, these still
            # starting) its ceiling read 880-900/s instead of 1120-1450/s.
            wait_until_quiet()
            sandbox_ceiling(unlimited, 1.0)
            ceiling_sandbox = plain_ceiling(unlimited, args.sandbox_ceiling_seconds)
            ceiling_tracked = tracked_ceiling(unlimited, args.sandbox_ceiling_seconds)
            path = measure(unlimited, args.ceiling_recipients, 0, args.timeout)
    path_ceiling = path["achieved_segments_per_s"] if path else None
    emit({
        "benchmark": "sms", "rate": args.rate, **result,
        "path_ceiling_segments_per_s": path_ceiling,
        "path_duplicates": path["duplicates"] if path else None,
        "path_lost": path["lost"] if path else None,
        "sandbox_ceiling_per_s": round(ceiling_sandbox, 1) if path else None,
        "path_ceiling_vs_sandbox": round(path_ceiling / ceiling_sandbox, 3) if path else None,
        "sandbox_tracked_ceiling_per_s": round(ceiling_tracked, 1) if path else None,
        "tracked_vs_sandbox": round(ceiling_tracked / ceiling_sandbox, 3) if path else None,
        "path_ceiling_vs_tracked": round(path_ceiling / ceiling_tracked, 3) if path else None,
        "targets": {"ratio": ">= 0.9 where R < path ceiling", "path_vs_sandbox": ">= 0.5",
                    "duplicates": 0, "lost": 0},
    })


if __name__ == "__main__":
    main()
