"""The live reaction feed in the browser: a question cluster grows while the sandbox injects
similar questions, a call for help is pinned on top, and "answer this cluster" opens a pre-filled
follow-up in the composer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from crisis.extensions import db
from crisis.models import Message, Reaction
from tests.crisis.test_reactions_ingest import published_incident
from tests.e2e import pages

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TIMEOUT = 20_000
QUESTIONS = [
    ("facebook", "Mag ik het kraanwater drinken?"),
    ("sms", "Kan ik het kraanwater nog drinken?"),
    ("facebook", "Is het kraanwater veilig om te drinken?"),
    ("sms", "Moet ik het kraanwater koken voor het drinken?"),
]


def log_in(page, base, user):
    """These tests read the console in English."""
    pages.log_in(page, base, user, english=True)


def inject(running, posts, channel, text, number):
    if channel == "facebook":
        return running.sandbox.control("POST", "/inject", json={
            "channel": "facebook", "text": text, "post_id": posts["facebook"], "author": f"Inwoner {number}"})
    return running.sandbox.control("POST", "/inject", json={
        "channel": "sms", "from": f"+3161200000{number % 3}", "body": text})


def test_a_cluster_grows_live_and_becomes_a_follow_up(browser, running, app, make_user):
    from playwright.sync_api import expect

    incident, _message_id, posts, editor, _api = published_incident(running, make_user, app)
    context = browser.new_context(locale="en-GB", viewport={"width": 1500, "height": 1100})
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # Console errors too, but not a missing favicon.
        page.on("console", lambda msg: errors.append(msg.text)
                if msg.type == "error" and "Failed to load resource" not in msg.text else None)
        log_in(page, running.server.url, editor)
        page.goto(f"{running.server.url}/console/incidents/{incident['id']}")
        expect(page.locator("#connection")).to_have_attribute("data-state", "online", timeout=TIMEOUT)

        channel, text = QUESTIONS[0]
        inject(running, posts, channel, text, 0)
        card = page.locator("#cluster-list .cluster-card").filter(has_text="kraanwater")
        expect(card).to_have_count(1, timeout=TIMEOUT)
        expect(card.locator(".cluster-counts")).to_have_text(re.compile(r"^1 "), timeout=TIMEOUT)
        expect(page.locator("#reaction-list .reaction").first).to_contain_text(text)

        for number, (channel, text) in enumerate(QUESTIONS[1:], start=1):
            inject(running, posts, channel, text, number)
        # The same card, grown live: no reload, no second card for the same theme.
        expect(card.locator(".cluster-counts")).to_have_text(re.compile(r"^4 reactions · 4 open"),
                                                            timeout=TIMEOUT)
        expect(page.locator("#cluster-list .cluster-card").filter(has_text="kraanwater")).to_have_count(1)
        expect(card.locator("svg.sparkline polyline")).to_have_count(1)
        expect(page.locator("#reaction-list .reaction")).to_have_count(4, timeout=TIMEOUT)

        # A call for help is pinned above the feed, badged.
        inject(running, posts, "sms", "Help! Mijn moeder van 90 zit zonder water en kan niet lopen", 2)
        expect(page.locator("#urgent")).to_be_visible(timeout=TIMEOUT)
        expect(page.locator("#urgent-list .reaction .urgency-high")).to_have_count(1)

        # Filters: the theme shows only its own reactions.
        page.locator("#cluster-list .cluster-card").filter(has_text="kraanwater").get_by_role(
            "button", name="Show reactions").click()
        expect(page.locator("#reaction-list .reaction")).to_have_count(4, timeout=TIMEOUT)

        # Details: what it answers and why it was classified so.
        page.locator("#reaction-list .reaction").first.get_by_role("button", name="Details").click()
        detail = page.locator("#reaction-detail")
        expect(detail).to_be_visible()
        expect(detail.locator(".detail-message")).to_have_text("Kook uw kraanwater voor gebruik.",
                                                               timeout=TIMEOUT)
        expect(detail.locator(".trigger").first).to_be_visible()

        # Answer this cluster: a follow-up draft listing the open questions, in the composer.
        card.get_by_role("button", name="Answer this cluster").click()
        body = page.locator("#composer textarea[name=body]")
        expect(body).to_have_value(re.compile("kraanwater"), timeout=TIMEOUT)
        value = body.input_value()
        for _, text in QUESTIONS:
            assert f"- {text}" in value
        with app.app_context():
            drafts = db.session.scalars(sa.select(Message).where(
                Message.incident_id == incident["id"], Message.state == "draft")).all()
            assert len(drafts) == 1 and "Mag ik het kraanwater drinken?" in drafts[0].body
            assert db.session.scalar(sa.select(sa.func.count()).select_from(Reaction)) == 5
            draft_id = drafts[0].id
        # The composer holds that draft itself: saving edits it, it never makes a second one.
        expect(page.locator("#composer-heading")).to_have_text(f"Editing message #{draft_id}")
        body.fill(value + "\nWe laten het weten zodra het water weer veilig is.")
        page.click("#c-save")

        def drafts_saved():
            bodies = db.session.scalars(sa.select(Message.body).where(
                Message.incident_id == incident["id"], Message.state == "draft")).all()
            return bodies if any("weer veilig" in b for b in bodies) else None

        assert len(running.wait_for(drafts_saved, timeout=10)) == 1

        # Mark one handled: the card's open count follows.
        page.locator("#reaction-list .reaction").first.get_by_role("button", name="Handled").click()
        expect(card.locator(".cluster-counts")).to_have_text(re.compile(r"4 reactions · 3 open"),
                                                            timeout=TIMEOUT)
        assert errors == []  # no script error, no CSP violation
    finally:
        context.close()


AXE = Path(__file__).resolve().parents[2] / "static" / "vendor" / "axe.min.js"


def serious_violations(page, selector: str = "document") -> list[dict]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(f"axe.run({selector}, {{resultTypes: ['violations']}})")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def test_the_feed_and_the_question_form_are_accessible(browser, running, app, make_user):
    from playwright.sync_api import expect

    incident, _message_id, posts, editor, _api = published_incident(running, make_user, app)
    for number, (channel, text) in enumerate(QUESTIONS):
        inject(running, posts, channel, text, number)
    inject(running, posts, "sms", "Help! Mijn moeder van 90 zit zonder water en kan niet lopen", 2)
    # Injecting axe is an inline script: only the test's context may bypass the page's CSP.
    context = browser.new_context(bypass_csp=True, viewport={"width": 1500, "height": 1100})
    try:
        page = context.new_page()
        log_in(page, running.server.url, editor)
        page.goto(f"{running.server.url}/console/incidents/{incident['id']}")
        expect(page.locator("#reaction-list .reaction")).to_have_count(5, timeout=TIMEOUT)
        page.locator("#reaction-list .reaction").first.get_by_role("button", name="Details").click()
        expect(page.locator("#reaction-detail")).to_be_visible()
        assert serious_violations(page, "document.getElementById('feed')") == []
        page.goto(f"{running.server.url}/console/reactions/inbox")
        assert serious_violations(page) == []
        form = f"{running.server.url}/incidents/{incident['slug']}/questions"
        page.goto(form)
        assert serious_violations(page) == []
        page.click("form.question-form button[type=submit]")  # empty: the error summary
        expect(page.locator(".form-errors")).to_be_visible()
        assert serious_violations(page) == []
    finally:
        context.close()
