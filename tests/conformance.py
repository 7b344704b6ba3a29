"""Locate the third-party conformance vectors in ../shared/conformance.

They are read in place, never copied. In a clone without that folder the tests that need it skip
with the reason; under CI=true its absence is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "conformance"


def conformance_file(relative: str) -> Path:
    """Return the path of a conformance file, or skip (fail under CI) when it is not there."""
    path = ROOT / relative
    if not path.exists():
        reason = f"conformance vectors not found at {path} (expected ../shared/conformance)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path
