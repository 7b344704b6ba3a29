"""Everything the public writes is text, everywhere the console shows it.

XSS payloads arrive through every channel (X through the poller, Facebook and SMS through their
signed webhooks, the public form) as texts and as author names. They must show up as text in the
feed, the detail panel, the cluster cards and the chart tooltips; nothing may run (no dialog, no
global flag set) and no element the payload describes may exist in the page.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from crisis.extensions import db
from crisis.models import Reaction
from tests.crisis.test_reactions_ingest import ask_on_the_form, poll_x_until, published_incident
from tests.e2e.test_feed_browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TIMEOUT = 20_000

# Each would set window.__xss (or open a dialog) if the page ever treated it as markup or code.
PAYLOADS = [
    "<script>window.__xss='script';alert(1)</script>",
    '<img src=x onerror="window.__xss=\'img\';alert(2)">',
    "<svg onload=\"window.__xss='svg';alert(3)\"></svg>",
    "<a href=\"javascript:window.__xss='link';alert(4)\">klik hier</a>",
    "javascript:window.__xss='href';alert(5)",
    "\"><iframe srcdoc=\"<script>parent.__xss='iframe';parent.alert(6)</script>\"></iframe>",
    "{{7*7}} ${7*7} <%= 7*7 %> {{constructor.constructor('window.__xss=\"tpl\"')()}}",
    "\u202e<img src=x onerror=window.__xss='rtl'>\u202c \u200b<scr\u200bipt>x</scr\u200bipt>",
    "\uff1cscript\uff1ewindow.__xss='fullwidth'\uff1c/script\uff1e &lt;b&gt;entity&lt;/b&gt;",
    "'-alert(7)-' \\\"><body onload=alert(8)>",
]
CHANNELS = ("x", "facebook", "sms", "form")


def _text(payload: str) -> str:
    # A question about the water, so every payload is classified, clustered and charted.
    return f"Kraanwater drinken? {payload}"


def test_payloads_from_every_channel_stay_text(browser, running, app, make_user, monkeypatch):
    from playwright.sync_api import expect

    monkeypatch.setitem(app.config, "QUESTION_RATE_LIMIT", "1000 per minute")
    incident, _message, posts, editor, _api = published_incident(running, make_user, app)
    base = running.server.url
    for number, payload in enumerate(PAYLOADS):
        running.sandbox.control("POST", "/inject", json={
            "channel": "x", "text": _text(payload), "in_reply_to": posts["x"], "author": f"inwoner{number}"})
        running.sandbox.control("POST", "/inject", json={
            "channel": "facebook", "text": _text(payload), "post_id": posts["facebook"], "author": payload})
        running.sandbox.control("POST", "/inject", json={
            "channel": "sms", "from": f"+3161200000{number % 3}", "body": _text(payload)})
        answered = ask_on_the_form(base, incident["slug"], _text(payload), name=payload[:80])
        assert answered.status_code == 200
    expected = len(PAYLOADS) * len(CHANNELS)
    poll_x_until(app, lambda: db.session.scalar(sa.select(sa.func.count()).select_from(Reaction)
                                                .where(Reaction.processed_at.is_not(None))) == expected,
                 timeout=60)

    context = browser.new_context(locale="en-GB", viewport={"width": 1500, "height": 1100})
    dialogs: list[str] = []
    try:
        page = context.new_page()
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.add_init_script("window.__xss = null;")
        log_in(page, base, editor)
        page.goto(f"{base}/console/incidents/{incident['id']}")
        feed = page.locator("#feed")
        expect(feed.locator("#reaction-list .reaction")).to_have_count(expected, timeout=TIMEOUT)

        # Every payload is in the feed, as text, once per channel.
        texts = feed.locator("#reaction-list .reaction-text").all_text_contents()
        for payload in PAYLOADS:
            assert sum(_text(payload) in text for text in texts) == len(CHANNELS), payload
        authors = feed.locator("#reaction-list .author").all_text_contents()
        assert PAYLOADS[1] in authors  # a Facebook name

        # The detail panel of one reaction per channel.
        for channel in CHANNELS:
            item = feed.locator(f"#reaction-list .reaction[data-channel={channel}]").filter(
                has_text="alert(2)").first
            item.get_by_role("button", name="Details").click()
            expect(page.locator("#reaction-detail .detail-text")).to_contain_text(_text(PAYLOADS[1]))

        # Cluster labels (in the cards and the theme filter) are text.
        labels = feed.locator("#cluster-list .cluster-label").all_text_contents()
        assert labels and all("<" not in label for label in labels)
        options = feed.locator("select[name=cluster_id] option").all_text_contents()
        assert len(options) > 1

        # Chart tooltips: hover the category chart; the theme label shows as text in the tooltip.
        canvas = page.locator("#chart-categories")
        expect(canvas).to_be_visible()
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        tooltip = page.locator("#chart-tooltip")
        for dx in range(5, int(box["width"] // 2), 6):
            page.mouse.move(box["x"] + dx, box["y"] + box["height"] / 2)
            if tooltip.is_visible():
                break
        expect(tooltip).to_be_visible()
        expect(tooltip).to_contain_text("Largest theme:")
        assert tooltip.evaluate(
            "t => [...t.querySelectorAll('*')].every(e => ['STRONG', 'SPAN'].includes(e.tagName))")
        volume = page.locator("#chart-volume").bounding_box()
        page.mouse.move(volume["x"] + volume["width"] - 12, volume["y"] + volume["height"] / 2)
        expect(tooltip).to_contain_text("Facebook")

        # Nothing ran, and nothing the payloads describe exists as an element.
        page.wait_for_timeout(500)
        assert dialogs == []
        assert page.evaluate("window.__xss") is None
        found = page.evaluate("""() => ({
            scripts: [...document.scripts].filter(s => !s.src).map(s => s.type)
                .filter(t => t !== 'application/json'),
            imgs: document.querySelectorAll('img[src="x"], img[onerror]').length,
            svgs: document.querySelectorAll('svg[onload]').length,
            iframes: document.querySelectorAll('iframe').length,
            links: document.querySelectorAll('a[href^="javascript"]').length,
            handlers: [...document.querySelectorAll('*')]
                .filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length,
            bold: document.querySelectorAll('#feed b').length,
        })""")
        assert found == {"scripts": [], "imgs": 0, "svgs": 0, "iframes": 0, "links": 0, "handlers": 0,
                         "bold": 0}, found
        assert "49" not in "".join(texts)  # {{7*7}} was never evaluated as a template

        # The inbox and the public thank-you page (the form) escape as well.
        page.goto(f"{base}/console/reactions/inbox")
        page.goto(f"{base}/incidents/{incident['slug']}/questions")
        expect(page.locator("textarea[name=text]")).to_be_visible()
        assert dialogs == [] and page.evaluate("window.__xss") is None
        assert errors == []
    finally:
        context.close()
