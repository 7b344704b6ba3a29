"""In Chromium: log in, create an incident, see the live connection come up; drills look different;
a logout elsewhere drops the page's connection."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

ONLINE = "#connection[data-state=online]"
OFFLINE = "#connection[data-state=offline]"


def log_in(page, user) -> None:
    page.goto("/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Inloggen").click()
    page.wait_for_url("**/console/")


def create_incident(page, title: str, mode: str) -> int:
    page.get_by_role("link", name="Nieuw incident").click()
    page.wait_for_url("**/console/incidents/new")
    page.fill("input[name=title]", title)
    page.check(f"input[name=mode][value={mode}]")
    page.get_by_role("button", name="Incident aanmaken").click()
    page.wait_for_url(re.compile(r".*/console/incidents/\d+$"))
    return int(page.url.rsplit("/", 1)[1])


def test_log_in_create_an_incident_and_go_live(tabs, make_user):
    tab = tabs()
    page = tab.page
    log_in(page, make_user("editor"))
    assert page.locator("html").get_attribute("lang") == "nl"
    create_incident(page, "Brand bij de Kerkstraat", "live")
    assert page.locator(".incident-name").inner_text() == "Brand bij de Kerkstraat"
    page.wait_for_selector(ONLINE)
    assert page.locator("#connection").inner_text() == "live"
    assert page.locator("body").get_attribute("class") == "live"
    assert page.locator(".drill-banner").count() == 0
    assert tab.errors == []


def test_a_drill_is_unmistakable(tabs, make_user):
    tab = tabs()
    page = tab.page
    log_in(page, make_user("editor"))
    create_incident(page, "Oefening hoogwater Vecht", "drill")
    page.wait_for_selector(ONLINE)
    assert page.locator("body").get_attribute("class") == "drill"
    banner = page.locator(".drill-banner")
    assert banner.is_visible()
    assert banner.inner_text().startswith("OEFENING")
    assert page.locator(".badge.drill").inner_text() == "OEFENING"
    # Not only a class: the page is painted differently from a live incident.
    frame = ("(s => [s.borderTopStyle, s.borderTopWidth, s.borderTopColor])"
             "(getComputedStyle(document.body))")
    drill_frame = page.evaluate(frame)
    page.goto("/console/")
    assert page.evaluate(frame) != drill_frame
    assert drill_frame[0] != "none" and drill_frame[1] != "0px"
    assert tab.errors == []


def test_logging_out_elsewhere_drops_the_live_connection(tabs, make_user):
    user = make_user("editor")
    first, second = tabs(), tabs()
    log_in(first.page, user)
    create_incident(first.page, "Stroomstoring Lemelerveld", "live")
    first.page.wait_for_selector(ONLINE)

    log_in(second.page, user)
    second.page.get_by_role("button", name="Uitloggen").click()
    second.page.wait_for_url("**/login")

    first.page.wait_for_selector(OFFLINE)  # dropped by the server, and not let back in
    first.page.reload()
    assert "/login" in first.page.url
    assert first.errors == [] and second.errors == []
