"""A read-only page of what the public sees in the sandbox: the X timeline, the Facebook page and
the SMS inbox of every phone number.

It lives under `/_sandbox`, so outside the demo it needs the control token like the rest of the
control API. Plain HTML, no scripts; every text goes through Jinja's autoescaping.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, current_app, render_template, request

from channels.sandbox import facebook as fb

bp = Blueprint("sandbox_view", __name__, url_prefix="/_sandbox", template_folder="templates")

MAX_NUMBERS = 200  # phone numbers shown at once; a fan-out to every resident is long


@bp.get("/view")
def public_view():
    """The public's view of every provider; `?to=+316...` shows one phone number's inbox only."""
    config = current_app.config
    to = request.args.get("to") or None
    inboxes, hidden = sms_inboxes(current_app.extensions["sandbox_twilio"], to)
    return render_template(
        "sandbox/view.html",
        account=current_app.extensions["sandbox_x"].account(config),
        timeline=x_timeline(current_app.extensions["sandbox_x"], config),
        page=fb.page(config),
        posts=facebook_page(current_app.extensions["sandbox_facebook"]),
        inboxes=inboxes,
        hidden_numbers=hidden,
        only=to,
    )


def x_timeline(store, config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every post, threads first-post newest first, each thread's replies nested oldest first."""
    posts = sorted(store.all_posts("api") + store.all_posts("inject"), key=lambda p: int(p["id"]))
    users: dict[str, dict[str, str]] = {}

    def author(user_id: str | None) -> str:
        if not user_id:
            return ""
        if user_id not in users:
            users[user_id] = store.user_by_id(user_id, config) or {"username": user_id}
        return users[user_id].get("username") or user_id

    nodes = {
        post["id"]: {
            "id": post["id"],
            "text": post["text"],
            "author": author(post["author_id"]),
            "created_at": post["created_at"],
            "deleted": post["deleted"],
            "deleted_at": post["deleted_at"],
            "reply_to": author(post["in_reply_to_user_id"]) if post["in_reply_to"] else None,
            "by_public": post["source"] == "inject",
            "replies": [],
        }
        for post in posts
    }
    roots = []
    for post in posts:
        parent = nodes.get(post["in_reply_to"] or "")
        (parent["replies"] if parent else roots).append(nodes[post["id"]])
    return roots[::-1]


def facebook_page(store) -> list[dict[str, Any]]:
    """The page's posts newest first, each with its edits and its comments (replies nested)."""
    objects = sorted(store.everything("api") + store.everything("inject"), key=lambda o: o["seq"])
    nodes = {
        o["id"]: {
            "id": o["id"],
            "kind": o["kind"],
            "message": o["message"],
            "link": o.get("link"),
            "author": (o.get("from") or {}).get("name") or "",
            "created_time": fb._iso(o["created_time"]),
            "edits": list(o["edits"]),
            "deleted": o["deleted"],
            "deleted_at": o["deleted_at"],
            "by_public": o["source"] == "inject",
            "comments": [],
        }
        for o in objects
    }
    posts = []
    for o in objects:
        if o["kind"] == "post":
            posts.append(nodes[o["id"]])
        elif o.get("parent_id") in nodes:
            nodes[o["parent_id"]]["comments"].append(nodes[o["id"]])
    return posts[::-1]


def sms_inboxes(store, to: str | None = None) -> tuple[list[dict[str, Any]], int]:
    """Messages grouped by the number they went to, newest first; and how many numbers were left out.

    The number whose inbox changed last comes first.
    """
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in store.snapshot(to):  # oldest first
        groups[message["to"]].append(message)
    inboxes = [
        {"number": number, "messages": messages[::-1]}
        for number, messages in sorted(
            groups.items(), key=lambda item: item[1][-1]["created_at"] or "", reverse=True
        )
    ]
    return inboxes[:MAX_NUMBERS], max(0, len(inboxes) - MAX_NUMBERS)
