"""The public pages in a real browser: readable without JavaScript, refreshed by polling with it,
and free of serious or critical accessibility violations (axe-core, served from static/vendor)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from crisis.extensions import db
from crisis.models import Incident
from tests.crisis.test_public_pages import make_area, make_incident, publish, reset_public_cache

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AXE = Path(__file__).resolve().parents[2] / "static" / "vendor" / "axe.min.js"
TODO = "Ga naar binnen. Houd ramen en deuren dicht. Zet de ventilatie uit."
TIMEOUT = 15_000


@pytest.fixture
def public(app, live_server, monkeypatch):
    """A live incident with two updates (one translated), a drill beside it; polling every second."""
    monkeypatch.setitem(app.config, "PUBLIC_POLL_SECONDS", 1)
    monkeypatch.setitem(app.config, "PUBLIC_CHECK_SECONDS", 0)
    reset_public_cache(app)
    with app.app_context():
        area = make_area("dalfsen", "Dalfsen", ["7721"], (52.5075, 6.258))
        live = make_incident("Brand Industrieweg", areas=[area])
        alert = publish(live, "Grote brand bij een bedrijf aan de Industrieweg. Er komt veel rook vrij.",
                        kind="alert", headline="Grote brand Industrieweg", instruction=TODO,
                        translations={"en": "Large fire at a business on Industrieweg."})
        update = publish(live, "De brandweer is ter plaatse. De rook trekt naar het oosten.",
                         headline="Rook trekt naar het oosten")
        drill = make_incident("Oefening hoogwater", mode="drill")
        publish(drill, "OEFENING: de Vecht stijgt.", kind="alert", headline="Oefening hoogwater")
        yield {"base": live_server.url, "slug": live.slug, "alert": alert.id, "update": update.id}
    reset_public_cache(app)


def test_without_javascript_the_situation_is_all_there(browser, public):
    context = browser.new_context(java_script_enabled=False, locale="nl-NL",
                                  viewport={"width": 360, "height": 740})  # a small phone
    try:
        page = context.new_page()
        page.goto(public["base"] + "/")
        assert page.locator("h1").inner_text() == "Actuele situatie"
        article = page.locator("article.incident")
        assert article.count() == 1
        assert "Brand Industrieweg" in article.locator("h2").inner_text()
        assert "Rook trekt naar het oosten" in article.inner_text()
        assert "Oefening" not in page.content()
        # The incident's timeline and the first update's instruction, by following links.
        page.get_by_role("link", name="Brand Industrieweg").click()
        page.wait_for_url(f"**/incidents/{public['slug']}")
        assert TODO in page.locator("main").inner_text()
        page.get_by_role("link", name="English").click()
        assert page.locator("html").get_attribute("lang") == "en"
        assert "Large fire at a business on Industrieweg." in page.locator("main").inner_text()
        # Nothing scrolls sideways on a small phone.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360
    finally:
        context.close()


def test_with_javascript_a_new_update_appears_without_reload(browser, public, app):
    from playwright.sync_api import expect

    context = browser.new_context(locale="nl-NL")
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        page.goto(f"{public['base']}/incidents/{public['slug']}")
        page.evaluate("window.__noReload = true")
        assert page.locator("body").get_attribute("data-poll-seconds") == "1"
        with app.app_context():
            incident = db.session.scalar(sa.select(Incident).where(Incident.slug == public["slug"]))
            publish(incident, "De brand is onder controle. U kunt ramen en deuren weer openen.",
                    headline="Brand onder controle")
        expect(page.locator("main")).to_contain_text("Brand onder controle", timeout=TIMEOUT)
        expect(page.locator("#live")).to_contain_text("nieuwe informatie", timeout=TIMEOUT)
        assert page.evaluate("window.__noReload") is True  # the same document: no reload
        # Newest first in the refreshed timeline.
        headings = page.locator("ol.timeline h3").all_inner_texts()
        assert headings[0] == "Brand onder controle"
        # The index shows it as the latest too.
        page.goto(public["base"] + "/")
        expect(page.locator("article.incident h3")).to_have_text("Brand onder controle")
        assert sockets == [] and errors == []
    finally:
        context.close()


def test_the_embedded_banner_shows_the_alert_on_another_site(browser, public, tmp_path):
    """A page on another origin loads /embed.js; the banner links to the incident page."""
    import http.server
    import threading

    (tmp_path / "index.html").write_text(
        '<!doctype html><html lang="nl"><head><title>Gemeente</title></head><body>'
        f'<div id="crisis"></div><script src="{public["base"]}/embed.js" data-target="crisis">'
        "</script><h1>Welkom</h1></body></html>")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args):
            pass

    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{other.server_port}/index.html")
        banner = page.locator("#crisis [data-crisis-banner]")
        banner.wait_for(timeout=TIMEOUT)
        assert "Brand Industrieweg" in banner.inner_text()
        href = banner.locator("a").get_attribute("href")
        assert href.endswith(f"/incidents/{public['slug']}")
    finally:
        context.close()
        other.shutdown()


def _serious(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_axe_finds_no_serious_violations(browser, public, lang):
    assert AXE.exists(), "run scripts/vendor.sh"
    # Injecting axe is an inline script: only the test's context may bypass the page's CSP.
    context = browser.new_context(bypass_csp=True)
    try:
        page = context.new_page()
        slug = public["slug"]
        for path in ("/", f"/incidents/{slug}", f"/incidents/{slug}/updates/{public['alert']}",
                     f"/incidents/{slug}/updates/{public['update']}", "/incidents/nothing-here"):
            page.goto(f"{public['base']}{path}?lang={lang}")
            assert _serious(page) == [], path
    finally:
        context.close()
