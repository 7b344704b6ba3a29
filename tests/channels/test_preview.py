"""Tests for channels.preview: the JSON shape the API serves and the texts it previews."""

from __future__ import annotations

import json

import pytest

from channels.base import Draft
from channels.preview import FACEBOOK_LIMIT, compose, preview

BODY = (
    "Grote brand bij een bedrijf aan de Kerkstraat in Dalfsen. Er komt veel rook vrij. "
    "Ga naar binnen. Houd ramen en deuren dicht."
)
LINK = "https://crisis.dalfsen.nl/incidents/brand-kerkstraat/updates/3"
ALL = ["x", "facebook", "sms", "website"]


def test_shape_with_every_channel():
    result = preview(BODY, ALL, link=LINK)
    assert set(result) == {"x", "facebook", "sms", "website", "readability"}
    assert set(result["x"]) == {"weighted_length", "valid", "limit", "text"}
    assert set(result["sms"]) == {
        "encoding",
        "segments",
        "units",
        "ucs2_chars",
        "replacements",
        "text",
    }
    assert set(result["facebook"]) == {"length", "valid", "limit", "text"}
    assert set(result["website"]) == {"length", "text"}
    assert set(result["readability"]) == {
        "flesch_douma",
        "level",
        "long_sentences",
        "long_words",
    }
    assert json.loads(json.dumps(result)) == result  # plain JSON, nothing that needs an encoder


def test_only_requested_channels_and_always_readability():
    result = preview(BODY, ["sms"])
    assert set(result) == {"sms", "readability"}
    assert set(preview(BODY, [])) == {"readability"}


def test_unknown_channel_is_rejected():
    with pytest.raises(ValueError, match="telegram"):
        preview(BODY, ["x", "telegram"])


def test_values_for_a_plain_message():
    result = preview(BODY, ALL, link=LINK)
    assert result["x"] == {
        "weighted_length": len(BODY) + 1 + 23,  # every URL counts 23
        "valid": True,
        "limit": 280,
        "text": f"{BODY} {LINK}",
    }
    page_text = f"{BODY}\n\n{LINK}"
    assert result["facebook"] == {
        "length": len(page_text),
        "valid": True,
        "limit": FACEBOOK_LIMIT,
        "text": page_text,
    }
    # The website text is the update's own page: no link to itself.
    assert result["website"] == {"length": len(BODY), "text": BODY}
    # 125 + 1 + 62 = 188 units would need a second segment, so the SMS goes without the link.
    sms = result["sms"]
    assert (sms["encoding"], sms["segments"], sms["units"]) == ("GSM-7", 1, len(BODY))
    assert (sms["ucs2_chars"], sms["replacements"], sms["text"]) == ([], [], BODY)
    assert result["readability"]["level"] in {"A2", "B1"}


def test_marker_goes_first_on_every_text():
    result = preview(BODY, ALL, link=LINK, marker="OEFENING:")
    for channel in ALL:
        assert result[channel]["text"].startswith(f"OEFENING: {BODY}"), channel
    assert result["x"]["weighted_length"] == len("OEFENING: ") + len(BODY) + 1 + 23


def test_readability_scores_the_body_not_the_marker_or_link():
    plain = preview(BODY, [])["readability"]
    assert preview(BODY, ALL, link=LINK, marker="OEFENING:")["readability"] == plain


def test_sms_link_is_left_out_when_it_would_add_a_segment():
    body = "a" * 100  # 100 + line break + 62-character link = 163 units: a second segment
    result = preview(body, ["sms", "x"], link=LINK)
    assert (result["sms"]["text"], result["sms"]["segments"]) == (body, 1)
    assert result["x"]["text"] == f"{body} {LINK}"  # X still gets it


def test_sms_link_is_kept_when_it_fits_the_segments_already_paid_for():
    short = preview("Ga naar binnen.", ["sms"], link=LINK)["sms"]
    assert (short["text"], short["segments"]) == (f"Ga naar binnen.\n{LINK}", 1)
    body = "a" * 200  # 2 segments either way
    result = preview(body, ["sms"], link=LINK)
    assert (result["sms"]["text"], result["sms"]["segments"]) == (f"{body}\n{LINK}", 2)


def test_link_already_in_the_body_is_not_repeated():
    body = f"Meer informatie: {LINK}"
    assert preview(body, ["website"], link=LINK)["website"]["text"] == body


def test_sms_reports_ucs2_characters_and_replacements_at_sms_text_positions():
    result = preview("Auto’s weg.", ["sms"], marker="OEFENING:")["sms"]
    assert result["encoding"] == "UCS-2"
    assert result["ucs2_chars"] == [{"char": "’", "position": 14, "codepoint": "U+2019"}]
    [replacement] = result["replacements"]
    assert (replacement["position"], replacement["replacement"]) == (14, "'")


def test_x_invalid_when_too_long():
    result = preview("Let op. " * 40, ["x"])["x"]
    assert (result["weighted_length"], result["valid"]) == (320, False)


@pytest.mark.timeout(10)  # the preview runs per keystroke: nothing in it may be quadratic
def test_facebook_limit():
    assert preview("a" * FACEBOOK_LIMIT, ["facebook"])["facebook"]["valid"] is True
    assert preview("a" * (FACEBOOK_LIMIT + 1), ["facebook"])["facebook"]["valid"] is False


def test_override_replaces_the_body_for_that_channel_only():
    result = preview(BODY, ["x", "sms"], overrides={"sms": "Brand Kerkstraat. Ga naar binnen."})
    assert result["sms"]["text"] == "Brand Kerkstraat. Ga naar binnen."
    assert result["x"]["text"] == BODY


def test_compose_matches_preview_text():
    draft = Draft(body=BODY, link=LINK, marker="OEFENING:")
    result = preview(BODY, ALL, link=LINK, marker="OEFENING:")
    assert {channel: compose(draft, channel) for channel in ALL} == {
        channel: result[channel]["text"] for channel in ALL
    }
