"""The production topology on one machine: Redis, the sandbox, gunicorn, Celery workers and beat,
each in its own process. Benchmarks and fault tests start it; nothing in the app imports it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
import sqlalchemy as sa

BIN = Path(sys.executable).parent
PASSWORD = "topology password 2026"

# Seeds one area with `count` active subscribers in a process of the topology's own environment.
SEED_AREA = """
import sys
from crisis import create_app
from crisis.extensions import db
from crisis.models import Area, Subscriber, SubscriberStatus
code, count, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
app = create_app()
with app.app_context():
    area = Area(code=code, name=code.capitalize(), postcodes=["7721"])
    db.session.add(area); db.session.flush()
    rows = [{"phone": f"{prefix}{i:07d}", "area_ids": [area.id], "language": "nl",
             "status": SubscriberStatus.active, "synthetic": False, "consent": {}}
            for i in range(count)]
    for start in range(0, count, 5000):
        db.session.execute(db.insert(Subscriber), rows[start:start + 5000])
    db.session.commit()
    print(area.id)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except (requests.RequestException, OSError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout:.0f}s")
        time.sleep(interval)


@dataclass
class Process:
    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen | None = None

    def start(self) -> Process:
        handle = open(self.log, "ab")  # noqa: SIM115  (closed with the process)
        # Its own process group, so a kill reaches the Celery pool's children too.
        self.popen = subprocess.Popen(self.args, env=self.env, stdout=handle, stderr=handle,
                                      start_new_session=True)
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            self.popen.wait(timeout=30)

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


class ApiClient(requests.Session):
    """A bearer-token client for /api/v1 that raises on any error answer."""

    def __init__(self, base: str, token: str):
        super().__init__()
        self.base = base
        self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method, url, *args, **kwargs):
        response = super().request(method, self.base + url, *args, timeout=30, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {url}: {response.status_code} {response.text[:300]}")
        return response


@dataclass
class Topology:
    """`with Topology(workdir, ...) as t:` starts everything and waits until /healthz is ok."""

    workdir: Path
    # None: SQLite in workdir (shared by the processes, WAL). A PostgreSQL URL names the server:
    # the topology runs on a scratch database of its own there, dropped when it stops.
    database_url: str | None = None
    redis_url: str | None = None  # None: a redis-server of our own on a free port
    workers: list[tuple[str, int]] = field(
        default_factory=lambda: [("publish,default", 4), ("bulk", 4)])
    beat: bool = True
    # gunicorn -w. Past 1, Socket.IO clients must use WebSocket: polling needs a sticky proxy.
    web_processes: int = 1
    web_threads: int = 32  # gunicorn --threads, as in docker-compose.yml
    sandbox_settings: dict[str, object] = field(default_factory=dict)
    settings: dict[str, object] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)
    server_url: str | None = None  # the PostgreSQL server of the scratch database, while it runs

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.web_port, self.sandbox_port = free_port(), free_port()
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.own_redis = self.redis_url is None
        if self.own_redis:
            self.redis_port = free_port()
            self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"

    # Environment shared by every process of the topology.
    def env(self) -> dict[str, str]:
        import json

        env = {k: v for k, v in os.environ.items() if not k.startswith(("CRISIS_", "SANDBOX_"))}
        env.update({
            "CRISIS_DATABASE_URL": self.database_url or f"sqlite:///{self.workdir / 'crisis.db'}",
            "CRISIS_REDIS_URL": self.redis_url,
            "CRISIS_SANDBOX_URL": self.sandbox_url,
            "CRISIS_PUBLIC_URL": self.web_url,
            "CRISIS_INSTANCE_PATH": str(self.workdir),
            "CRISIS_SECRET_KEY": "topology-secret",
            "CRISIS_AUDIT_KEY": "topology-audit",
            "CRISIS_SWEEP_SECONDS": "1",
            "CRISIS_STALE_SENDING_SECONDS": "15",
        })
        for key, value in self.settings.items():
            env[f"CRISIS_{key}"] = json.dumps(value) if not isinstance(value, str) else value
        for key, value in self.sandbox_settings.items():
            env[f"SANDBOX_{key}"] = json.dumps(value) if not isinstance(value, str) else value
        return env

    def _process(self, name: str, args: list[str]) -> Process:
        process = Process(name, args, self.env(), self.workdir / f"{name}.log").start()
        self.processes[name] = process
        return process

    def start(self) -> Topology:
        self._create_scratch_database()
        if self.own_redis:
            self.start_redis()
        upgrade = subprocess.run([str(BIN / "crisis"), "db", "upgrade"], env=self.env(),
                                 capture_output=True, text=True)
        if upgrade.returncode:
            raise RuntimeError(f"crisis db upgrade failed:\n{upgrade.stderr[-3000:]}")
        self._process("sandbox", [str(BIN / "crisis"), "sandbox", "--port", str(self.sandbox_port),
                                  "--console-url", self.web_url])
        self._process("web", [str(BIN / "gunicorn"), "-w", str(self.web_processes),
                              "--threads", str(self.web_threads), "-b", f"127.0.0.1:{self.web_port}",
                              "--timeout", "120", "crisis.wsgi:app"])
        for index, (queues, concurrency) in enumerate(self.workers):
            self.start_worker(index, queues, concurrency)
        if self.beat:
            self._process("beat", [str(BIN / "crisis"), "beat"])
        wait_until(lambda: requests.get(self.sandbox_url + "/_sandbox/x/tweets", timeout=2).ok,
                   30, "sandbox")
        wait_until(lambda: requests.get(self.web_url + "/healthz", timeout=2).status_code
                   in (200, 503), 60, "web")
        return self

    def start_worker(self, index: int, queues: str, concurrency: int) -> Process:
        return self._process(f"worker{index}", [
            str(BIN / "crisis"), "worker", "--queues", queues, "--concurrency", str(concurrency),
            "-n", f"w{index}-{secrets.token_hex(3)}@%h", "--without-mingle", "--without-gossip"])

    def start_redis(self) -> None:
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            raise RuntimeError("redis-server is not installed")
        self._process("redis", [redis_server, "--port", str(self.redis_port), "--bind",
                                "127.0.0.1", "--save", "", "--appendonly", "no"])
        wait_until(lambda: socket.create_connection(("127.0.0.1", self.redis_port), 1), 10, "redis")

    def restart_redis(self) -> None:
        self.processes["redis"].kill()
        self.start_redis()

    def cli(self, *args: str, stdin: str | None = None) -> str:
        """Run `crisis ARGS` in the topology's environment; its standard output."""
        done = subprocess.run([str(BIN / "crisis"), *args], env=self.env(), input=stdin,
                              text=True, capture_output=True)
        if done.returncode:
            raise RuntimeError(f"crisis {' '.join(args)} failed ({done.returncode}):\n"
                               f"{done.stderr[-3000:]}")
        return done.stdout

    def api_user(self, email: str, role: str) -> ApiClient:
        """Create a user and an API token for them; a client for /api/v1 with that token."""
        self.cli("users", "create", email, "--role", role, stdin=PASSWORD + "\n")
        token = self.cli("tokens", "create", email, "--days", "1").strip().splitlines()[-1]
        return ApiClient(self.web_url + "/api/v1", token)

    def seed_area(self, code: str, subscribers: int, prefix: str = "+3162") -> int:
        """An area with that many active subscribers (numbers `prefix` + 7 digits); its id."""
        out = subprocess.run([sys.executable, "-c", SEED_AREA, code, str(subscribers), prefix],
                             env=self.env(), check=True, capture_output=True, text=True).stdout
        return int(out.strip().splitlines()[-1])

    def sandbox(self, method: str, path: str, **kwargs):
        response = requests.request(method, f"{self.sandbox_url}/_sandbox{path}", timeout=30,
                                    **kwargs)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()
        self._drop_scratch_database()

    def _create_scratch_database(self) -> None:
        if not (self.database_url or "").startswith("postgresql") or self.server_url:
            return
        self.server_url = self.database_url
        name = f"crisis_topology_{secrets.token_hex(4)}"
        with _admin(self.server_url) as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = sa.engine.make_url(self.server_url).set(database=name)
        self.database_url = url.render_as_string(hide_password=False)

    def _drop_scratch_database(self) -> None:
        if not self.server_url:
            return
        name = sa.engine.make_url(self.database_url).database
        with _admin(self.server_url) as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.database_url, self.server_url = self.server_url, None

    def __enter__(self) -> Topology:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def _admin(server_url: str):
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()
