"""Reaction ingest: signed inbound-SMS webhooks at rising rates, on the production topology
(gunicorn, Redis, a worker, beat, the sandbox), until a rate is no longer sustained.

Each step sends --seconds worth of webhooks at one rate (open loop: each request leaves at its
scheduled time, from --processes x --threads senders), each signed the way Twilio signs them
(the app accepts the sandbox's auth token because the topology sets SANDBOX_URL) and sent from a
number that got the incident's SMS, so it is attached to that incident. A real python-socketio
client, logged in and joined to the incident's room, times webhook -> the reaction's arrival in a
`reactions.created` batch.

A rate is sustained when every webhook was answered 200, the senders kept to the schedule
(>= 95% of the rate), every webhook was stored exactly once and its event arrived. A ladder of
its own (--bare-rates, higher) is run against a bare Flask endpoint (gunicorn with the same
settings, same run), up to its first step not sustained, which measures its ceiling: the most
it answered per second in any step (a ladder step alone would understate it by up to a step).
`ratio` is the highest sustained ingest rate over that ceiling; `ratio_within_p99_target` takes
the highest rate that also kept p99 webhook -> event under 500 ms, the target's reading
(>= 0.3). Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import re
import subprocess
import sys
import threading
import time
from urllib.parse import urlencode, urlsplit

import requests
import socketio
import sqlalchemy as sa
from common import PASSWORD, ROOT, bare_server, emit, topology  # noqa: I001
from twilio.request_validator import RequestValidator

from channels.factory import sandbox_settings

BARE_APP = '''
from flask import Flask, request

app = Flask(__name__)


@app.post("/webhooks/twilio/sms")
def sms():
    request.form.get("Body")
    return "<Response/>", 200, {"Content-Type": "application/xml"}
'''

SEED = """
import sys
from crisis import create_app
from crisis.extensions import db
from crisis.models import (Area, Delivery, DeliveryState, Incident, IncidentMode, Message,
                           MessageState, RecipientState, SmsRecipient, Subscriber, SubscriberStatus)
senders = int(sys.argv[1])
app = create_app()
with app.app_context():
    area = Area(code="bench", name="Dalfsen", postcodes=["7721"])
    db.session.add(area); db.session.flush()
    incident = Incident(slug="kookadvies-bench", title="Kookadvies Dalfsen", mode=IncidentMode.live,
                        areas=[area])
    db.session.add(incident); db.session.flush()
    message = Message(incident_id=incident.id, state=MessageState.sent, channels=["sms"],
                      body="Kook uw kraanwater voor gebruik.", area_ids=[area.id])
    db.session.add(message); db.session.flush()
    db.session.add(Delivery(message_id=message.id, channel="sms", state=DeliveryState.accepted))
    for i in range(senders):
        subscriber = Subscriber(phone=f"+3162{i:07d}", area_ids=[area.id], status=SubscriberStatus.active)
        db.session.add(subscriber); db.session.flush()
        db.session.add(SmsRecipient(message_id=message.id, subscriber_id=subscriber.id,
                                    phone=subscriber.phone, state=RecipientState.delivered,
                                    provider_sid=f"SMout{i:027d}"))
    db.session.commit()
    print(incident.id)
"""

# What residents ask during a boil-water advice: a few themes, many wordings.
TEXTS = [
    "Mag ik het kraanwater drinken? ({n})",
    "Moet ik het water ook koken om mijn tanden te poetsen? ({n})",
    "Hoe lang geldt het kookadvies nog? ({n})",
    "Kan ik gewoon douchen met kraanwater? ({n})",
    "Waar kan ik flessen water halen? ({n})",
    "Klopt het dat het water vergiftigd is? ({n})",
    "Bedankt voor de snelle informatie! ({n})",
    "Help, mijn vader van 88 kan geen water halen en is ziek ({n})",
]
P99_TARGET_MS = 500
TOKEN = re.compile(r"\((\d+)\)")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="50,100,200,300,400,450,500,550,600,700,800,900,1000",
                        help="webhooks per second, one step each, lowest first (comma-separated)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each step")
    parser.add_argument("--drain-seconds", type=float, default=20.0,
                        help="after a step, how long to wait for the last events")
    parser.add_argument("--processes", type=int, default=4, help="sender processes")
    parser.add_argument("--threads", type=int, default=32, help="sender threads per process")
    parser.add_argument("--gunicorn-threads", type=int, default=32,
                        help="gunicorn --threads of the topology and of the bare endpoint")
    parser.add_argument("--worker-concurrency", type=int, default=4,
                        help="processes of the worker that runs process_reaction")
    parser.add_argument("--senders", type=int, default=500, help="phone numbers that got the SMS")
    parser.add_argument("--bare-rates", default="800,1200,1600,2000,2400,2800",
                        help="the bare endpoint's ladder: high enough that it is not capped")
    parser.add_argument("--max-total", type=int, default=40_000,
                        help="bound on the webhooks sent in one ladder")
    parser.add_argument("--db-pool", type=int, default=None,
                        help="SQLAlchemy pool_size of every process (default: the app's setting)")
    parser.add_argument("--web-processes", type=int, default=1,
                        help="gunicorn -w of the topology and of the bare endpoint")
    parser.add_argument("--skip-bare", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args()


# ---- the open-loop sender ------------------------------------------------------------------------


def _sender(port: int, path: str, jobs: list, threads: int, start_at: float, queue) -> None:
    """Send `jobs` [(offset, token, body, signature)] at start_at + offset; report each result."""
    lock = threading.Lock()
    pending = list(jobs)
    pending.reverse()
    results = []

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                if not pending:
                    break
                offset, token, body, signature = pending.pop()
            due = start_at + offset
            # One sleep to the due time (polling would load the machine being measured).
            if (wait := due - time.time()) > 0:
                time.sleep(wait)
            sent = time.time()
            status = 0
            for attempt in range(2):
                try:
                    conn.request("POST", path, body=body, headers={
                        "Content-Type": "application/x-www-form-urlencoded",
                        "X-Twilio-Signature": signature})
                    response = conn.getresponse()
                    response.read()
                    status = response.status
                    break
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                    # The server closed an idle keep-alive connection before this request: it
                    # was never read, so sending it again on a new connection is not a duplicate.
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    if attempt:
                        break
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    break
            results.append((token, sent, time.time(), status, sent - due))
        conn.close()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    queue.put(results)


def send_step(port: int, path: str, jobs: list, args) -> list:
    """Spread the jobs over processes (round robin) and run them; every result, unordered."""
    queue = multiprocessing.Queue()
    start_at = time.time() + 0.5
    shares = [jobs[i::args.processes] for i in range(args.processes)]
    processes = [multiprocessing.Process(target=_sender, args=(port, path, share, args.threads,
                                                                start_at, queue))
                 for share in shares if share]
    for process in processes:
        process.start()
    results = [r for _ in processes for r in queue.get(timeout=args.seconds + 600)]
    for process in processes:
        process.join()
    return results


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def jobs_for(step: int, rate: float, args, url: str, first_token: int, auth_token: str) -> list:
    """The step's signed webhooks, built before the clock starts (signing is not load)."""
    validator = RequestValidator(auth_token)
    settings = sandbox_settings()
    count = int(rate * args.seconds)
    jobs = []
    for i in range(count):
        token = first_token + i
        params = {
            "MessageSid": f"SM{step:04d}{token:028d}", "AccountSid": settings["TWILIO_ACCOUNT_SID"],
            "From": f"+3162{token % args.senders:07d}", "To": settings["TWILIO_FROM"],
            "Body": TEXTS[token % len(TEXTS)].format(n=token), "NumMedia": "0", "NumSegments": "1",
        }
        jobs.append((i / rate, token, urlencode(params).encode(), validator.compute_signature(url, params)))
    return jobs


# ---- the console's side: a logged-in socket in the incident's room --------------------------------


class Listener:
    def __init__(self, base: str, email: str, incident_id: int):
        http = requests.Session()
        page = http.get(base + "/login", timeout=30)
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
        http.post(base + "/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf},
                  timeout=30).raise_for_status()
        self.received: dict[int, float] = {}
        self.duplicates = 0
        self.lock = threading.Lock()
        self.client = socketio.Client(reconnection=True)
        self.client.on("reactions.created", self._on_batch, namespace="/console")
        self.client.connect(base, namespaces=["/console"], transports=["websocket"],
                            headers={"Cookie": f"session={http.cookies['session']}"}, wait_timeout=30)
        joined = self.client.call("join", {"incident_id": incident_id}, namespace="/console",
                                  timeout=30)
        if not joined.get("ok"):
            raise RuntimeError(f"could not join the incident's room: {joined}")

    def _on_batch(self, batch):
        now = time.time()
        for reaction in batch.get("reactions") or []:
            match = TOKEN.search(reaction.get("text") or "")
            if match:
                token = int(match.group(1))
                with self.lock:
                    if token in self.received:
                        self.duplicates += 1
                    else:
                        self.received[token] = now

    def close(self):
        self.client.disconnect()


# ---- one ladder ----------------------------------------------------------------------------------


def ladder(name: str, port: int, url: str, rates: list[float], args, *, listener=None, engine=None,
           auth_token: str = "") -> list[dict]:
    steps, token, total = [], 0, 0
    path = urlsplit(url).path
    for step, rate in enumerate(rates, start=1):
        count = int(rate * args.seconds)
        if total + count > args.max_total:
            break
        total += count
        jobs = jobs_for(step, rate, args, url, token, auth_token)
        sent_at = {}
        results = send_step(port, path, jobs, args)
        token += count
        ok = [r for r in results if r[3] == 200]
        for t, sent, _done, _status, _lag in results:
            sent_at[t] = sent
        first = min(r[1] for r in results)
        last = max(r[1] for r in results)
        achieved = (len(results) - 1) / (last - first) if last > first else float(len(results))
        response_ms = [(r[2] - r[1]) * 1000 for r in ok] or [0.0]
        result = {
            "rate": rate, "sent": len(results), "ok": len(ok),
            "achieved_rate": round(achieved, 1),
            "response_ms": {"p50": round(percentile(response_ms, 0.5), 1),
                            "p99": round(percentile(response_ms, 0.99), 1)},
            "schedule_lag_ms_p99": round(percentile([r[4] * 1000 for r in results], 0.99), 1),
        }
        sustained = len(ok) == count and achieved >= 0.95 * rate
        if listener is not None:
            deadline = time.time() + args.drain_seconds
            wanted = set(sent_at)
            while time.time() < deadline:
                with listener.lock:
                    if wanted <= listener.received.keys():
                        break
                time.sleep(0.05)
            with listener.lock:
                got = {t: listener.received[t] for t in wanted if t in listener.received}
            latency = [(got[t] - sent_at[t]) * 1000 for t in got]
            with engine.connect() as conn:
                stored, distinct = conn.execute(sa.text(
                    "SELECT count(*), count(DISTINCT provider_id) FROM reactions "
                    "WHERE provider_id LIKE :prefix AND incident_id IS NOT NULL"),
                    {"prefix": f"SM{step:04d}%"}).one()
            result.update({
                "stored": stored, "stored_distinct": distinct, "events": len(got),
                "duplicate_events": listener.duplicates,
                "latency_ms": {"p50": round(percentile(latency, 0.5), 1),
                               "p99": round(percentile(latency, 0.99), 1),
                               "max": round(max(latency), 1)} if latency else None,
            })
            sustained = sustained and stored == count == distinct and len(got) == count
        result["sustained"] = sustained
        steps.append(result)
        if args.verbose:
            print(name, result, file=sys.stderr, flush=True)
        if not sustained:
            break
        time.sleep(1.0)  # let the queue and the database settle between steps
    return steps


def best(steps: list[dict]) -> dict | None:
    sustained = [s for s in steps if s["sustained"]]
    return sustained[-1] if sustained else None


def main() -> None:
    args = parse_args()
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    bare_rates = [float(r) for r in args.bare_rates.split(",") if r.strip()]
    settings = {}
    if args.db_pool:
        settings["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_size": args.db_pool, "max_overflow": 8}
    top = topology(workers=[("publish,default", args.worker_concurrency), ("bulk", 1)], beat=True,
                   web_processes=args.web_processes, web_threads=args.gunicorn_threads,
                   settings=settings)
    auth_token = sandbox_settings()["TWILIO_AUTH_TOKEN"]
    with top:
        if args.verbose:
            print("workdir", top.workdir, file=sys.stderr, flush=True)
        out = subprocess.run([sys.executable, "-c", SEED, str(args.senders)], env=top.env(),
                             check=True, capture_output=True, text=True, cwd=ROOT).stdout
        incident_id = int(out.strip().splitlines()[-1])
        top.cli("users", "create", "watcher@bench.test", "--role", "viewer",
                   stdin=PASSWORD + "\n")
        engine = sa.create_engine(top.env()["CRISIS_DATABASE_URL"])
        listener = Listener(top.web_url, "watcher@bench.test", incident_id)
        url = top.web_url + "/webhooks/twilio/sms"
        port = urlsplit(top.web_url).port
        ingest_steps = ladder("ingest", port, url, rates, args, listener=listener, engine=engine,
                              auth_token=auth_token)
        listener.close()
        bare_steps = []
        if not args.skip_bare:
            bare, bare_port = bare_server(top.workdir, BARE_APP, args.gunicorn_threads,
                                               args.web_processes)
            try:
                bare_steps = ladder("bare", bare_port, f"http://127.0.0.1:{bare_port}/webhooks/twilio/sms",
                                    bare_rates, args, auth_token=auth_token)
            finally:
                bare.stop()
        engine.dispose()
    top_ingest, top_bare = best(ingest_steps), best(bare_steps)
    rate = top_ingest["rate"] if top_ingest else 0.0
    # Its ceiling: the most it answered per second in a step where it answered every webhook.
    bare_rate = max((s["achieved_rate"] for s in bare_steps if s["ok"] == s["sent"]), default=0.0)
    ratio = round(rate / bare_rate, 2) if bare_rate else None
    p99 = (top_ingest or {}).get("latency_ms", {}) or {}
    # The target's rate: the highest step with nothing lost and p99 under 500 ms.
    within = [s for s in ingest_steps if s["sustained"] and s["latency_ms"]["p99"] < P99_TARGET_MS]
    within_rate = within[-1]["rate"] if within else 0.0
    emit({
        "benchmark": "ingest",
        "database": top.env()["CRISIS_DATABASE_URL"].split(":")[0],
        "seconds_per_step": args.seconds, "rates": rates,
        "senders": {"processes": args.processes, "threads": args.threads},
        "gunicorn_threads": args.gunicorn_threads, "web_processes": args.web_processes,
        "worker_concurrency": args.worker_concurrency,
        "db_pool_size": args.db_pool or "app default",
        "sustained_rate": rate,
        "latency_ms_at_sustained": p99 or None,
        "bare_sustained_rate": top_bare["rate"] if top_bare else 0.0,
        "bare_ceiling_per_s": bare_rate,
        "ratio": ratio,
        "rate_within_p99_target": within_rate,
        "ratio_within_p99_target": round(within_rate / bare_rate, 2) if bare_rate else None,
        "bare_rates": bare_rates,
        # The bare endpoint took the top of its ladder: its real ceiling (and so the ratio's
        # denominator) may be higher.
        "bare_ladder_capped": bool(top_bare and top_bare["rate"] == bare_rates[-1]),
        "targets": {"ratio": 0.3, "p99_ms": P99_TARGET_MS},
        "ok": bool(bare_rate and within_rate / bare_rate >= 0.3),
        "ingest_steps": ingest_steps,
        "bare_steps": bare_steps,
    })


if __name__ == "__main__":
    main()
