"""What every browser test does first: log in through the real forms."""

from __future__ import annotations

import re

from tests.conftest import PASSWORD


def log_in(page, base: str, user, *, english: bool = False) -> None:
    """Log in (and pass the second factor when the user has one); optionally switch to English."""
    page.goto(f"{base}/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("#main form button[type=submit]")
    if user.totp_secret:
        page.wait_for_url(re.compile(r"/account/totp"))
        page.fill("input[name=code]", user.code())
        page.click("#main form button[type=submit]")
    page.wait_for_url(re.compile(r"/console/"))
    english_button = page.locator("form.lang button[value=en]")
    if english and english_button.count():  # the console speaks Dutch by default
        english_button.click()
        page.wait_for_load_state()
