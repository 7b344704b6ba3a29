"""Phone numbers: parse what a resident typed into E.164, and mask it for display."""

from __future__ import annotations

from collections.abc import Sequence

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType


class InvalidPhone(ValueError):
    """The text is not a number we accept; `reason` is one of the keys of REASONS."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


REASONS = ("empty", "unparsable", "invalid", "region", "not_mobile")


def normalise(raw: str | None, regions: Sequence[str] = ("NL",), *, mobile_only: bool = True) -> str:
    """Return `raw` as E.164 (`+31612345678`), or raise InvalidPhone.

    A number without a country code is read in the first of `regions` ("06 1234 5678"); a number
    of another region, or (with `mobile_only`) one that cannot receive SMS, is refused.
    """
    text = (raw or "").strip()
    if not text:
        raise InvalidPhone("empty")
    if len(text) > 40:
        raise InvalidPhone("unparsable")
    default_region = regions[0] if regions else None
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        raise InvalidPhone("unparsable") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("invalid")
    if regions and phonenumbers.region_code_for_number(number) not in regions:
        raise InvalidPhone("region")
    if mobile_only and phonenumbers.number_type(number) != PhoneNumberType.MOBILE:
        raise InvalidPhone("not_mobile")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def normalise_any(raw: str | None, regions: Sequence[str] = ("NL",)) -> str:
    """E.164 for an admin's lookup: any valid-looking number, of any type or region.

    An export or an erasure must find a number even when it would not be accepted today.
    """
    text = (raw or "").strip()
    try:
        number = phonenumbers.parse(text, regions[0] if regions else None)
    except phonenumbers.NumberParseException:
        raise InvalidPhone("unparsable") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidPhone("invalid")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def mask(e164: str) -> str:
    """`+31612345678` -> `+316…5678`: enough to recognise one's own number, not to copy it."""
    if len(e164) <= 6:
        return "•" * len(e164)
    return f"{e164[:4]}…{e164[-4:]}"
