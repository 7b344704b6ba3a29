"""The website channel against an in-memory post store (the app provides the real one)."""

from __future__ import annotations

import pytest

from channels.base import Draft, Outbound, PermanentChannelError
from channels.website import PostStore, WebsiteChannel


class MemoryPosts:
    """A PostStore in a dict, idempotent on the attempt key like the real one must be."""

    def __init__(self) -> None:
        self.posts: dict[str, dict] = {}
        self.by_key: dict[str, str] = {}

    def save(self, outbound: Outbound) -> str:
        if outbound.key in self.by_key:
            return self.by_key[outbound.key]
        post_id = str(len(self.posts) + 1)
        self.posts[post_id] = {"text": outbound.text, "withdrawn": False}
        self.by_key[outbound.key] = post_id
        return post_id

    def withdraw(self, post_id: str) -> None:
        self.posts[post_id]["withdrawn"] = True

    def find(self, key: str) -> str | None:
        return self.by_key.get(key)


@pytest.fixture
def posts() -> MemoryPosts:
    return MemoryPosts()


@pytest.fixture
def channel(posts: MemoryPosts) -> WebsiteChannel:
    return WebsiteChannel(posts, "https://crisis.example.nl/")


def outbound(key: str = "m1:website", slug: str | None = "brand-dalfsen") -> Outbound:
    meta = {"incident_slug": slug} if slug else {}
    return Outbound(key=key, text="Brand in Dalfsen. Houd ramen en deuren dicht.", meta=meta)


def test_memory_store_satisfies_the_protocol(posts: MemoryPosts) -> None:
    store: PostStore = posts  # a type checker verifies this; at run time it just must work
    assert store.find("nothing") is None


def test_render_has_no_limit_and_keeps_the_marker() -> None:
    long = "Kookadvies. " * 2000
    rendering = WebsiteChannel.render(Draft(body=long, marker="OEFENING:"))
    assert rendering.text.startswith("OEFENING: Kookadvies.")
    assert rendering.length == len(rendering.text)
    assert rendering.valid and rendering.limit == 0


def test_render_uses_the_website_override_and_refuses_an_empty_text() -> None:
    draft = Draft(body="kort", overrides={"website": "Uitgebreide tekst voor de site"})
    assert WebsiteChannel.render(draft).text == "Uitgebreide tekst voor de site"
    assert not WebsiteChannel.render(Draft(body="   ")).valid


def test_publish_stores_the_post_and_returns_its_public_url(channel, posts) -> None:
    receipt = channel.publish(outbound())
    assert receipt.provider_id == "1"
    assert receipt.url == "https://crisis.example.nl/incidents/brand-dalfsen/updates/1"
    assert posts.posts["1"]["text"].startswith("Brand in Dalfsen")


def test_publish_twice_with_the_same_key_is_one_post(channel, posts) -> None:
    assert channel.publish(outbound()).provider_id == channel.publish(outbound()).provider_id
    assert len(posts.posts) == 1


def test_publish_without_slug_is_permanent_and_stores_nothing(channel, posts) -> None:
    with pytest.raises(PermanentChannelError) as error:
        channel.publish(outbound(slug=None))
    assert error.value.code == "no_slug"
    assert posts.posts == {}


def test_find_reconciles_by_key(channel) -> None:
    assert channel.find(outbound()) is None
    published = channel.publish(outbound())
    assert channel.find(outbound()) == published


def test_retract_withdraws(channel, posts) -> None:
    receipt = channel.publish(outbound())
    channel.retract(receipt)
    assert posts.posts[receipt.provider_id]["withdrawn"] is True


def test_slug_is_quoted_in_the_url(channel) -> None:
    receipt = channel.publish(outbound(slug="a b/c"))
    assert receipt.url == "https://crisis.example.nl/incidents/a%20b%2Fc/updates/1"
