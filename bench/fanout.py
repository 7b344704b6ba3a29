"""Fan-out: from a message's approval to all four channels accepted, against the slowest single
channel call, on the production topology (Redis, a publish worker with concurrency >= 4).

The sandbox answers every X, Graph and Twilio call after --latency-ms. The baseline is measured in
the same run: the slowest channel's median time for one call through its real SDK.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime

from common import emit, summary, topology  # noqa: I001

from channels.base import Outbound
from channels.factory import build_channels


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4, help="publish worker processes")
    parser.add_argument("--kind", choices=["alert", "correction"], default="alert",
                        help="correction: time the correction of each message instead")
    parser.add_argument("--warmup", type=int, default=1,
                        help="messages sent first and not counted (worker processes start cold)")
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args()


def baseline(top, samples: int = 5) -> float:
    """Median time of one call per channel, straight through its SDK; the slowest channel wins."""

    class NoStore:
        def save(self, outbound):
            return "0"

        def withdraw(self, post_id):
            return None

        def find(self, key):
            return None

    channels = build_channels({"PUBLIC_URL": top.web_url, "SANDBOX_URL": top.sandbox_url},
                              drill=True, website_store=NoStore()).channels
    medians = {}
    for name in ("x", "facebook", "sms"):
        times = []
        for i in range(samples):
            outbound = Outbound(key=f"baseline-{name}-{i}", text=f"Baseline {name} {i} {time.time()}",
                                to="+31699990000", link="https://example.nl/u/1")
            start = time.perf_counter()
            channels[name].publish(outbound)
            times.append(time.perf_counter() - start)
        medians[name] = sorted(times)[len(times) // 2]
    return max(medians.values()), medians


def setup(top):
    editor = top.api_user("editor@bench.test", "editor")
    approver = top.api_user("approver@bench.test", "approver")
    # One area with one subscriber: the fan-out's parallelism is measured, not SMS throughput.
    area_id = top.seed_area("bench", 1, prefix="+3161234")
    return editor, approver, area_id


def send(editor, approver, incident, body, **extra):
    draft = editor.post(f"/incidents/{incident['id']}/messages", json={"body": body, **extra}).json()
    return approve(editor, approver, incident, draft)


def approve(editor, approver, incident, draft):
    submitted = editor.post(f"/messages/{draft['id']}/submit").json()
    return approver.post(f"/messages/{draft['id']}/approve", json={
        "approval_hash": submitted["approval_hash"], "confirmation": incident["title"]}).json()


def wait_accepted(api, message_id: int, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = api.get(f"/messages/{message_id}").json()
        if message["state"] in ("sent", "partially_failed", "failed"):
            return message
        time.sleep(0.05)
    raise TimeoutError(f"message {message_id} not sent after {timeout}s")


def elapsed(message: dict) -> float:
    return max(per_channel(message).values())


def per_channel(message: dict) -> dict[str, float]:
    approved = datetime.fromisoformat(message["approved_at"])
    return {d["channel"]: (datetime.fromisoformat(d["accepted_at"]) - approved).total_seconds()
            for d in message["deliveries"]}


def main() -> None:
    args = parse_args()
    top = topology(workers=[("publish,default", args.concurrency), ("bulk", 2)], beat=True)
    with top:
        for provider in ("x", "facebook", "twilio"):
            top.sandbox("POST", "/faults", json={"provider": provider,
                                                 "latency_ms": args.latency_ms})
        slowest, medians = baseline(top)
        editor, approver, area_id = setup(top)
        bench_area = editor.get("/incidents").json()  # warm the connection pool
        del bench_area
        incident = editor.post("/incidents", json={"title": "Benchmark", "mode": "live",
                                                   "area_ids": [area_id]}).json()
        times, failed, slowest_channels = [], 0, []
        for i in range(-args.warmup, args.messages):
            message = send(editor, approver, incident, f"Bericht {i}: houd ramen en deuren dicht.")
            message = wait_accepted(editor, message["id"])
            if args.kind == "correction":
                draft = editor.post(f"/messages/{message['id']}/correct",
                                    json={"body": f"CORRECTIE {i}: alleen ramen dicht."}).json()
                message = wait_accepted(editor, approve(editor, approver, incident, draft)["id"])
            if i < 0:
                continue
            if message["state"] != "sent":
                failed += 1
                if args.verbose:
                    print("not sent:", message["state"], [(d["channel"], d["state"], d["error"])
                                                          for d in message["deliveries"]], flush=True)
                continue
            times.append(elapsed(message))
            slowest_channels.append(max(per_channel(message), key=per_channel(message).get))
            if args.verbose:
                print(per_channel(message), flush=True)
    stats = summary(times)
    emit({
        "benchmark": "correction" if args.kind == "correction" else "fanout",
        "messages": args.messages, "latency_ms": args.latency_ms,
        "publish_concurrency": args.concurrency, "failed": failed,
        "baseline_slowest_call_s": round(slowest, 3),
        "baseline_per_channel_s": {k: round(v, 3) for k, v in medians.items()},
        "approval_to_accepted_s": stats,
        "ratio_median": round(stats["median"] / slowest, 2),
        "ratio_p95": round(stats["p95"] / slowest, 2),
        "target": 1.5,
        "slowest_channel_counts": {c: slowest_channels.count(c) for c in set(slowest_channels)},
    })


if __name__ == "__main__":
    main()
