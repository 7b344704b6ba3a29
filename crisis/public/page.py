"""What every public page's template is given: the language links, the site's name and the
change marker its script polls for. The situation pages, the question form and the subscription
pages all render through this, so they look and link alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, url_for
from flask_babel import gettext


def site_name() -> str:
    return current_app.config.get("PUBLIC_SITE_NAME") or gettext("Crisis information")


def language_link(lang: str) -> Callable[..., str]:
    """`url_for` that keeps `lang` in the URL, unless it is the default language."""
    default = current_app.config["BABEL_DEFAULT_LOCALE"]

    def link(endpoint: str, **values: Any) -> str:
        if lang != default:
            values["lang"] = lang
        return url_for(endpoint, **values)

    return link


def page_context(lang: str, version: str) -> dict[str, Any]:
    """The template variables every public page shares; call inside `force_locale(lang)`."""
    config = current_app.config
    return {
        "lang": lang,
        "other_languages": [code for code in config["LANGUAGES"] if code != lang],
        "version": version,
        "poll_seconds": config["PUBLIC_POLL_SECONDS"],
        "site_name": site_name(),
        "link": language_link(lang),
    }
