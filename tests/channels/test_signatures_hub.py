"""The published X-Hub-Signature-256 vector, checked with the Facebook webhook verifier."""

from __future__ import annotations

import json

from channels.facebook import verify_signature
from tests.conformance import conformance_file


def load_vector() -> dict:
    return json.loads(conformance_file("webhook-signatures/hub-sha256.json").read_text("utf-8"))


def test_published_vector_verifies():
    vector = load_vector()
    assert verify_signature(vector["payload"].encode(), vector["header"], vector["secret"])


def test_uppercase_hex_from_a_proxy_still_verifies():
    vector = load_vector()
    header = "sha256=" + vector["header"].removeprefix("sha256=").upper()
    assert verify_signature(vector["payload"].encode(), header, vector["secret"])


def test_vector_fails_with_any_change():
    vector = load_vector()
    payload, header, secret = vector["payload"].encode(), vector["header"], vector["secret"]
    assert not verify_signature(payload + b" ", header, secret)
    assert not verify_signature(payload, header, secret + "x")
    assert not verify_signature(payload, header.replace("sha256=", "sha1="), secret)
    assert not verify_signature(payload, header[:-1] + "0", secret)
    assert not verify_signature(payload, "", secret)
