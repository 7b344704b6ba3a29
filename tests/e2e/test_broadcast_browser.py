"""Broadcast in the browser: an editor drafts and submits, a second person approves, and the editor's
page shows every channel land without a reload; the sandbox holds exactly what went out."""

from __future__ import annotations

import contextlib
import re

import pytest
import sqlalchemy as sa

from crisis.extensions import db
from crisis.models import Area, PublicPost, Subscriber, SubscriberStatus
from tests.e2e.pages import log_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BODY = "Grote brand bij de Industrieweg in Noord. Houd ramen en deuren dicht en zet de ventilatie uit."
ENGLISH = "Large fire on Industrieweg in Noord. Keep windows and doors shut and switch off ventilation."
NORTH_PHONES = {"+31612000001": "nl", "+31612000002": "en", "+31612000003": "nl"}
TIMEOUT = 20_000


def _items(payload, key):
    return payload[key] if isinstance(payload, dict) else payload


@pytest.fixture
def areas(app, running):
    running.sandbox.control("POST", "/reset")
    with app.app_context():
        north = Area(code="noord", name="Noord", postcodes=["7711"])
        south = Area(code="zuid", name="Zuid", postcodes=["8151"])
        db.session.add_all([north, south])
        db.session.flush()
        for phone, language in NORTH_PHONES.items():
            db.session.add(Subscriber(phone=phone, area_ids=[north.id], language=language,
                                      status=SubscriberStatus.active))
        db.session.add(Subscriber(phone="+31612000009", area_ids=[south.id], language="nl",
                                  status=SubscriberStatus.active))
        db.session.commit()
        return {"north": north.id, "south": south.id}


def _watch_errors(page, errors):
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))


def test_editor_drafts_approver_approves_chips_turn_live(browser, running, app, make_user, areas):
    from playwright.sync_api import expect

    base = running.server.url
    editor, approver = make_user("editor"), make_user("approver")
    errors: list[str] = []
    editor_ctx = browser.new_context(locale="en-GB", viewport={"width": 1400, "height": 1000})
    approver_ctx = browser.new_context(locale="en-GB", viewport={"width": 1400, "height": 1000})
    try:
        page = editor_ctx.new_page()
        _watch_errors(page, errors)
        log_in(page, base, editor)

        # A live incident, through the form.
        page.goto(f"{base}/console/incidents/new")
        page.fill("input[name=title]", "Brand Industrieweg")
        page.check("input[name=mode][value=live]")
        page.check(f"input[name=areas][value='{areas['north']}']")
        page.click("#main form button[type=submit]")
        page.wait_for_url(re.compile(r"/console/incidents/\d+$"))
        title = "Brand Industrieweg"
        expect(page.locator("#connection")).to_have_attribute("data-state", "online", timeout=TIMEOUT)

        # The approver is on the console, waiting.
        watcher = approver_ctx.new_page()
        _watch_errors(watcher, errors)
        log_in(watcher, base, approver)
        expect(watcher.locator("#connection")).to_have_attribute("data-state", "online",
                                                                 timeout=TIMEOUT)
        expect(watcher.locator("#approvals-count")).to_have_attribute("data-count", "0")

        # Draft: a typographic apostrophe makes the SMS UCS-2; the API's replacement fixes it.
        page.fill("#c-body", BODY.replace("Houd", "Let’s: houd"))
        x_preview = page.locator('.preview[data-channel="x"]')
        expect(x_preview).to_contain_text("/ 280", timeout=TIMEOUT)
        sms_preview = page.locator('.preview[data-channel="sms"]')
        expect(sms_preview).to_contain_text("UCS-2")
        expect(sms_preview.locator("code.char").first).to_have_text("’")
        sms_preview.locator("button.replace-gsm").click()
        expect(page.locator("#c-body")).to_have_value(BODY.replace("Houd", "Let's: houd"))
        expect(sms_preview).to_contain_text("GSM-7")
        page.fill("#c-body", BODY)
        expect(page.locator('.preview[data-channel="readability"] .count')).to_have_text(re.compile(r"\d"))
        page.locator("#c-translation-box summary").click()
        page.fill("#c-translation", ENGLISH)
        # Three subscribers in the north (2 nl, 1 en); the south is not chosen.
        expect(page.locator("#recipients")).to_have_attribute("data-count", "3", timeout=TIMEOUT)
        expect(page.locator("#recipients")).to_have_attribute("data-sms", "3")  # 3 × 1 segment

        page.locator("#c-body").press("Control+Enter")
        card = page.locator("#message-list > li").first
        expect(card).to_have_attribute("data-state", "pending_approval", timeout=TIMEOUT)
        expect(card.locator(".msg-body")).to_have_text(BODY)
        message_id = card.get_attribute("data-message-id")

        # The approver hears of it without a reload, and follows the toast to the queue.
        toast = watcher.locator(f'.toast[data-message-id="{message_id}"]')
        expect(toast).to_be_visible(timeout=TIMEOUT)
        expect(toast).to_contain_text(title)
        expect(watcher.locator("#approvals-count")).to_have_attribute("data-count", "1")
        toast.get_by_role("link").click()
        watcher.wait_for_url(re.compile(rf"/console/approvals#approval-{message_id}$"))
        approval = watcher.locator(f"#approval-{message_id}")
        texts = approval.locator(".exact-text")
        expect(texts.filter(has_text=BODY).first).to_be_visible()
        expect(texts.filter(has_text=ENGLISH).first).to_be_visible()
        expect(approval.locator(".recipient-count")).to_have_text("3")
        approval.locator("input[name=confirmation]").fill(title)
        approval.locator(".approve-form button[type=submit]").click()
        watcher.wait_for_url(re.compile(r"/console/incidents/\d+$"))

        # The editor's page, never reloaded, follows every channel to "accepted".
        for channel in ("x", "facebook", "sms", "website"):
            expect(card.locator(f"[data-channel={channel}][data-state=accepted]")).to_be_visible(
                timeout=TIMEOUT)
        expect(card).to_have_attribute("data-state", "sent", timeout=TIMEOUT)
        expect(card.locator("[data-channel=sms] .chip-count")).to_have_text(re.compile(r"^3\D+3$"))
        expect(card.locator("a[data-channel=x]")).to_have_attribute("href", re.compile("^http"))
        expect(card.locator("button[data-focus-key=correct]")).to_be_visible()

        # A reload rebuilds the same picture from the server.
        page.reload()
        expect(page.locator("#message-list [data-channel=x][data-state=accepted]")).to_be_visible()
        page.screenshot(path="/tmp/incident.png", full_page=True)
    finally:
        editor_ctx.close()
        approver_ctx.close()

    tweets = _items(running.sandbox.control("GET", "/x/tweets"), "tweets")
    posts = _items(running.sandbox.control("GET", "/facebook/posts"), "posts")
    sms = _items(running.sandbox.control("GET", "/twilio/messages"), "messages")
    assert len(tweets) == 1 and BODY in tweets[0]["text"]
    assert len(posts) == 1
    assert sorted(m["to"] for m in sms) == sorted(NORTH_PHONES)
    for sent in sms:
        expected = ENGLISH if NORTH_PHONES[sent["to"]] == "en" else BODY
        assert expected in sent["body"]
    with app.app_context():
        published = db.session.scalars(sa.select(PublicPost)).all()
        assert len(published) == 1 and published[0].body.startswith(BODY)
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors


def test_problems_conflict_stop_and_correction(browser, running, app, make_user, areas):
    """422 next to the field, a concurrent edit (409) with reload, Stop with what went out, and a
    correction opened in the composer with the original's channels locked."""
    from playwright.sync_api import expect

    from tests.crisis.test_broadcast import _api

    base = running.server.url
    editor = make_user("editor")
    colleague, approver = _api(base, make_user("editor")), _api(base, make_user("approver"))
    incident = colleague.post("/api/v1/incidents", json={
        "title": "Storm Dalfsen", "mode": "live", "area_ids": [areas["north"]]}).json()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        log_in(page, base, editor)
        page.goto(f"{base}/console/incidents/{incident['id']}")
        expect(page.locator("#connection")).to_have_attribute("data-state", "online", timeout=TIMEOUT)

        # An empty text is refused next to the field it concerns.
        page.locator("#c-body").press("Control+Enter")
        expect(page.locator('.problems[data-field="body"] li')).to_have_count(1, timeout=TIMEOUT)
        expect(page.locator("#c-body")).to_have_attribute("aria-invalid", "true")

        # Saved as a draft; a colleague then changes it: our save is refused, reload restores.
        page.fill("#c-body", "Storm: blijf binnen.")
        page.locator("#c-body").press("Control+s")
        card = page.locator("#message-list > li").first
        expect(card).to_have_attribute("data-state", "draft", timeout=TIMEOUT)
        message_id = int(card.get_attribute("data-message-id"))
        card = page.locator(f'#message-list > li[data-message-id="{message_id}"]')
        for _ in range(10):  # the page may still be saving: the colleague then reloads and retries
            theirs = colleague.get(f"/api/v1/messages/{message_id}").json()
            changed = colleague.patch(f"/api/v1/messages/{message_id}", json={
                "body": "Zware storm: blijf binnen en zet losse spullen vast.",
                "version": theirs["version"]})
            if changed.status_code != 409:
                break
        assert changed.status_code == 200, changed.text
        page.fill("#c-body", "Storm: blijf binnen, ook in Noord.")
        page.click("#c-save")
        notice = page.locator("#composer-notice")
        expect(notice).to_have_attribute("data-kind", "error", timeout=TIMEOUT)
        notice.locator("button").click()
        expect(page.locator("#c-body")).to_have_value("Zware storm: blijf binnen en zet losse spullen vast.")
        expect(page.locator(".your-text")).to_have_text("Storm: blijf binnen, ook in Noord.")

        # Submitted and approved while X is slow: the team stops it half-way.
        page.locator("#c-body").press("Control+Enter")
        expect(card).to_have_attribute("data-state", "pending_approval", timeout=TIMEOUT)
        running.sandbox.fault("x", latency_ms=4000)
        submitted = colleague.get(f"/api/v1/messages/{message_id}").json()
        approved = approver.post(f"/api/v1/messages/{message_id}/approve", json={
            "approval_hash": submitted["approval_hash"], "confirmation": incident["title"]})
        assert approved.status_code == 200, approved.text
        expect(card.locator("[data-channel=facebook][data-state=accepted]")).to_be_visible(timeout=TIMEOUT)
        card.locator("button[data-focus-key=stop]").click()
        page.locator('#confirm-dialog button[value="ok"]').click()
        expect(card).to_have_attribute("data-state", "stopped", timeout=TIMEOUT)
        running.sandbox.fault("x")  # X is quick again for what is still on its way
        expect(card.locator(".msg-notice")).to_contain_text("Facebook")

        # What did go out gets a correction, bound to the channels that carried the original.
        card.locator("button[data-focus-key=correct]").click()
        expect(page.locator("#c-body")).to_have_value(re.compile(r"^CORRECTIE: "))
        expect(page.locator('#c-channels input[value="facebook"]')).to_be_checked()
        expect(page.locator('#c-channels input[value="facebook"]')).to_be_disabled()
        expect(page.locator("#composer-heading")).to_contain_text(f"#{message_id}")
        expect(page.locator("#message-list > li").first).to_have_attribute("data-state", "draft")
    finally:
        context.close()
        # The X post that was already on its way when the team pressed Stop lands after all; let
        # it, so the next test starts from a quiet sandbox.
        with contextlib.suppress(AssertionError):
            running.wait_for(lambda: _items(running.sandbox.control("GET", "/x/tweets"), "tweets"),
                             timeout=10)
        running.sandbox.control("POST", "/reset")
