"""Drive a running topology through its API and inspect the outcome in the sandbox and database."""

from __future__ import annotations

import collections
import subprocess
import sys
import time
from datetime import datetime

import requests

from crisis.topology import BIN, Topology

PASSWORD = "fault test password"

SEED = """
import sys
from crisis import create_app
from crisis.extensions import db
from crisis.models import Area, Subscriber, SubscriberStatus
count = int(sys.argv[1])
app = create_app()
with app.app_context():
    area = Area(code="faults", name="Faults", postcodes=["7721"])
    db.session.add(area); db.session.flush()
    rows = [{"phone": f"+3164{i:07d}", "area_ids": [area.id], "language": "nl",
             "status": SubscriberStatus.active, "synthetic": False, "consent": {}}
            for i in range(count)]
    for start in range(0, count, 5000):
        db.session.execute(db.insert(Subscriber), rows[start:start + 5000])
    db.session.commit()
    print(area.id)
"""


class Api(requests.Session):
    def __init__(self, base: str, token: str):
        super().__init__()
        self.base = base
        self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method, url, *args, **kwargs):
        response = super().request(method, self.base + url, *args, timeout=30, **kwargs)
        assert response.status_code < 400, f"{method} {url}: {response.status_code} {response.text}"
        return response.json()


def cli(top: Topology, *args: str, stdin: str | None = None) -> str:
    return subprocess.run([str(BIN / "crisis"), *args], env=top.env(), input=stdin, text=True,
                          capture_output=True, check=True).stdout


class Team:
    """An editor and an approver (API tokens), an area with `subscribers` subscribers."""

    def __init__(self, top: Topology, subscribers: int = 0):
        self.top = top
        self.editor = self._user("editor@faults.test", "editor")
        self.approver = self._user("approver@faults.test", "approver")
        out = subprocess.run([sys.executable, "-c", SEED, str(subscribers)], env=top.env(),
                             check=True, capture_output=True, text=True).stdout
        self.area_id = int(out.strip().splitlines()[-1])
        self.incident = self.editor.post("/incidents", json={
            "title": "Storing", "mode": "live", "area_ids": [self.area_id]})

    def _user(self, email: str, role: str) -> Api:
        cli(self.top, "users", "create", email, "--role", role, stdin=PASSWORD + "\n")
        token = cli(self.top, "tokens", "create", email, "--days", "1").strip().splitlines()[-1]
        return Api(self.top.web_url + "/api/v1", token)

    def send(self, body: str, channels: list[str], **fields) -> dict:
        draft = self.editor.post(f"/incidents/{self.incident['id']}/messages", json={
            "body": body, "channels": channels, "area_ids": [self.area_id], **fields})
        submitted = self.editor.post(f"/messages/{draft['id']}/submit")
        return self.approver.post(f"/messages/{draft['id']}/approve", json={
            "approval_hash": submitted["approval_hash"], "confirmation": "Storing"})

    def message(self, message_id: int) -> dict:
        return self.editor.get(f"/messages/{message_id}")

    def wait(self, message_id: int, predicate, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            message = self.message(message_id)
            if predicate(message):
                return message
            if time.monotonic() > deadline:
                channels = [(d["channel"], d["state"]) for d in message["deliveries"]]
                raise AssertionError(f"{what} not reached in {timeout:.0f}s: {message['state']} "
                                     f"{message.get('sms')} {channels}")
            time.sleep(0.5)

    def wait_finished(self, message_id: int, timeout: float) -> dict:
        return self.wait(message_id, lambda m: m["state"] in ("sent", "partially_failed", "failed"),
                         timeout, "the end of sending")


def sandbox_sms(top: Topology) -> list[dict]:
    listed = top.sandbox("GET", "/twilio/messages")
    listed = listed["messages"] if isinstance(listed, dict) else listed
    return [m for m in listed if str(m.get("direction", "outbound")).startswith("outbound")]


def per_number(messages: list[dict]) -> collections.Counter:
    return collections.Counter(m["to"] for m in messages)


def timestamps(messages: list[dict]) -> list[float]:
    return sorted(datetime.fromisoformat(m["created_at"].replace("Z", "+00:00")).timestamp()
                  for m in messages)


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most sends that fell into any `window`-second interval."""
    best, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best
