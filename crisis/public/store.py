"""The website channel's store: public posts in the database, keyed by the delivery's attempt key.

A post's public id is its message id, so the link in every text is known before sending.
"""

from __future__ import annotations

import sqlalchemy as sa

from channels.base import Outbound, PermanentChannelError, TransientChannelError
from crisis.extensions import db
from crisis.models import Message, PublicPost
from crisis.models.types import utcnow
from crisis.public.cache import changed


class DatabasePostStore:
    """PostStore for channels.website, used inside a task's app context."""

    def save(self, outbound: Outbound) -> str:
        existing = self.find(outbound.key)
        if existing is not None:
            return existing
        message = db.session.get(Message, int(outbound.meta["message_id"]))
        if message is None:
            raise PermanentChannelError("the message is gone", "no_message")
        post = PublicPost(
            key=outbound.key,
            incident_id=message.incident_id,
            message_id=message.id,
            kind=message.kind.value,
            headline=message.headline,
            body=outbound.text,
            translations=dict(outbound.meta.get("translations") or {}),
        )
        db.session.add(post)
        try:
            db.session.flush()
        except sa.exc.OperationalError as exc:
            raise TransientChannelError(f"database busy: {type(exc).__name__}") from exc
        if message.supersedes_id:
            self._mark_superseded(message.supersedes_id, post)
        changed()  # after commit: fresh pages, and a new static snapshot
        return str(message.id)

    def withdraw(self, post_id: str) -> None:
        for post in db.session.scalars(sa.select(PublicPost).where(
                PublicPost.message_id == int(post_id))):
            post.withdrawn_at = post.withdrawn_at or utcnow()
        changed()

    def find(self, key: str) -> str | None:
        message_id = db.session.scalar(sa.select(PublicPost.message_id).where(PublicPost.key == key))
        return str(message_id) if message_id is not None else None

    @staticmethod
    def _mark_superseded(original_id: int, post: PublicPost) -> None:
        for old in db.session.scalars(sa.select(PublicPost).where(
                PublicPost.message_id == original_id)):
            old.corrected_by_id = post.id
