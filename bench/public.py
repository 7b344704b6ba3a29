"""Public pages under load: requests/s of /, /incidents/<slug> and /status.json (conditional, 304)
against a bare Flask endpoint on the same gunicorn settings, measured in the same run.

Both apps run under gunicorn `-w 1 --threads N` on loopback; the crisis app on SQLite with a live
incident of --updates published updates (and a drill beside it). The load generator is bounded in
count and time: --processes x --connections keep-alive connections (http.client, one per thread),
--requests per endpoint, at most --max-seconds each. The bare endpoint is measured before and after
the app's endpoints and averaged. Target: each ratio >= 0.5. Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from common import ROOT, emit  # noqa: I001

from crisis.topology import BIN, Process, free_port, wait_until

BARE_APP = '''
from flask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    return "ok"
'''


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8, help="gunicorn --threads of both apps")
    parser.add_argument("--updates", type=int, default=10, help="published updates in the incident")
    parser.add_argument("--requests", type=int, default=4000, help="requests per endpoint")
    parser.add_argument("--processes", type=int, default=2, help="load generator processes")
    parser.add_argument("--connections", type=int, default=4,
                        help="keep-alive connections (threads) per load generator process")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="time bound per endpoint")
    parser.add_argument("--rounds", type=int, default=3,
                        help="bare, then each endpoint, this many times (background load drifts)")
    parser.add_argument("--warmup", type=int, default=200, help="requests first, not counted")
    parser.add_argument("--check-seconds", type=float, default=None,
                        help="PUBLIC_CHECK_SECONDS of the app (default: the app's default)")
    parser.add_argument("--no-fast-path", action="store_true",
                        help="every request through Flask (PUBLIC_FAST_PATH=false)")
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args()


# ---- the seeded database ---------------------------------------------------------------------


def app_env(workdir: Path, args) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRISIS_")}
    env.update({
        "CRISIS_DATABASE_URL": f"sqlite:///{workdir / 'crisis.db'}",
        "CRISIS_INSTANCE_PATH": str(workdir),
        "CRISIS_SECRET_KEY": "bench-secret",
        "CRISIS_AUDIT_KEY": "bench-audit",
        "CRISIS_PUBLIC_URL": "http://127.0.0.1",
        "PYTHONPATH": str(ROOT),
    })
    if args.check_seconds is not None:
        env["CRISIS_PUBLIC_CHECK_SECONDS"] = str(args.check_seconds)
    if getattr(args, "no_fast_path", False):
        env["CRISIS_PUBLIC_FAST_PATH"] = "false"
    return env


def seed(env: dict[str, str], updates: int) -> str:
    """A live incident with `updates` published updates (one corrected), a drill beside it."""
    import subprocess

    subprocess.run([str(BIN / "crisis"), "db", "upgrade"], env=env, check=True, capture_output=True)
    os.environ.update({k: v for k, v in env.items() if k.startswith("CRISIS_")})
    from channels.base import Outbound
    from crisis import create_app
    from crisis.extensions import db
    from crisis.incidents import service
    from crisis.models import Area, Message, MessageKind, MessageState, PublicPost
    from crisis.public.store import DatabasePostStore

    app = create_app()
    with app.app_context():
        area = Area(code="bench", name="Dalfsen", postcodes=["7721", "7722"], polygon=[[
            [6.246, 52.495], [6.27, 52.495], [6.27, 52.52], [6.246, 52.52], [6.246, 52.495]]])
        db.session.add(area)
        db.session.flush()
        live = service.create_incident(title="Grote brand Industrieweg", mode="live", actor_id=None,
                                       area_ids=[area.id], severity="Severe")
        drill = service.create_incident(title="Oefening hoogwater", mode="drill", actor_id=None)
        db.session.flush()
        start = datetime.now(UTC) - timedelta(hours=2)
        previous = None
        for i in range(updates + 1):
            incident = drill if i == updates else live
            kind = "alert" if i == 0 else ("correction" if i == updates - 1 else "update")
            body = (f"Update {i}: grote brand bij een bedrijf aan de Industrieweg. Er komt veel rook "
                    "vrij. Heeft u last van rook? Ga naar binnen. Houd ramen en deuren dicht.")
            message = Message(incident_id=incident.id, kind=MessageKind(kind),
                              state=MessageState.sent, headline=f"Update {i}", body=body,
                              instruction="Ga naar binnen. Houd ramen en deuren dicht.",
                              translations={"en": f"Update {i}: large fire on Industrieweg."},
                              channels=["website"], area_ids=[area.id],
                              supersedes_id=previous if kind == "correction" else None,
                              sending_at=start + timedelta(minutes=10 * i))
            db.session.add(message)
            db.session.flush()
            DatabasePostStore().save(Outbound(key=f"bench-{message.id}", text=body, meta={
                "message_id": message.id, "incident_slug": incident.slug,
                "translations": message.translations}))
            db.session.flush()
            db.session.query(PublicPost).filter(PublicPost.message_id == message.id).update(
                {"published_at": start + timedelta(minutes=10 * i)})
            previous = message.id
        db.session.commit()
        return live.slug


# ---- the load generator ------------------------------------------------------------------------


def _worker(port: int, path: str, headers: dict, count: int, connections: int, start_at: float,
            deadline: float, expect: tuple[int, ...], queue) -> None:
    results = []

    def run(share: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        done = errors = 0
        while time.time() < start_at:
            time.sleep(0.001)
        first = time.perf_counter()
        for _ in range(share):
            if time.time() > deadline:
                break
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status in expect:
                    done += 1
                else:
                    errors += 1
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        results.append((done, errors, first, time.perf_counter()))
        conn.close()

    shares = [count // connections + (1 if i < count % connections else 0) for i in range(connections)]
    threads = [threading.Thread(target=run, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    # perf_counter is per process but system-wide on Linux (CLOCK_MONOTONIC): comparable.
    queue.put((done, errors, min(r[2] for r in results), max(r[3] for r in results)))


def load(port: int, path: str, args, headers: dict | None = None, count: int | None = None,
         expect: tuple[int, ...] = (200,)) -> dict:
    """Requests/s of `count` GETs of `path`, spread over processes x connections."""
    count = args.requests if count is None else count
    queue = multiprocessing.Queue()
    start_at = time.time() + 0.3
    deadline = start_at + args.max_seconds
    per_process = [count // args.processes + (1 if i < count % args.processes else 0)
                   for i in range(args.processes)]
    processes = [multiprocessing.Process(target=_worker, args=(
        port, path, headers or {}, share, args.connections, start_at, deadline, expect, queue))
        for share in per_process]
    for process in processes:
        process.start()
    results = [queue.get(timeout=args.max_seconds + 60) for _ in processes]
    for process in processes:
        process.join()
    done = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    elapsed = max(r[3] for r in results) - min(r[2] for r in results)
    return {"requests": done, "errors": errors, "seconds": round(elapsed, 3),
            "rps": round(done / elapsed, 1) if elapsed > 0 else 0.0}


def gunicorn(name: str, workdir: Path, target: str, env: dict[str, str], threads: int,
             chdir: Path | None = None) -> tuple[Process, int]:
    port = free_port()
    args = [str(BIN / "gunicorn"), "-w", "1", "--threads", str(threads), "-b", f"127.0.0.1:{port}",
            "--timeout", "60"]
    if chdir is not None:
        args += ["--chdir", str(chdir)]
    process = Process(name, [*args, target], env, workdir / f"{name}.log").start()
    wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=2).status_code < 500, 60,
               name)
    return process, port


def main() -> None:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="crisis-bench-public-"))
    env = app_env(workdir, args)
    slug = seed(env, args.updates)
    (workdir / "bare_app.py").write_text(BARE_APP)
    bare_env = {k: v for k, v in env.items() if not k.startswith("CRISIS_")}
    processes = []
    try:
        crisis, crisis_port = gunicorn("crisis", workdir, "crisis.wsgi:app", env, args.threads)
        processes.append(crisis)
        bare, bare_port = gunicorn("bare", workdir, "bare_app:app", bare_env, args.threads,
                                   chdir=workdir)
        processes.append(bare)
        status = requests.get(f"http://127.0.0.1:{crisis_port}/status.json", timeout=5)
        etag = status.headers["ETag"]
        assert "Oefening" not in status.text, "a drill reached status.json"
        endpoints = {
            "/": ("/", {}, (200,)),
            "/incidents/<slug>": (f"/incidents/{slug}", {}, (200,)),
            "/status.json (If-None-Match, 304)": ("/status.json", {"If-None-Match": etag}, (304,)),
            "/status.json": ("/status.json", {}, (200,)),
        }
        for path, headers, expect in endpoints.values():  # warm both apps and the caches
            load(crisis_port, path, args, headers, count=args.warmup, expect=expect)
        load(bare_port, "/", args, count=args.warmup)
        per_round = max(1, args.requests // args.rounds)
        rounds = []
        for _ in range(args.rounds):
            # The bare endpoint before and after each round's endpoints, averaged: the machine's
            # background load drifts, and both sides of a ratio should see the same.
            before = load(bare_port, "/", args, count=per_round)
            measured = {name: load(crisis_port, path, args, headers, count=per_round, expect=expect)
                        for name, (path, headers, expect) in endpoints.items()}
            after = load(bare_port, "/", args, count=per_round)
            rounds.append(((before["rps"] + after["rps"]) / 2, measured,
                           before["errors"] + after["errors"]))
    finally:
        for process in processes:
            process.stop()
    results = {}
    for name in endpoints:
        ratios = sorted(m[name]["rps"] / bare for bare, m, _ in rounds if bare)
        results[name] = {
            "rps": round(statistics.median(m[name]["rps"] for _, m, _ in rounds), 1),
            "ratio": round(statistics.median(ratios), 2) if ratios else 0.0,
            "ratio_min": round(ratios[0], 2) if ratios else 0.0,
            "errors": sum(m[name]["errors"] for _, m, _ in rounds),
            "requests": sum(m[name]["requests"] for _, m, _ in rounds),
        }
    bare_rps = statistics.median(bare for bare, _, _ in rounds)
    if args.verbose:
        for name, result in results.items():
            print(f"{name:40} {result['rps']:8.1f} req/s  ratio {result['ratio']}", file=sys.stderr)
        print(f"{'bare Flask endpoint':40} {bare_rps:8.1f} req/s", file=sys.stderr)
    emit({
        "benchmark": "public",
        "gunicorn_threads": args.threads,
        "load": {"processes": args.processes, "connections_per_process": args.connections,
                 "requests_per_endpoint": args.requests, "rounds": args.rounds},
        "updates": args.updates,
        "fast_path": not args.no_fast_path,
        "bare": {"rps": round(bare_rps, 1), "errors": sum(e for _, _, e in rounds)},
        "endpoints": results,
        "target": 0.5,
        "ok": all(r["ratio"] >= 0.5 and r["errors"] == 0 for r in results.values()),
    })


if __name__ == "__main__":
    main()
