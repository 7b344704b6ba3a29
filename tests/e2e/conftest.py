"""Headless Debian Chromium through Playwright, against the live server (Socket.IO included).

Nothing is downloaded: the system's /usr/bin/chromium is driven. Without it the tests skip (and
fail under CI=true, through need_service).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import need_service

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--no-default-browser-check",
]


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session; `launch` gives it a fresh temporary profile."""
    if not Path(CHROMIUM).exists():
        need_service("chromium", f"{CHROMIUM} is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need_service("playwright", "the playwright Python package is not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


class Tab:
    """A page in its own browser context (own cookies), recording errors and CSP reports."""

    def __init__(self, browser, base_url: str):
        self.context = browser.new_context(base_url=base_url, locale="nl-NL")
        self.context.set_default_timeout(10_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        self.page.on("console", self._console)

    def _console(self, message) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.errors.append(f"csp: {message.text}")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tabs(browser, live_server):
    """tabs() -> a new Tab; every tab is closed after the test."""
    opened: list[Tab] = []

    def open_tab() -> Tab:
        tab = Tab(browser, live_server.url)
        opened.append(tab)
        return tab

    yield open_tab
    for tab in opened:
        tab.close()
