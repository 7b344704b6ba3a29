"""A whole drill, in every process of the production topology, with LIVE credentials configured:
no connection or name look-up leaves the machine (a guard installed in each process, not a mock),
every text starts with the exercise marker, no resident's number reaches the sandbox, and the
CAP status is Exercise."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest
import requests

from crisis.topology import Topology
from tests.faults.harness import Team, sandbox_sms

pytestmark = [pytest.mark.slow, pytest.mark.redis]
ROOT = Path(__file__).resolve().parents[2]

LIVE_CREDENTIALS = {
    "X_API_KEY": "live-x-key", "X_API_SECRET": "live-x-secret",
    "X_ACCESS_TOKEN": "987654321-live-token", "X_ACCESS_SECRET": "live-access-secret",
    "X_BEARER_TOKEN": "live-bearer", "X_USERNAME": "gemeente_live",
    "FACEBOOK_PAGE_ID": "555000", "FACEBOOK_PAGE_TOKEN": "live-page-token",
    "FACEBOOK_APP_SECRET": "live-app-secret",
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "live-twilio-token",
    "TWILIO_FROM": "+3197010099999",
}

GUARD = textwrap.dedent("""
    # Installed by the drill isolation test in every process it starts (via PYTHONPATH).
    import json, os, sys
    sys.path.insert(0, {root!r})
    from tests.network_guard import NetworkGuard

    class RecordingGuard(NetworkGuard):
        def _check(self, call, host, port):
            try:
                super()._check(call, host, port)
            except AssertionError:
                with open(os.path.join({out!r}, f"violations-{{os.getpid()}}.jsonl"), "a") as f:
                    f.write(json.dumps({{"call": call, "host": str(host), "port": str(port),
                                         "argv": sys.argv[:3]}}) + "\\n")
                raise

    _guard = RecordingGuard(allow=[("127.0.0.1", None), ("localhost", None), ("::1", None)])
    _guard.__enter__()
    with open(os.path.join({out!r}, f"guarded-{{os.getpid()}}"), "w") as f:
        f.write(" ".join(sys.argv[:3]))
""")


def test_a_whole_drill_reaches_no_host_but_the_sandbox(tmp_path, database_url):
    guard_dir = tmp_path / "guard"
    guard_dir.mkdir()
    (guard_dir / "sitecustomize.py").write_text(GUARD.format(root=str(ROOT), out=str(guard_dir)))
    top = Topology(tmp_path / "top", database_url=database_url,
                   workers=[("publish,default", 2), ("bulk", 2)])
    top.settings.update(LIVE_CREDENTIALS)
    # Live channels would go to the real providers; only the drill is pointed at the sandbox.
    top.settings.update({"SANDBOX_URL": "", "DRILL_SANDBOX_URL": top.sandbox_url})
    # The live mentions poller talks to the real X by design (that is live, not the drill); it is
    # switched off here so that any other connection the guard sees can only be the drill's.
    top.settings["X_POLL_SECONDS"] = 3600
    original_env = top.env
    top.env = lambda: {**original_env(), "PYTHONPATH": str(guard_dir)}
    with top:
        team = Team(top, subscribers=6)  # residents' numbers: +3164...
        drill = team.editor.post("/runbooks/grote-brand-rook/start",
                                 json={"mode": "drill", "title": "Oefening brand"})
        team.incident = drill
        draft = team.editor.post(f"/incidents/{drill['id']}/messages", json={
            "body": "Grote brand bij een bedrijf aan de Veldhoeveweg in Dalfsen. Ga naar binnen.",
            "channels": ["x", "facebook", "sms", "website"], "area_ids": [team.area_id]})
        submitted = team.editor.post(f"/messages/{draft['id']}/submit")
        assert submitted["recipient_count"] == 6  # the synthetic mirror of the six residents
        team.approver.post(f"/messages/{draft['id']}/approve",
                           json={"approval_hash": submitted["approval_hash"]})
        final = team.wait_finished(draft["id"], timeout=90)
        assert final["state"] == "sent", final
        team.editor.post(f"/incidents/{drill['id']}/injects",
                         json={"channel": "sms", "text": "Mag ik mijn ramen open doen?"})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not [
                m for m in top.sandbox("GET", "/twilio/messages")
                if str(m.get("direction", "")).startswith("inbound")]:
            time.sleep(0.5)

        texts = [t["text"] for t in top.sandbox("GET", "/x/tweets")]
        texts += [p["message"] for p in top.sandbox("GET", "/facebook/posts")]
        sms = sandbox_sms(top)
        texts += [m["body"] for m in sms]
        assert len(texts) >= 2 + 6  # X, Facebook and six SMS (the website is ours)
        assert all(text.startswith("OEFENING:") for text in texts), texts
        assert all(m["to"].startswith("+3197099") for m in sms), "a resident got a drill SMS"
        everything = json.dumps([top.sandbox("GET", "/twilio/messages"),
                                 top.sandbox("GET", "/x/tweets")])
        assert "+3164" not in everything
        cap = requests.get(f"{top.web_url}/cap/{draft['id']}.xml", timeout=10).text
        assert "<status>Exercise</status>" in cap
    guarded = sorted(p.read_text() for p in guard_dir.glob("guarded-*"))
    assert any("worker" in g for g in guarded) and any("gunicorn" in g for g in guarded), guarded
    violations = [line for p in guard_dir.glob("violations-*") for line in p.read_text().splitlines()]
    assert violations == []
