"""Atom feeds: /feed.atom (the published updates) and /cap.atom (an index of the CAP documents).

Built with feedgen (RFC 4287 output). Only live, published, not withdrawn posts; drills never.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from feedgen.feed import FeedGenerator
from flask import current_app
from flask_babel import force_locale, gettext
from lxml import etree

from crisis.messages.texts import update_url
from crisis.public import bp, data
from crisis.public.cache import Rendered, public_cache
from crisis.public.cap import MIMETYPE as CAP_MIMETYPE
from crisis.public.page import site_name

ATOM = "application/atom+xml"
ATOM_NS = "http://www.w3.org/2005/Atom"
FEED_SIZE = 50
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)  # `updated` of an empty feed: stable, so is its ETag


def _base() -> str:
    return current_app.config["PUBLIC_URL"].rstrip("/")


def _seconds(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def _serialise(feed: FeedGenerator, links: dict[str, dict[str, str]]) -> bytes:
    """The feed's bytes, with each entry link's rel and type put back.

    feedgen 1.0.0 drops the attributes of entry links (a shadowed variable in entry.atom_entry),
    which would leave two alternates per entry; `links` maps each href to its attributes.
    """
    root = etree.fromstring(feed.atom_str())
    for link in root.iterfind(f"{{{ATOM_NS}}}entry/{{{ATOM_NS}}}link"):
        for name, value in links.get(link.get("href"), {}).items():
            link.set(name, value)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _feed(path: str, title: str, rows) -> FeedGenerator:
    feed = FeedGenerator()
    feed.id(f"{_base()}{path}")
    feed.title(title)
    feed.author(name=site_name())
    feed.link(href=f"{_base()}/", rel="alternate", type="text/html")
    feed.link(href=f"{_base()}{path}", rel="self", type=ATOM)
    feed.language(current_app.config["BABEL_DEFAULT_LOCALE"])
    times = [p.published_at for p, _, _ in rows]
    feed.updated(_seconds(max(times)) if times else EPOCH)
    return feed


def render_updates_feed() -> Rendered:
    rows = data.live_cap_posts(FEED_SIZE)
    by_id = {p.id: p for p, _, _ in rows}
    links: dict[str, dict[str, str]] = {}
    with force_locale(current_app.config["BABEL_DEFAULT_LOCALE"]):
        feed = _feed("/feed.atom", f"{site_name()}: {gettext('Current situation')}", rows)
        for post, message, incident in rows:
            entry = feed.add_entry(order="append")
            url = update_url(incident, message.id)
            entry.id(url)
            title = post.headline or incident.title
            updated = post.published_at
            correction = by_id.get(post.corrected_by_id) if post.corrected_by_id else None
            if correction is not None:
                label = gettext("Cancelled") if correction.kind == "cancel" else gettext("Corrected")
                title = f"{label}: {title}"
                updated = max(updated, correction.published_at)
            entry.title(title)
            entry.link(href=url, rel="alternate", type="text/html")
            links[url] = {"rel": "alternate", "type": "text/html"}
            entry.published(_seconds(post.published_at))
            entry.updated(_seconds(updated))
            text = post.body
            if message.instruction:
                text = f"{text}\n\n{gettext('What should you do?')} {message.instruction}"
            entry.content(text, type="text")
            entry.category(term=post.kind)
    body = _serialise(feed, links)
    return Rendered(body, ATOM, hashlib.sha256(body).hexdigest()[:32])


def render_cap_feed() -> Rendered:
    rows = data.live_cap_posts(FEED_SIZE)
    links: dict[str, dict[str, str]] = {}
    with force_locale(current_app.config["BABEL_DEFAULT_LOCALE"]):
        feed = _feed("/cap.atom", f"{site_name()}: CAP", rows)
        for post, message, incident in rows:
            entry = feed.add_entry(order="append")
            cap_url = f"{_base()}/cap/{message.id}.xml"
            entry.id(cap_url)
            entry.title(post.headline or incident.title)
            page = update_url(incident, message.id)
            entry.link(href=cap_url, rel="alternate", type=CAP_MIMETYPE)
            entry.link(href=page, rel="related", type="text/html")
            links[cap_url] = {"rel": "alternate", "type": CAP_MIMETYPE}
            links[page] = {"rel": "related", "type": "text/html"}
            entry.published(_seconds(post.published_at))
            entry.updated(_seconds(post.published_at))
            entry.summary(post.body)
    body = _serialise(feed, links)
    return Rendered(body, ATOM, hashlib.sha256(body).hexdigest()[:32])


@bp.get("/feed.atom")
def feed():
    from crisis.public.views import respond, settings_key

    rendered = public_cache().get(("feed", settings_key()), lambda marker: render_updates_feed())
    return respond(rendered, cors=True)


@bp.get("/cap.atom")
def cap_feed():
    from crisis.public.views import respond, settings_key

    rendered = public_cache().get(("cap.atom", settings_key()), lambda marker: render_cap_feed())
    return respond(rendered, cors=True)
