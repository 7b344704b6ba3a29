"""The municipality's own public pages as a channel.

Publishing stores the public post the pages render and returns its URL. Adapters never touch the
database, so the app hands in a small store (`PostStore`) that does; this module only decides
what is stored, where it is shown, and how the typed errors look.
"""

from __future__ import annotations

from typing import ClassVar, Protocol
from urllib.parse import quote

from channels.base import Channel, Draft, Outbound, PermanentChannelError, Receipt, Rendering


class PostStore(Protocol):
    """What the app provides: the public posts, keyed by our attempt key.

    `save` must be idempotent on `outbound.key` (a retried publish returns the same post id) and
    raise a ChannelError when it cannot store (TransientChannelError for a busy database).
    """

    def save(self, outbound: Outbound) -> str:
        """Store (or find, for a retry) the public post for `outbound`; return its id."""
        ...

    def withdraw(self, post_id: str) -> None:
        """Mark a post withdrawn: the pages stop showing it as current."""
        ...

    def find(self, key: str) -> str | None:
        """Return the id of the post stored for attempt `key`, or None."""
        ...


class WebsiteChannel(Channel):
    """Publish to the public pages at `<public_url>/incidents/<slug>/updates/<id>`.

    The text has no length limit (`max_length` 0 means none); length is in characters.
    """

    name: ClassVar[str] = "website"
    max_length: ClassVar[int] = 0

    def __init__(self, store: PostStore, public_url: str):
        """`public_url` is the public base URL (`CRISIS_PUBLIC_URL`), e.g. https://crisis.nl."""
        self.store = store
        self.public_url = public_url.rstrip("/")

    @classmethod
    def render(cls, draft: Draft) -> Rendering:
        """Return the page text: the website override or the body, with the drill marker."""
        text = draft.text_for(cls.name)
        return Rendering(cls.name, text, len(text), cls.max_length, bool(text.strip()))

    def publish(self, outbound: Outbound) -> Receipt:
        """Store the post through the app's store and return its public URL.

        `outbound.meta["incident_slug"]` names the incident page the update belongs to.
        """
        slug = self._slug(outbound)
        post_id = self.store.save(outbound)
        return self._receipt(slug, post_id)

    def retract(self, receipt: Receipt) -> None:
        """Withdraw the post; the pages show it as withdrawn from then on."""
        self.store.withdraw(receipt.provider_id)

    def find(self, outbound: Outbound) -> Receipt | None:
        """Return the post already stored for `outbound.key`, or None."""
        post_id = self.store.find(outbound.key)
        return None if post_id is None else self._receipt(self._slug(outbound), post_id)

    def url_for(self, slug: str, post_id: str) -> str:
        """Return the public URL of one update."""
        slug, post_id = quote(slug, safe=""), quote(post_id, safe="")
        return f"{self.public_url}/incidents/{slug}/updates/{post_id}"

    def _receipt(self, slug: str, post_id: str) -> Receipt:
        return Receipt(post_id, self.url_for(slug, post_id), {"incident_slug": slug})

    @staticmethod
    def _slug(outbound: Outbound) -> str:
        slug = outbound.meta.get("incident_slug")
        if not slug:
            raise PermanentChannelError("a website post needs its incident's slug", "no_slug")
        return str(slug)
