"""X (Twitter): posts through tweepy's v2 `Client`, mentions by polling, and webhook helpers.

Writes use OAuth 1.0a user context (the access token's numeric prefix is the account's user id);
reads of timelines and mentions use the app's bearer token, as tweepy does by default. tweepy sets
no timeout and hard-codes `https://api.twitter.com`, so its public `session` gets a
`ProviderAdapter` (default timeout, and the sandbox redirect when one is configured).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import logging
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import requests
import tweepy

from channels.base import (
    DEFAULT_TIMEOUT,
    Channel,
    ChannelStatus,
    Draft,
    Outbound,
    PermanentChannelError,
    Receipt,
    Rendering,
    TransientChannelError,
)
from channels.text import x_length
from channels.transport import provider_session

X_ORIGINS = ["https://api.twitter.com"]  # tweepy 4.17 hard-codes this host (client.py:65)
SANDBOX_PATH = "/x"
SETTINGS = (
    "X_API_KEY",
    "X_API_SECRET",
    "X_ACCESS_TOKEN",
    "X_ACCESS_SECRET",
    "X_BEARER_TOKEN",
    "X_USERNAME",
)
MENTION_FIELDS = [
    "created_at",
    "author_id",
    "conversation_id",
    "in_reply_to_user_id",
    "referenced_tweets",
]
# A crash between our clock and X's leaves a little skew; look a bit further back than attempted_at.
FIND_SLACK = timedelta(minutes=2)
FIND_MAX_PAGES = 5
# The connection failed or broke mid-answer: worth another try (a timed-out write may have landed).
NETWORK_ERRORS = (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError)
POLL_MAX_PAGES = 10  # 1000 mentions per poll; a backlog beyond that is skipped, not re-read

# tweepy logs every request's headers at DEBUG, the bearer token included: keep its logger above
# DEBUG unless someone set a level on it deliberately.
if logging.getLogger("tweepy.client").level == logging.NOTSET:
    logging.getLogger("tweepy.client").setLevel(logging.INFO)


def weighted_length(text: str) -> tuple[int, bool]:
    """Return the twitter-text v3 weighted length of `text` and whether X would accept it."""
    counted = x_length(text, "v3")
    return counted.weighted_length, counted.valid


@dataclass(frozen=True)
class Mention:
    """A public post that mentions or answers the account, from polling or a webhook."""

    id: str
    text: str
    author_id: str | None = None
    author_username: str | None = None
    in_reply_to_id: str | None = None  # the post this one replies to
    conversation_id: str | None = None  # the thread's first post
    referenced_ids: tuple[str, ...] = ()  # every referenced post (replied_to, quoted)
    created_at: datetime | None = None


class RateLimitedError(TransientChannelError):
    """A 429: `retry_after` is when X's window resets. Still a TransientChannelError for callers."""


class _LastResponse(threading.local):
    """The last HTTP response's status and headers on this thread (tweepy hides them)."""

    status: int | None = None
    headers: Mapping[str, str] = {}

    def keep(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Remember status and headers (a requests response hook); never the body or the URL."""
        self.status = response.status_code
        self.headers = dict(response.headers)


class XChannel(Channel):
    """Publish to one X account with tweepy's v2 Client, and read its mentions."""

    name: ClassVar[str] = "x"
    max_length: ClassVar[int] = 280
    can_edit: ClassVar[bool] = False  # the v2 API offers no edit for posts

    def __init__(
        self,
        *,
        api_key: str,
        api_secret: str,
        access_token: str,
        access_secret: str,
        bearer_token: str,
        username: str,
        sandbox_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Build the tweepy client; `sandbox_url` redirects every call to the sandbox's `/x`."""
        self.username = username.lstrip("@")
        self.user_id = access_token.partition("-")[0]  # the OAuth 1.0a token carries the user id
        self.sandbox = sandbox_url is not None
        self.client = tweepy.Client(
            bearer_token=bearer_token,
            consumer_key=api_key,
            consumer_secret=api_secret,
            access_token=access_token,
            access_token_secret=access_secret,
            wait_on_rate_limit=False,  # never park a worker; the task reschedules itself
        )
        provider_session(X_ORIGINS, sandbox_url, SANDBOX_PATH, timeout, session=self.client.session)
        self._last = _LastResponse()
        self.client.session.hooks["response"].append(self._last.keep)

    @classmethod
    def from_settings(
        cls,
        settings: Mapping[str, Any],
        sandbox_url: str | None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> XChannel:
        """Build from the console's config (`X_*` keys); `sandbox_url` None means the real X."""
        missing = [key for key in SETTINGS if not settings.get(key)]
        if missing:
            raise PermanentChannelError(f"x is not configured: {', '.join(missing)}", "not_configured")
        return cls(
            api_key=settings["X_API_KEY"],
            api_secret=settings["X_API_SECRET"],
            access_token=settings["X_ACCESS_TOKEN"],
            access_secret=settings["X_ACCESS_SECRET"],
            bearer_token=settings["X_BEARER_TOKEN"],
            username=settings["X_USERNAME"],
            sandbox_url=sandbox_url,
            timeout=timeout,
        )

    # Outbound

    @classmethod
    def render(cls, draft: Draft) -> Rendering:
        """Build the post text: the channel's text with the link appended; weighted length ≤ 280."""
        text = draft.text_for(cls.name)
        if draft.link and draft.link not in text:
            text = f"{text} {draft.link}"
        length, accepted = weighted_length(text)
        return Rendering(
            channel=cls.name,
            text=text,
            length=length,
            limit=cls.max_length,
            valid=accepted and 0 < length <= cls.max_length,
            details={"unit": "weighted", "link": draft.link},
        )

    def publish(self, outbound: Outbound) -> Receipt:
        """Post `outbound.text` verbatim; with `reply_to`, as a reply in that post's thread."""
        reply_to = outbound.reply_to.provider_id if outbound.reply_to else None
        with _translated("publish"):
            response = self.client.create_tweet(
                text=outbound.text, in_reply_to_tweet_id=reply_to, user_auth=True
            )
        return self._receipt(response.data)

    def retract(self, receipt: Receipt) -> None:
        """Delete the post; one that is already gone counts as retracted."""
        try:
            with _translated("retract"):
                response = self.client.delete_tweet(receipt.provider_id, user_auth=True)
        except PermanentChannelError as exc:
            if exc.code == "404":  # a retried delete whose first attempt landed
                return
            raise
        if not (response.data or {}).get("deleted"):
            raise PermanentChannelError("x did not delete the post", "not_deleted")

    def find(self, outbound: Outbound) -> Receipt | None:
        """Look through the account's posts since `attempted_at` for one with the same text."""
        params: dict[str, Any] = {
            "max_results": 100,
            "tweet_fields": ["created_at", "entities", "referenced_tweets"],
        }
        if outbound.attempted_at is not None:
            params["start_time"] = _utc(outbound.attempted_at) - FIND_SLACK
        for _ in range(FIND_MAX_PAGES):
            with _translated("find"):
                response = self.client.get_users_tweets(self.user_id, **params)
            for tweet in response.data or []:
                if _same_post(tweet.data, outbound):
                    return self._receipt(tweet.data)
            params["pagination_token"] = (response.meta or {}).get("next_token")
            if not params["pagination_token"]:
                return None
        return None

    def check(self) -> ChannelStatus:
        """Call `GET /2/users/me`; report the account and the rate-limit window."""
        try:
            with _translated("check"):
                me = self.client.get_me(user_auth=True).data
        except (TransientChannelError, PermanentChannelError) as exc:
            return ChannelStatus(ok=False, detail=f"{exc} ({_error_code(exc)})")
        remaining, reset = _window(self._last.headers)
        username = me.username if me is not None else ""
        ok = username.lower() == self.username.lower()
        detail = f"@{username}" if ok else f"token belongs to @{username}, not @{self.username}"
        return ChannelStatus(ok=ok, detail=detail, rate_limit_remaining=remaining, rate_limit_reset=reset)

    def _receipt(self, data: Mapping[str, Any]) -> Receipt:
        post_id = str(data["id"])
        return Receipt(post_id, f"https://x.com/{self.username}/status/{post_id}", dict(data))

    # Inbound (polling)

    def poll_mentions(
        self, since_id: str | None, page_size: int = 100
    ) -> tuple[list[Mention], str | None, float | None]:
        """Return (mentions oldest first, the id to poll from next, seconds to wait or None).

        A 429 is not raised: the poller gets what was read so far, the old `since_id` (so nothing
        older is skipped; storage dedupes on the post id) and the wait X asked for. Other errors
        raise. Without `since_id` only the newest page is read, so a first poll skips history.
        """
        return self._poll(
            lambda **params: self.client.get_users_mentions(self.user_id, **params),
            since_id,
            page_size,
            "pagination_token",
        )

    def poll_replies(
        self, conversation_id: str, since_id: str | None, page_size: int = 100
    ) -> tuple[list[Mention], str | None, float | None]:
        """Like `poll_mentions`, for replies in one thread that need not mention the account."""
        query = f"conversation_id:{conversation_id} -is:retweet"
        return self._poll(
            lambda **params: self.client.search_recent_tweets(query, **params),
            since_id,
            max(page_size, 10),
            "next_token",
        )

    def _poll(
        self,
        call: Callable[..., tweepy.Response],
        since_id: str | None,
        page_size: int,
        token_name: str,
    ) -> tuple[list[Mention], str | None, float | None]:
        params: dict[str, Any] = {
            "since_id": since_id,
            "max_results": page_size,
            "expansions": ["author_id"],
            "tweet_fields": MENTION_FIELDS,
        }
        mentions: list[Mention] = []
        newest = since_id
        for page in range(POLL_MAX_PAGES if since_id else 1):
            try:
                with _translated("poll"):
                    response = call(**params)
            except RateLimitedError as exc:
                return _oldest_first(mentions), since_id, exc.retry_after
            meta = response.meta or {}
            if page == 0 and meta.get("newest_id"):
                newest = str(meta["newest_id"])
            # Our own posts in a thread (and the thread's first post) are not reactions.
            mentions.extend(m for m in _mentions_from(response) if m.author_id != self.user_id)
            params[token_name] = meta.get("next_token")
            if not params[token_name]:
                break
        remaining, reset = _window(self._last.headers)
        wait = _seconds_until(reset) if remaining == 0 and reset else None
        return _oldest_first(mentions), newest, wait


# Error translation


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """Turn tweepy and requests failures into the contract's typed errors."""
    try:
        yield
    except tweepy.TooManyRequests as exc:
        raise RateLimitedError(
            f"x {action}: rate limited", retry_after=_retry_after(exc.response.headers)
        ) from exc
    except tweepy.TwitterServerError as exc:
        raise TransientChannelError(f"x {action}: {_reason(exc)}") from exc
    except tweepy.HTTPException as exc:
        raise _permanent(action, exc) from exc
    except NETWORK_ERRORS as exc:
        # A timeout after the request left us means the outcome is unknown: callers reconcile
        # with find() instead of sending again.
        raise TransientChannelError(f"x {action}: {type(exc).__name__}") from exc
    except requests.JSONDecodeError as exc:  # a 2xx that is not the API (a proxy's page)
        raise TransientChannelError(f"x {action}: response was not JSON") from exc


def _permanent(action: str, exc: tweepy.HTTPException) -> PermanentChannelError:
    """Map a 4xx: duplicate content gets its own code, the rest X's error code or HTTP status."""
    messages = " ".join(str(m) for m in exc.api_messages).lower()
    if (exc.response.status_code == 403 and "duplicate" in messages) or 187 in exc.api_codes:
        return PermanentChannelError(f"x {action}: duplicate content", "duplicate")
    code = exc.api_codes[0] if exc.api_codes else exc.response.status_code
    return PermanentChannelError(f"x {action}: {_reason(exc)}", str(code))


def _reason(exc: tweepy.HTTPException) -> str:
    """Return X's own words for the failure on one line (tweepy puts status, reason, details)."""
    return " ".join(str(exc).split())


def _error_code(exc: Exception) -> str:
    return getattr(exc, "code", None) or "transient"


def _retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Return seconds until the window behind a 429 resets (the 24-hour quota when spent)."""
    resets = [headers.get("x-rate-limit-reset")]
    for quota in ("x-user-limit-24hour", "x-app-limit-24hour"):
        if headers.get(f"{quota}-remaining") == "0":
            resets.append(headers.get(f"{quota}-reset"))
    epochs = [int(value) for value in resets if value and str(value).isdigit()]
    if not epochs:
        return None
    return max(0.0, max(epochs) - (time.time() if now is None else now))


def _window(headers: Mapping[str, str]) -> tuple[int | None, datetime | None]:
    """Read the 15-minute window's remaining calls and reset time from response headers."""
    lowered = {key.lower(): value for key, value in headers.items()}
    remaining = lowered.get("x-rate-limit-remaining")
    reset = lowered.get("x-rate-limit-reset")
    return (
        int(remaining) if remaining and remaining.isdigit() else None,
        datetime.fromtimestamp(int(reset), UTC) if reset and reset.isdigit() else None,
    )


def _seconds_until(moment: datetime) -> float:
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# Matching a post against what we sent


def _same_post(data: Mapping[str, Any], outbound: Outbound) -> bool:
    """Tell whether a post X returned is `outbound`: same text after X's rewriting, same thread."""
    if outbound.reply_to is not None:
        replied = {
            ref.get("id") for ref in data.get("referenced_tweets") or [] if ref.get("type") == "replied_to"
        }
        if str(outbound.reply_to.provider_id) not in replied:
            return False
    return _comparable(_plain_text(data)) == _comparable(outbound.text)


def _plain_text(data: Mapping[str, Any]) -> str:
    """Undo X's rewriting: expand t.co links, unescape HTML entities."""
    text = html.unescape(str(data.get("text", "")))
    for url in (data.get("entities") or {}).get("urls") or []:
        if url.get("url") and url.get("expanded_url"):
            text = text.replace(url["url"], url["expanded_url"])
    return text


def _comparable(text: str) -> str:
    # X normalises to NFC and trims; compare on the same footing.
    return " ".join(unicodedata.normalize("NFC", text).split())


# Inbound parsing


def _mentions_from(response: tweepy.Response) -> list[Mention]:
    users = {str(user.id): user.username for user in (response.includes or {}).get("users", [])}
    return [_mention_from_v2(tweet.data, users) for tweet in response.data or []]


def _mention_from_v2(data: Mapping[str, Any], users: Mapping[str, str]) -> Mention:
    refs = data.get("referenced_tweets") or []
    replied = [str(ref["id"]) for ref in refs if ref.get("type") == "replied_to"]
    author = str(data["author_id"]) if data.get("author_id") else None
    return Mention(
        id=str(data["id"]),
        text=html.unescape(str(data["text"])),
        author_id=author,
        author_username=users.get(author) if author else None,
        in_reply_to_id=replied[0] if replied else None,
        conversation_id=str(data["conversation_id"]) if data.get("conversation_id") else None,
        referenced_ids=tuple(str(ref["id"]) for ref in refs),
        created_at=_parse_v2_time(data.get("created_at")),
    )


def _parse_v2_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(value.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")


def _oldest_first(mentions: list[Mention]) -> list[Mention]:
    unique = {mention.id: mention for mention in mentions}
    return sorted(unique.values(), key=lambda mention: int(mention.id))


# Account Activity webhooks


def crc_response(crc_token: str, consumer_secret: str) -> dict[str, str]:
    """Answer X's CRC check: `sha256=` + base64 HMAC-SHA256 of the token, keyed by the secret."""
    digest = hmac.new(consumer_secret.encode(), crc_token.encode(), hashlib.sha256).digest()
    return {"response_token": "sha256=" + base64.b64encode(digest).decode()}


def verify_webhook_signature(raw_body: bytes, header_value: str | None, consumer_secret: str) -> bool:
    """Check `x-twitter-webhooks-signature` against the raw body, in constant time."""
    if not consumer_secret or not header_value:
        return False  # an unset secret must never make every signature valid
    digest = hmac.new(consumer_secret.encode(), raw_body, hashlib.sha256).digest()
    expected = "sha256=" + base64.b64encode(digest).decode()
    return hmac.compare_digest(expected.encode(), header_value.strip().encode())


def parse_webhook_events(payload: Mapping[str, Any]) -> list[Mention]:
    """Parse an Account Activity payload's `tweet_create_events`, minus the account's own posts."""
    own_id = str(payload.get("for_user_id", ""))
    mentions = []
    for event in payload.get("tweet_create_events") or []:
        user = event.get("user") or {}
        if str(user.get("id_str", "")) == own_id:
            continue  # the account's own posts are echoed too; they are not reactions
        mentions.append(_mention_from_v1(event))
    return mentions


def _mention_from_v1(event: Mapping[str, Any]) -> Mention:
    user = event.get("user") or {}
    extended = event.get("extended_tweet") or {}
    reply_to = event.get("in_reply_to_status_id_str")
    quoted = event.get("quoted_status_id_str")
    return Mention(
        id=str(event["id_str"]),
        text=html.unescape(str(extended.get("full_text") or event.get("text", ""))),
        author_id=user.get("id_str"),
        author_username=user.get("screen_name"),
        in_reply_to_id=reply_to,
        conversation_id=None,  # v1.1 objects carry no conversation id
        referenced_ids=tuple(ref for ref in (reply_to, quoted) if ref),
        created_at=_parse_v1_time(event.get("created_at")),
    )


def _parse_v1_time(value: str | None) -> datetime | None:
    return datetime.strptime(value, "%a %b %d %H:%M:%S %z %Y") if value else None
