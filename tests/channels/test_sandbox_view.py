"""The sandbox's read-only public view: X timeline, Facebook page, SMS inboxes, all escaped."""

from __future__ import annotations

import re

import requests

from channels.base import Outbound
from channels.facebook import FacebookChannel
from channels.factory import sandbox_settings
from channels.sandbox import create_sandbox_app
from channels.sms import SmsChannel
from channels.x import XChannel

RESIDENT, NEIGHBOUR = "+31612345678", "+31687654321"


def channels(sandbox):
    settings = sandbox_settings()
    return (
        XChannel.from_settings(settings, sandbox.url, timeout=5),
        FacebookChannel.from_settings(settings, sandbox.url, timeout=5),
        SmsChannel.from_settings(settings, sandbox.url, timeout=5),
    )


def view(sandbox, **params) -> str:
    response = requests.get(f"{sandbox.url}/_sandbox/view", params=params, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    return response.text


def section(html: str, name: str) -> str:
    return re.search(rf'<section id="{name}".*?(?=<section id=|</main>)', html, re.S).group(0)


def test_posts_edits_comments_and_sms_show_up(sandbox):
    x, facebook, sms = channels(sandbox)
    first = x.publish(Outbound(key="a", text="Brand bij de Industrieweg in Dalfsen."))
    second = x.publish(Outbound(key="b", text="Update: de brand is onder controle."))
    x.publish(Outbound(key="c", text="Meer informatie volgt.", reply_to=second))
    x.retract(first)
    sandbox.control("POST", "/inject", json={"channel": "x", "text": "Is de weg dicht?",
                                              "in_reply_to": second.provider_id,
                                              "author": "bezorgde_buur"})
    post = facebook.publish(Outbound(key="d", text="Grote brand in Dalfsen.", link="https://crisis.example.nl/i/1"))
    facebook.edit(post, Outbound(key="d", text="Grote brand in Dalfsen. Houd ramen dicht."))
    sandbox.control("POST", "/inject", json={"channel": "facebook", "text": "Wat moet ik doen?",
                                              "post_id": post.provider_id, "author": "Jan Jansen"})
    sms.publish(Outbound(key="e", text="Oud bericht", to=RESIDENT))
    sms.publish(Outbound(key="f", text="Nieuw bericht", to=RESIDENT))
    sms.publish(Outbound(key="g", text="Bericht voor de buren", to=NEIGHBOUR))

    html = view(sandbox)
    timeline = section(html, "x")
    # Newest thread first; the deleted post is struck through; replies sit inside their thread.
    assert timeline.index("Update: de brand") < timeline.index("Brand bij de Industrieweg")
    assert "<del>Brand bij de Industrieweg in Dalfsen.</del>" in timeline
    thread = re.search(rf'data-id="{second.provider_id}">.*?</ol>', timeline, re.S).group(0)
    assert "Meer informatie volgt." in thread and "Is de weg dicht?" in thread
    assert "replying to @crisis_nl" in thread and "@bezorgde_buur" in thread

    page = section(html, "facebook")
    assert "Grote brand in Dalfsen. Houd ramen dicht." in page  # the current text
    assert "<del>Grote brand in Dalfsen.</del>" in page  # the edit history
    assert "Edit history (1)" in page and "https://crisis.example.nl/i/1" in page
    assert "Wat moet ik doen?" in page and "Jan Jansen" in page

    inboxes = section(html, "sms")
    resident = re.search(rf'data-number="\{RESIDENT}">.*?</section>', inboxes, re.S).group(0)
    assert resident.index("Nieuw bericht") < resident.index("Oud bericht")  # newest first
    assert "Bericht voor de buren" not in resident
    assert re.search(r'class="status">(queued|accepted|sending|sent|delivered)<', resident)
    # The number whose inbox changed last comes first.
    assert inboxes.index(f'data-number="{NEIGHBOUR}"') < inboxes.index(f'data-number="{RESIDENT}"')

    only = section(view(sandbox, to=NEIGHBOUR), "sms")
    assert "Bericht voor de buren" in only and "Nieuw bericht" not in only


def test_everything_is_escaped(sandbox):
    x, facebook, sms = channels(sandbox)
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    x.publish(Outbound(key="a", text=f"Brand {attack}"))
    facebook.publish(Outbound(key="b", text=f"Brand {attack}"))
    sms.publish(Outbound(key="c", text=f"Brand {attack}", to=RESIDENT))
    sandbox.control("POST", "/inject", json={"channel": "x", "text": "hoi", "author": "<b>evil</b>"})
    html = view(sandbox)
    assert "<script>" not in html and "<img" not in html and "<b>evil" not in html
    assert html.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") == 3


def test_an_empty_sandbox_says_so(sandbox):
    html = view(sandbox)
    assert html.count("No posts yet.") == 2 and "No text messages yet." in html


def test_the_view_needs_the_control_token_outside_the_demo():
    client = create_sandbox_app({"SANDBOX_TOKEN": "s3cret"}).test_client()
    assert client.get("/_sandbox/view").status_code == 401
    assert client.get("/_sandbox/view", headers={"Authorization": "Bearer wrong"}).status_code == 401
    response = client.get("/_sandbox/view", headers={"Authorization": "Bearer s3cret"})
    assert response.status_code == 200 and b"what the public sees" in response.data
