"""Drive a running topology through its API and inspect the outcome in the sandbox and database."""

from __future__ import annotations

import collections
import time
from datetime import datetime

from crisis.topology import Topology


class JsonApi:
    """The topology's API client, answering with the decoded JSON (it raises on errors)."""

    def __init__(self, client):
        self.client = client

    def __getattr__(self, method: str):
        return lambda url, **kwargs: getattr(self.client, method)(url, **kwargs).json()


class Team:
    """An editor and an approver (API tokens), an area with `subscribers` subscribers."""

    def __init__(self, top: Topology, subscribers: int = 0):
        self.top = top
        self.editor = JsonApi(top.api_user("editor@faults.test", "editor"))
        self.approver = JsonApi(top.api_user("approver@faults.test", "approver"))
        self.area_id = top.seed_area("faults", subscribers, prefix="+3164")
        self.incident = self.editor.post("/incidents", json={
            "title": "Storing", "mode": "live", "area_ids": [self.area_id]})

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
