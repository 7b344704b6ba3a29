"""The "large fire with smoke" runbook as a drill, in the browser: the first message from the
template, injects in the feed, a cluster answered, the all-clear, and the after-action report
with its figures and PDF."""

from __future__ import annotations

import re

import pytest
import requests
import sqlalchemy as sa

from crisis.extensions import db
from crisis.models import (
    Area,
    DrillInject,
    Incident,
    IncidentStatus,
    InjectState,
    Subscriber,
    SubscriberStatus,
)
from crisis.seed import seed_areas
from tests.e2e.test_feed_browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TIMEOUT = 30_000
FILL = {"straat": "Veldhoeveweg", "kern": "Dalfsen", "rookgebied": "Oudleusen",
        "url": "dalfsen.nl", "volgende_update": "15.00 uur", "tijd": "14.00 uur"}

FILL_PLACEHOLDERS = """(values) => {
  for (const field of document.querySelectorAll('#composer textarea')) {
    const filled = field.value.replace(/\\{([a-z_]+)\\}/g, (m, name) => values[name] || name);
    if (filled !== field.value) {
      field.value = filled;
      field.dispatchEvent(new Event('input', {bubbles: true}));
    }
  }
}"""


SHORT_FOR_X = """(text) => {
  const field = document.querySelector('#c-override-x');
  field.value = text;
  field.dispatchEvent(new Event('input', {bubbles: true}));
}"""


def _submit_and_approve(editor_page, approver_page, base, x_text=None):
    from playwright.sync_api import expect

    if x_text:  # the composer said the X text is too long: the team writes a shorter one
        editor_page.evaluate(SHORT_FOR_X, x_text)
    editor_page.evaluate(FILL_PLACEHOLDERS, FILL)
    editor_page.click("#c-submit")
    expect(editor_page.locator("#composer-status")).to_contain_text("approve", timeout=TIMEOUT)
    approver_page.goto(f"{base}/console/approvals")
    card = approver_page.locator("article.approval").first
    expect(card).to_contain_text("OEFENING:")  # the approver sees the exact, marked text
    card.locator(".approve-form button[type=submit]").click()  # a drill: no name to type
    approver_page.wait_for_url(re.compile(r"/console/incidents/\d+"))


def test_fire_drill_from_the_runbook(browser, running, app, make_user):
    from playwright.sync_api import expect

    from crisis.tasks.drills import play_due_injects

    running.sandbox.control("POST", "/reset")
    with app.app_context():
        seed_areas()
        dalfsen = db.session.scalar(sa.select(Area.id).where(Area.code == "dalfsen"))
        for i in range(5):
            db.session.add(Subscriber(phone=f"+3165550{i:04d}", area_ids=[dalfsen],
                                      status=SubscriberStatus.active))
        db.session.commit()
    editor, approver = make_user("editor"), make_user("approver")
    base = running.server.url
    editor_context = browser.new_context(locale="en-GB", viewport={"width": 1500, "height": 1100})
    approver_context = browser.new_context(locale="en-GB")
    try:
        page, approver_page = editor_context.new_page(), approver_context.new_page()
        log_in(page, base, editor)
        log_in(approver_page, base, approver)

        # Start the runbook as a drill: the console looks like one at once.
        page.goto(f"{base}/console/runbooks")
        page.locator("#runbook-grote-brand-rook button[value=drill]").click()
        page.wait_for_url(re.compile(r"/console/incidents/\d+$"))
        incident_id = int(page.url.rsplit("/", 1)[1])
        expect(page.locator("body.drill .drill-banner")).to_be_visible()
        expect(page.locator("#connection")).to_have_attribute("data-state", "online",
                                                              timeout=TIMEOUT)

        # The first message from the template, in one click, then the four eyes.
        page.locator("#templates button[data-template-id=eerste-bericht]").click()
        expect(page.locator("#c-body")).to_have_value(re.compile(r"\{straat\}"))
        _submit_and_approve(page, approver_page, base,
                            x_text="Grote brand {straat} in {kern}. Last van rook? Ga naar binnen, "
                                   "ramen en deuren dicht, ventilatie uit.")
        for channel in ("x", "facebook", "sms", "website"):
            expect(page.locator(f"[data-channel={channel}][data-state=accepted]").first) \
                .to_be_visible(timeout=TIMEOUT)

        # The exercise leader plays the public: questions on one theme, through the sandbox.
        page.fill(".add-inject input[name=text]", "Mogen de ramen weer open?")
        page.select_option(".add-inject select[name=channel]", "sms")
        page.fill(".add-inject input[name=count]", "3")
        page.locator(".add-inject button[type=submit]").click()
        page.wait_for_url(re.compile(r"/console/incidents/\d+$"))
        with app.app_context():
            play_due_injects()  # what beat's sweep does every second (it may play some first)

        def played():
            return db.session.scalar(sa.select(sa.func.count()).select_from(DrillInject).where(
                DrillInject.incident_id == incident_id, DrillInject.state == InjectState.played,
                DrillInject.inject_id == "leader"))  # those the exercise leader added

        running.wait_for(lambda: played() >= 3, timeout=TIMEOUT / 1000)
        with app.app_context():
            assert played() == 3
        card = page.locator("#cluster-list .cluster-card").filter(has_text="ramen")
        expect(card).to_have_count(1, timeout=TIMEOUT)
        expect(card.locator(".cluster-counts")).to_have_text(re.compile(r"^3 "), timeout=TIMEOUT)

        # Answer this cluster: a follow-up in the composer, approved and sent.
        card.get_by_role("button", name="Answer this cluster").click()
        expect(page.locator("#c-body")).to_have_value(re.compile("ramen"), timeout=TIMEOUT)
        _submit_and_approve(page, approver_page, base)

        # The all-clear resolves the incident.
        page.goto(f"{base}/console/incidents/{incident_id}")
        page.locator("#templates button[data-template-id=brand-onder-controle]").click()
        _submit_and_approve(page, approver_page, base,
                            x_text="De brand in {kern} is onder controle. Ramen mogen weer open.")

        def resolved():
            return db.session.get(Incident, incident_id).status is IncidentStatus.resolved

        running.wait_for(resolved, timeout=TIMEOUT / 1000)

        # Everything on every channel was marked; no resident's number reached the sandbox.
        sms = running.sandbox.control("GET", "/twilio/messages")
        sms = sms["messages"] if isinstance(sms, dict) else sms
        outbound = [m for m in sms if str(m.get("direction", "")).startswith("outbound")]
        assert outbound and all(m["body"].startswith("OEFENING:") for m in outbound)
        assert all(not m["to"].startswith("+3165550") for m in sms)

        # The report shows the figures; the PDF renders.
        page.goto(f"{base}/console/incidents/{incident_id}/report")
        expect(page.locator("[data-figure=time_to_first_message_s]")).not_to_have_text("—")
        expect(page.locator("[data-figure=messages_sent]")).to_have_text("3")
        expect(page.locator("[data-figure=reactions]")).to_have_text("3")
        expect(page.locator("svg.chart rect.bar")).not_to_have_count(0)
        pdf = requests.get(f"{base}/console/incidents/{incident_id}/report.pdf",
                           cookies={c["name"]: c["value"] for c in editor_context.cookies()},
                           timeout=60)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    finally:
        editor_context.close()
        approver_context.close()
