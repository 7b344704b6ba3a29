"""What the public may see, read from the database in a few queries: live incidents and their posts.

Only live incidents with at least one published (not withdrawn) post appear; drills never do. A
post's public id is its message id. Everything here is plain data, so the pages, the feeds, CAP and
the static snapshot render the same facts, and the cache (crisis.public.cache) can keep it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from crisis.extensions import db
from crisis.models import Area, Incident, IncidentMode, IncidentStatus, Message, PublicPost


@dataclass(frozen=True)
class Text:
    """A text and the language it is really in (for the `lang` attribute)."""

    value: str
    lang: str
    translated: bool = True  # False: the reader asked for another language we do not have


@dataclass
class PostView:
    id: int  # the message id: the post's public id
    post_id: int
    kind: str
    headline: str
    body: str
    instruction: str
    translations: dict[str, str]
    language: str
    published_at: datetime
    withdrawn_at: datetime | None
    area_names: list[str]
    areas: list[Area]
    supersedes_id: int | None
    corrected_by: PostView | None = None  # the correction or cancel that replaces this one

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_at is not None

    def body_in(self, lang: str) -> Text:
        if lang == self.language:
            return Text(self.body, self.language)
        translated = self.translations.get(lang)
        if translated:
            return Text(translated, lang)
        return Text(self.body, self.language, translated=False)

    def instruction_in(self, lang: str) -> Text | None:
        """The instruction (only written in the message's language)."""
        if not self.instruction:
            return None
        return Text(self.instruction, self.language, translated=lang == self.language)

    def what_to_do(self, lang: str) -> Text:
        """What residents must do: the instruction, or the text itself when there is none."""
        return self.instruction_in(lang) or self.body_in(lang)


@dataclass
class IncidentView:
    id: int
    slug: str
    title: str
    status: str  # active | resolved | closed
    language: str
    created_at: datetime
    resolved_at: datetime | None
    # CAP classification, for the CAP documents.
    cap_category: str = "Safety"
    cap_event: str = ""
    cap_urgency: str = "Unknown"
    cap_certainty: str = "Unknown"
    severity: str = "Unknown"
    posts: list[PostView] = field(default_factory=list)  # newest first, withdrawn ones included

    @property
    def visible_posts(self) -> list[PostView]:
        return [p for p in self.posts if not p.withdrawn]

    @property
    def latest(self) -> PostView | None:
        visible = self.visible_posts
        return visible[0] if visible else None

    def post(self, message_id: int) -> PostView | None:
        return next((p for p in self.posts if p.id == message_id), None)


def change_marker() -> tuple:
    """A cheap fingerprint of everything public: it changes whenever a page would.

    New, withdrawn and corrected posts of live incidents, and live incidents' status and titles.
    One round trip of aggregates; the times make it change even where SQLite reuses deleted ids.
    """
    live_posts = (
        sa.select(
            sa.func.count(PublicPost.id).label("n"),
            sa.func.max(PublicPost.id).label("max_id"),
            sa.func.max(PublicPost.published_at).label("last"),
            sa.func.count(PublicPost.withdrawn_at).label("withdrawn"),
            sa.func.max(PublicPost.withdrawn_at).label("last_withdrawn"),
            sa.func.count(PublicPost.corrected_by_id).label("corrected"),
        )
        .join(Incident, Incident.id == PublicPost.incident_id)
        .where(Incident.mode == IncidentMode.live)
        .subquery()
    )
    live_incidents = (
        sa.select(
            sa.func.count(Incident.id).label("n"),
            sa.func.sum(sa.case((Incident.status == IncidentStatus.active, 1), else_=0)).label("active"),
            sa.func.sum(sa.case((Incident.status == IncidentStatus.closed, 1), else_=0)).label("closed"),
            sa.func.max(Incident.resolved_at).label("resolved"),
            sa.func.max(Incident.closed_at).label("closed_at"),
            sa.func.sum(sa.func.length(Incident.title)).label("titles"),
        )
        .where(Incident.mode == IncidentMode.live)
        .subquery()
    )
    # Two one-row aggregates side by side.
    both = live_posts.join(live_incidents, sa.true())
    row = db.session.execute(sa.select(live_posts, live_incidents).select_from(both)).one()
    return tuple(v.isoformat() if isinstance(v, datetime) else v for v in row)


def version_of(marker: tuple) -> str:
    """A short stable name for a marker: the pages and status.json carry it, so the poll can compare."""
    return hashlib.sha256(repr(marker).encode()).hexdigest()[:16]


def load_incidents(*, slug: str | None = None, include_closed: bool = False,
                   require_visible: bool = True) -> list[IncidentView]:
    """Live incidents with their posts (newest first); only those with something published.

    `require_visible=False` also keeps an incident whose every post was withdrawn (its page says so).

    Three queries whatever the number of incidents and posts: incidents, posts with their
    messages, areas.
    """
    query = sa.select(Incident).where(Incident.mode == IncidentMode.live)
    if slug is not None:
        query = query.where(Incident.slug == slug)
    if not include_closed:
        query = query.where(Incident.status != IncidentStatus.closed)
    incidents = {i.id: _incident_view(i) for i in db.session.scalars(query)}
    if not incidents:
        return []
    rows = db.session.execute(
        sa.select(PublicPost, Message.instruction, Message.area_ids, Message.supersedes_id,
                  Message.language)
        .outerjoin(Message, Message.id == PublicPost.message_id)
        .where(PublicPost.incident_id.in_(incidents), PublicPost.message_id.is_not(None))
        .order_by(PublicPost.published_at.desc(), PublicPost.id.desc())
    ).all()
    areas = _areas({a for row in rows for a in (row.area_ids or [])})
    by_post_id: dict[int, PostView] = {}
    correction_of: dict[int, int] = {}
    for post, instruction, area_ids, supersedes_id, language in rows:
        incident = incidents[post.incident_id]
        wanted = [areas[a] for a in (area_ids or []) if a in areas]
        view = PostView(
            id=post.message_id,
            post_id=post.id,
            kind=post.kind,
            headline=post.headline or "",
            body=post.body or "",
            instruction=instruction or "",
            translations={k: v for k, v in (post.translations or {}).items() if isinstance(v, str) and v},
            language=language or incident.language,
            published_at=post.published_at,
            withdrawn_at=post.withdrawn_at,
            area_names=[a.name for a in wanted],
            areas=wanted,
            supersedes_id=supersedes_id,
        )
        incident.posts.append(view)
        by_post_id[post.id] = view
        if post.corrected_by_id:
            correction_of[post.id] = post.corrected_by_id
    for post_id, by_id in correction_of.items():
        replacement = by_post_id.get(by_id)
        if replacement is not None and not replacement.withdrawn:
            by_post_id[post_id].corrected_by = replacement
    shown = [i for i in incidents.values() if (i.visible_posts if require_visible else i.posts)]
    # The incident with the latest news first.
    shown.sort(key=lambda i: (i.latest or i.posts[0]).published_at, reverse=True)
    return shown


def _incident_view(incident: Incident) -> IncidentView:
    return IncidentView(
        id=incident.id,
        slug=incident.slug,
        title=incident.title,
        status=incident.status.value,
        language=incident.language or "nl",
        created_at=incident.created_at,
        resolved_at=incident.resolved_at,
        cap_category=incident.cap_category,
        cap_event=incident.cap_event or incident.title,
        cap_urgency=incident.cap_urgency,
        cap_certainty=incident.cap_certainty,
        severity=incident.severity.value,
    )


def _areas(ids: set[int]) -> dict[int, Area]:
    if not ids:
        return {}
    return {a.id: a for a in db.session.scalars(sa.select(Area).where(Area.id.in_(ids)))}


def published_post(message_id: int) -> tuple[PublicPost, Message, Incident] | None:
    """One message's public post with its message and incident, drills included (for CAP)."""
    row = db.session.execute(
        sa.select(PublicPost, Message, Incident)
        .join(Message, Message.id == PublicPost.message_id)
        .join(Incident, Incident.id == PublicPost.incident_id)
        .where(PublicPost.message_id == message_id)
        .order_by(PublicPost.id)
        .limit(1)
    ).first()
    return None if row is None else (row[0], row[1], row[2])


def earlier_posts(incident_id: int, before: PublicPost) -> list[tuple[PublicPost, Message]]:
    """The incident's posts published before `before` and not withdrawn, oldest first."""
    return list(db.session.execute(
        sa.select(PublicPost, Message)
        .join(Message, Message.id == PublicPost.message_id)
        .where(PublicPost.incident_id == incident_id, PublicPost.id < before.id,
               PublicPost.withdrawn_at.is_(None))
        .order_by(PublicPost.id)
    ).all())


def post_of(message_id: int) -> PublicPost | None:
    return db.session.scalars(
        sa.select(PublicPost).where(PublicPost.message_id == message_id).order_by(PublicPost.id).limit(1)
    ).first()


def live_cap_posts(limit: int = 100) -> list[tuple[PublicPost, Message, Incident]]:
    """The latest published live posts (not withdrawn), newest first: the entries of /cap.atom."""
    return list(db.session.execute(
        sa.select(PublicPost, Message, Incident)
        .join(Message, Message.id == PublicPost.message_id)
        .join(Incident, Incident.id == PublicPost.incident_id)
        .where(Incident.mode == IncidentMode.live, PublicPost.withdrawn_at.is_(None))
        .order_by(PublicPost.published_at.desc(), PublicPost.id.desc())
        .limit(limit)
    ).all())
