"""Facebook Page: posts through facebook-sdk's `GraphAPI`, comments from the page webhook.

facebook-sdk 3.1.0 is unmaintained (docs/channels.md §2.1-2.2), so it runs with three
workarounds: the Graph version is set after construction (its validator only knows v2.8-v3.1,
retired versions that Graph silently maps onto whatever is oldest), it gets our own `requests`
session (default timeout, sandbox redirect, and a response hook that keeps the HTTP status and
usage headers the SDK throws away), and an answer that is not Graph's JSON counts as transient.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import facebook
import requests

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
from channels.transport import provider_session

GRAPH_ORIGINS = ["https://graph.facebook.com"]
SANDBOX_PATH = "/graph"
DEFAULT_GRAPH_VERSION = "v21.0"
SETTINGS = ("FACEBOOK_PAGE_ID", "FACEBOOK_PAGE_TOKEN")
USAGE_HEADERS = ("x-app-usage", "x-page-usage", "x-business-use-case-usage")
# Graph's throttling codes (§2.3): app, user, page, per-API and Business Use Case limits.
RATE_LIMIT_CODES = {4, 17, 32, 613} | set(range(80001, 80015))
TRANSIENT_CODES = {1, 2}  # "unknown error" / "service temporarily unavailable"
RATE_LIMIT_FALLBACK = 60.0  # seconds, when a throttled answer carries no usage estimate
FIND_SLACK = timedelta(minutes=2)
FIND_MAX_PAGES = 3
# The connection failed or broke mid-answer: worth another try (a timed-out write may have landed).
NETWORK_ERRORS = (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError)


@dataclass(frozen=True)
class Comment:
    """A comment (or reply to a comment) on one of the page's posts, from the page webhook."""

    comment_id: str
    post_id: str
    verb: str  # add | edited | remove
    parent_id: str | None = None  # the post for a top-level comment, else the parent comment
    author_id: str | None = None
    author_name: str | None = None
    message: str | None = None  # absent on remove
    created_time: datetime | None = None
    page_id: str | None = None

    @property
    def by_page(self) -> bool:
        """Tell whether the page itself wrote this (our own replies are not reactions)."""
        return bool(self.author_id) and self.author_id == self.page_id


class GraphPermanentError(PermanentChannelError):
    """A permanent Graph error; `code` is Graph's code, `subcode` its `error_subcode`."""

    def __init__(self, message: str, code: str, subcode: int | None = None) -> None:
        """Keep Graph's subcode next to the code (e.g. 190/463: the token expired)."""
        super().__init__(message, code)
        self.subcode = subcode


class _LastResponse(threading.local):
    """The last Graph response's status and headers on this thread (facebook-sdk drops them)."""

    status: int | None = None
    headers: Mapping[str, str] = {}
    content_type: str = ""

    def clear(self) -> None:
        """Forget the previous call's response before a new one."""
        self.status, self.headers, self.content_type = None, {}, ""

    def keep(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Remember status and headers (a requests response hook); never the URL or body."""
        self.status = response.status_code
        self.headers = {key.lower(): value for key, value in response.headers.items()}
        self.content_type = self.headers.get("content-type", "")


class FacebookChannel(Channel):
    """Publish to one Facebook Page with a Page access token."""

    name: ClassVar[str] = "facebook"
    max_length: ClassVar[int] = 63206
    can_edit: ClassVar[bool] = True

    def __init__(
        self,
        *,
        page_id: str,
        page_token: str,
        app_secret: str | None = None,
        graph_version: str = DEFAULT_GRAPH_VERSION,
        sandbox_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Build the GraphAPI client; `sandbox_url` redirects every call to the sandbox."""
        if not re.fullmatch(r"v\d+\.\d+", graph_version):
            raise PermanentChannelError("FACEBOOK_GRAPH_VERSION must look like v21.0", "config")
        self.page_id = str(page_id)
        self.sandbox = sandbox_url is not None
        session = provider_session(GRAPH_ORIGINS, sandbox_url, SANDBOX_PATH, timeout)
        if app_secret:
            # appsecret_proof on every call: Graph then refuses a leaked token used without it.
            proof = hmac.new(app_secret.encode(), page_token.encode(), hashlib.sha256).hexdigest()
            session.params = {"appsecret_proof": proof}
        self._last = _LastResponse()
        session.hooks["response"].append(self._last.keep)
        self.graph = facebook.GraphAPI(access_token=page_token, timeout=timeout, session=session)
        self.graph.version = graph_version  # the SDK's own check rejects every current version

    @classmethod
    def from_settings(
        cls,
        settings: Mapping[str, Any],
        sandbox_url: str | None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> FacebookChannel:
        """Build from the console's config (`FACEBOOK_*` keys); `sandbox_url` None: real Graph."""
        missing = [key for key in SETTINGS if not settings.get(key)]
        if missing:
            raise PermanentChannelError(f"facebook is not configured: {', '.join(missing)}", "not_configured")
        return cls(
            page_id=settings["FACEBOOK_PAGE_ID"],
            page_token=settings["FACEBOOK_PAGE_TOKEN"],
            app_secret=settings.get("FACEBOOK_APP_SECRET") or None,
            graph_version=settings.get("FACEBOOK_GRAPH_VERSION") or DEFAULT_GRAPH_VERSION,
            sandbox_url=sandbox_url,
            timeout=timeout,
        )

    # Outbound

    @classmethod
    def render(cls, draft: Draft) -> Rendering:
        """Build the post text: the channel's text, the link on its own line below it."""
        text = draft.text_for(cls.name)
        if draft.link and draft.link not in text:
            text = f"{text}\n\n{draft.link}"
        length = len(text)
        return Rendering(
            channel=cls.name,
            text=text,
            length=length,
            limit=cls.max_length,
            valid=0 < length <= cls.max_length,
            details={"unit": "characters", "link": draft.link},
        )

    def publish(self, outbound: Outbound) -> Receipt:
        """Post to the page feed (with `link` for the preview card), or comment on `reply_to`."""
        if outbound.reply_to is not None:
            parent = outbound.reply_to
            result = self._call(
                "publish",
                self.graph.put_object,
                parent.provider_id,
                "comments",
                message=outbound.text,
            )
            return self._comment_receipt(str(result["id"]), parent, result)
        fields = {"message": outbound.text}
        if outbound.link:
            fields["link"] = outbound.link
        result = self._call("publish", self.graph.put_object, self.page_id, "feed", **fields)
        return self._post_receipt(str(result["id"]), result)

    def edit(self, receipt: Receipt, outbound: Outbound) -> Receipt:
        """Replace the message of a published post or comment (`POST /{id}`)."""
        path = f"{self.graph.version}/{receipt.provider_id}"
        result = self._call("edit", self.graph.request, path, post_args={"message": outbound.text})
        if not result.get("success"):
            raise PermanentChannelError("facebook edit: Graph did not confirm", "edit_failed")
        return Receipt(receipt.provider_id, receipt.url, {**receipt.raw, "edited": True})

    def retract(self, receipt: Receipt) -> None:
        """Delete the post or comment; one that is already gone counts as retracted."""
        try:
            self._call("retract", self.graph.delete_object, receipt.provider_id)
        except GraphPermanentError as exc:
            if (exc.code, exc.subcode) == ("100", 33):  # gone: a retried delete that landed
                return
            raise

    def find(self, outbound: Outbound) -> Receipt | None:
        """Look for `outbound` among the page's posts (or the comments on `reply_to`)."""
        if outbound.reply_to is not None:
            comments = self._items(
                outbound.reply_to.provider_id,
                "comments",
                fields="id,message,from,created_time",
                filter="stream",
                order="reverse_chronological",
            )
            for item in comments:
                if _same_text(item, outbound) and (item.get("from") or {}).get("id") in (
                    None,
                    self.page_id,
                ):
                    return self._comment_receipt(str(item["id"]), outbound.reply_to, item)
            return None
        params: dict[str, Any] = {"fields": "id,message,created_time"}
        if outbound.attempted_at is not None:
            params["since"] = int((_utc(outbound.attempted_at) - FIND_SLACK).timestamp())
        for item in self._items(self.page_id, "feed", **params):
            if _same_text(item, outbound):
                return self._post_receipt(str(item["id"]), item)
        return None

    def check(self) -> ChannelStatus:
        """Read the page with the page token; report Graph's usage headers."""
        try:
            page = self._call("check", self.graph.get_object, self.page_id, fields="id,name")
        except (TransientChannelError, PermanentChannelError) as exc:
            return ChannelStatus(ok=False, detail=f"{exc} ({getattr(exc, 'code', 'transient')})")
        usage = {
            name: _json_or_text(self._last.headers[name])
            for name in USAGE_HEADERS
            if name in self._last.headers
        }
        wait = _regain_seconds(self._last.headers)
        detail = f"page {page.get('name', '')} ({page.get('id', '')}); usage {json.dumps(usage)}"
        reset = datetime.now(UTC) + timedelta(seconds=wait) if wait else None
        return ChannelStatus(ok=True, detail=detail, rate_limit_reset=reset)

    # Graph calls

    def _call(self, action: str, method, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Run one SDK call; turn every failure, and a non-2xx the SDK accepted, into our errors."""
        self._last.clear()
        with self._translated(action):
            result = method(*args, **kwargs)
        if self._last.status is not None and self._last.status >= 400:
            # The SDK ignores the HTTP status: an error status without Graph's error JSON.
            raise _status_error(action, self._last.status)
        if not isinstance(result, dict):
            raise TransientChannelError(f"facebook {action}: unexpected answer from Graph")
        return result

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        try:
            yield
        except facebook.GraphAPIError as exc:
            raise self._graph_error(action, exc) from exc
        except NETWORK_ERRORS as exc:
            # Without `from`: requests puts the URL in its message, and for GET and DELETE the
            # SDK puts the page token in the URL. The outcome of a timed-out write is unknown.
            raise TransientChannelError(f"facebook {action}: {type(exc).__name__}") from None
        except (KeyError, ValueError) as exc:  # no content-type, or a body that is not JSON
            raise TransientChannelError(
                f"facebook {action}: response was not Graph's JSON ({type(exc).__name__})"
            ) from None

    def _graph_error(self, action: str, exc: facebook.GraphAPIError) -> Exception:
        error = exc.result.get("error") if isinstance(exc.result, dict) else None
        if not isinstance(error, dict):
            # The SDK's own complaint ("Maintype was not text, image, or querystring"): the
            # answer was not Graph's, e.g. an HTML page from a failing edge.
            return TransientChannelError(f"facebook {action}: response was not Graph's JSON")
        return classify(action, error, self._last.status, self._last.headers)

    def _items(self, object_id: str, edge: str, **params: Any) -> Iterator[dict[str, Any]]:
        params.setdefault("limit", 100)
        for _ in range(FIND_MAX_PAGES):
            page = self._call("find", self.graph.get_connections, object_id, edge, **params)
            yield from page.get("data") or []
            after = ((page.get("paging") or {}).get("cursors") or {}).get("after")
            if not after or not (page.get("paging") or {}).get("next"):
                return
            params["after"] = after

    def _post_receipt(self, post_id: str, raw: Mapping[str, Any]) -> Receipt:
        page, _, post = post_id.partition("_")
        url = f"https://www.facebook.com/{page}/posts/{post}" if post else None
        return Receipt(post_id, url, dict(raw))

    def _comment_receipt(self, comment_id: str, parent: Receipt, raw: Mapping[str, Any]) -> Receipt:
        local = comment_id.rpartition("_")[2]
        url = f"{parent.url.split('?')[0]}?comment_id={local}" if parent.url else None
        return Receipt(comment_id, url, dict(raw))


# Error classification


def classify(
    action: str, error: Mapping[str, Any], status: int | None, headers: Mapping[str, str]
) -> TransientChannelError | PermanentChannelError:
    """Map Graph's `{"error": {...}}` (plus HTTP status and usage headers) to a typed error."""
    code = _int(error.get("code"))
    subcode = _int(error.get("error_subcode"))
    message = str(error.get("message", ""))
    if not message.startswith(f"(#{code})"):  # Graph often puts the code in front itself
        message = f"(#{code}) {message}"
    reason = f"facebook {action}: {message}"
    if code in RATE_LIMIT_CODES:
        wait = _regain_seconds(headers) or RATE_LIMIT_FALLBACK
        return TransientChannelError(reason, retry_after=wait)
    if code in TRANSIENT_CODES or error.get("is_transient") or (status or 0) >= 500:
        return TransientChannelError(reason)
    if code == 506:
        return GraphPermanentError(reason, "duplicate", subcode)
    # 190 token, 10 / 200-299 permissions, 100 parameters, 368 blocked (a human must look).
    if subcode is not None:
        reason = f"{reason} (subcode {subcode})"
    return GraphPermanentError(reason, str(code), subcode)


def _status_error(action: str, status: int) -> TransientChannelError | PermanentChannelError:
    """Map an error status that came without Graph's error JSON."""
    if status >= 500 or status == 429:
        return TransientChannelError(f"facebook {action}: HTTP {status}")
    return PermanentChannelError(f"facebook {action}: HTTP {status}", str(status))


def _regain_seconds(headers: Mapping[str, str]) -> float | None:
    """Return the longest `estimated_time_to_regain_access` (minutes) in the usage headers."""
    minutes = [0.0]
    for name in USAGE_HEADERS:
        try:
            usage = json.loads(headers.get(name) or "{}")
        except ValueError:
            continue  # a malformed usage header must not hide the error it came with
        minutes.extend(_eta_values(usage))
    longest = max(minutes)
    return longest * 60 if longest > 0 else None


def _eta_values(node: Any) -> Iterator[float]:
    """Yield every `estimated_time_to_regain_access` in a usage header's nested JSON."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "estimated_time_to_regain_access" and isinstance(value, int | float):
                yield float(value)
            else:
                yield from _eta_values(value)
    elif isinstance(node, list):
        for item in node:
            yield from _eta_values(item)


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _same_text(item: Mapping[str, Any], outbound: Outbound) -> bool:
    return _comparable(str(item.get("message") or "")) == _comparable(outbound.text)


def _comparable(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# Inbound: the page webhook


def verify_subscription(args: Mapping[str, str], verify_token: str) -> str | None:
    """Return `hub.challenge` to echo when Meta's subscription check is genuine, else None."""
    given = args.get("hub.verify_token") or ""
    if (
        not verify_token
        or args.get("hub.mode") != "subscribe"
        or not hmac.compare_digest(given.encode(), verify_token.encode())
    ):
        return None
    return args.get("hub.challenge") or None


def verify_signature(raw_body: bytes, header: str | None, app_secret: str) -> bool:
    """Check `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` in constant time."""
    if not app_secret or not header:
        return False  # an unset secret must never make every signature valid
    expected = "sha256=" + hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().lower().encode())


def parse_webhook(payload: Mapping[str, Any]) -> list[Comment]:
    """Return every comment event (add, edited, remove) in a page webhook payload."""
    if payload.get("object") != "page":
        return []
    comments = []
    for entry in payload.get("entry") or []:
        for change in entry.get("changes") or []:
            value = change.get("value") or {}
            if change.get("field") == "feed" and value.get("item") == "comment":
                comments.append(_comment(value, str(entry.get("id", "")) or None))
    return comments


def _comment(value: Mapping[str, Any], page_id: str | None) -> Comment:
    author = value.get("from") or {}
    return Comment(
        comment_id=str(value.get("comment_id", "")),
        post_id=str(value.get("post_id", "")),
        verb=str(value.get("verb", "")),
        parent_id=str(value["parent_id"]) if value.get("parent_id") else None,
        author_id=str(author["id"]) if author.get("id") else None,
        author_name=author.get("name"),
        message=value.get("message"),
        created_time=_webhook_time(value.get("created_time")),
        page_id=page_id,
    )


def _webhook_time(value: Any) -> datetime | None:
    """Webhooks send Unix seconds; accept Graph's ISO form too."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
    return None
