"""Text rules the channels share: X weighted length, SMS encoding and segments, Dutch readability.

Everything here is pure and cheap enough to run on every keystroke of the composer. The SMS
counter is also what the sandbox uses for `num_segments`, so the preview and the "provider" agree.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyphen

with warnings.catch_warnings():
    # twitter-text-parser imports pkg_resources at module level, which warns on every import with
    # setuptools 81 (and is gone in 82, hence the pin in pyproject.toml). The warning is about the
    # library, not about us, so it must not reach the console's logs or the test output.
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="pkg_resources")
    from twitter_text import parse_tweet
    from twitter_text.config import config as _twitter_text_config

# --- X (twitter-text) ---------------------------------------------------------------------------

# The library's own "version2" entry lacks emoji_parsing_enabled and raises KeyError when used.
X_CONFIGS: dict[str, dict[str, Any]] = {
    "v2": {**_twitter_text_config["version2"], "emoji_parsing_enabled": False},
    "v3": _twitter_text_config["version3"],
}


@dataclass(frozen=True)
class XLength:
    """A text's length as X counts it; ranges are inclusive and in UTF-16 code units."""

    weighted_length: int
    valid: bool
    permillage: int
    limit: int
    display_range: tuple[int, int]
    valid_range: tuple[int, int]


X_PARSE_LIMIT = 1000  # characters


def x_length(text: str, config: str | Mapping[str, Any] = "v3") -> XLength:
    """Count `text` by twitter-text rules.

    `config` is "v2", "v3" (what X uses today) or a twitter-text JSON config such as
    `config/v3.json` from the twitter-text repository (camelCase keys).
    """
    options = _x_options(config)
    if len(text) > X_PARSE_LIMIT and "://" not in text:
        # twitter-text's URL matching slows down badly on long dotted text (seconds at 800
        # characters); a text this long without a full URL cannot fit 280 anyway.
        weighted = len(text) * options["scale"] // 100
        return XLength(weighted, False, weighted * 1000 // options["max_weighted_tweet_length"],
                       options["max_weighted_tweet_length"], (0, len(text) - 1), (0, -1))
    parsed = parse_tweet(text, options=options)
    return XLength(
        weighted_length=parsed.weightedLength,
        valid=parsed.valid,
        permillage=parsed.permillage,
        limit=options["max_weighted_tweet_length"],
        display_range=(parsed.displayRangeStart, parsed.displayRangeEnd),
        valid_range=(parsed.validRangeStart, parsed.validRangeEnd),
    )


def _x_options(config: str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(config, str):
        if config not in X_CONFIGS:
            raise ValueError(f"unknown twitter-text config {config!r}; use one of {list(X_CONFIGS)}")
        return X_CONFIGS[config]
    return {
        "version": config.get("version"),
        "max_weighted_tweet_length": config["maxWeightedTweetLength"],
        "scale": config["scale"],
        "default_weight": config["defaultWeight"],
        "transformed_url_length": config["transformedURLLength"],
        "emoji_parsing_enabled": config.get("emojiParsingEnabled", False),
        "ranges": [dict(r) for r in config["ranges"]],
    }


# --- SMS (GSM 03.38 / UCS-2) --------------------------------------------------------------------

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Each of these is sent as ESC + code, so it costs two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

# (bits per unit, units in a single SMS, units per part of a multipart SMS); a multipart SMS
# carries a 6-octet user data header in every part, which is what shrinks 160 to 153 and 70 to 67.
SMS_LIMITS = {"GSM-7": (7, 160, 153), "UCS-2": (16, 70, 67)}
_UDH_BITS = 48

# Look-alikes a word processor or phone keyboard slips in. Replacing them changes no meaning (most
# are in Twilio's Smart Encoding map too), unlike dropping an accent, which changes the spelling.
_TYPOGRAPHIC = {
    **dict.fromkeys("‘’‚‛′`´", "'"),
    **dict.fromkeys("“”„‟″«»", '"'),
    **dict.fromkeys("‐‑‒–—―−", "-"),
    **dict.fromkeys(
        "\t\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000",
        " ",
    ),
    **dict.fromkeys("\u00ad\u200b\u200c\u2060\ufeff", ""),
    "…": "...",
    "•": "-",
}

# User-perceived characters, approximately (UAX #29 without the tables): a base character with its
# combining marks, variation selectors, skin tones and tags, joined by ZWJ; a flag is two regional
# indicators. Good enough to show "65 characters" the way a phone (and Twilio's calculator) does.
_EXTEND = (
    "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe00-\ufe0f\ufe20-\ufe2f"
    "\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f"
)
_GRAPHEME_RE = re.compile(
    rf"\r\n|[\U0001f1e6-\U0001f1ff]{{2}}|.[{_EXTEND}]*(?:\u200d.[{_EXTEND}]*)*", re.DOTALL
)


@dataclass(frozen=True)
class SmsInfo:
    """How an SMS text is encoded and billed.

    `units` are septets for GSM-7 (an extension character counts two) and UTF-16 code units for
    UCS-2 (an emoji outside the BMP counts two). `ucs2_chars` lists every character that forces
    UCS-2 as {"char", "position", "codepoint"}, position being the Python string index.
    """

    encoding: str
    segments: int
    units: int
    characters: int
    ucs2_chars: list[dict[str, Any]] = field(default_factory=list)

    @property
    def bits(self) -> int:
        """Size of the text itself in bits."""
        return self.units * SMS_LIMITS[self.encoding][0]

    @property
    def total_bits(self) -> int:
        """Size including the user data header every part of a multipart SMS carries."""
        return self.bits + (_UDH_BITS * self.segments if self.segments > 1 else 0)


def is_gsm7(char: str) -> bool:
    """Whether `char` can be sent in the GSM-7 alphabet (basic or extension table)."""
    return char in GSM7_BASIC or char in GSM7_EXTENSION


def sms_info(text: str) -> SmsInfo:
    """Work out the encoding, segment count and cost of `text` as one (multipart) SMS."""
    forcing = [
        {"char": char, "position": index, "codepoint": f"U+{ord(char):04X}"}
        for index, char in enumerate(text)
        if not is_gsm7(char)
    ]
    encoding = "UCS-2" if forcing else "GSM-7"
    costs = [_unit_cost(char, encoding) for char in text]
    return SmsInfo(
        encoding=encoding,
        segments=_count_segments(costs, *SMS_LIMITS[encoding][1:]),
        units=sum(costs),
        characters=len(_GRAPHEME_RE.findall(text)),
        ucs2_chars=forcing,
    )


def _unit_cost(char: str, encoding: str) -> int:
    if encoding == "GSM-7":
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1  # a surrogate pair


def _count_segments(costs: list[int], single: int, per_part: int) -> int:
    total = sum(costs)
    if total <= single:
        return 1 if total else 0
    # Fill parts greedily; a character's units (an ESC pair, a surrogate pair) never straddle two
    # parts, so a part can end one unit short and push the total over a naive ceil(total / 153).
    segments, used = 1, 0
    for cost in costs:
        if used + cost > per_part:
            segments, used = segments + 1, 0
        used += cost
    return segments


def gsm_replacement(char: str) -> str | None:
    """Return a GSM-7 stand-in for a character that forces UCS-2, or None if there is none.

    Typographic look-alikes come first (curly quotes, dashes, odd spaces, ellipsis); otherwise the
    character is decomposed and its accents dropped (ë → e, ç → c, ĳ → ij), which changes the
    spelling and so needs the operator's consent.
    """
    if is_gsm7(char):
        return None
    if char in _TYPOGRAPHIC:
        return _TYPOGRAPHIC[char]
    decomposed = unicodedata.normalize("NFKD", char)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    if stripped and stripped != char and all(is_gsm7(c) for c in stripped):
        return stripped
    return None


def gsm_replacements(text: str) -> list[dict[str, Any]]:
    """Suggestions that would keep `text` in GSM-7, one per occurrence.

    Each is {"char", "position", "codepoint", "replacement", "kind"}: kind "typography" changes
    only the look, kind "spelling" drops an accent (ideeën → ideeen) and should be confirmed.
    """
    suggestions = []
    for index, char in enumerate(text):
        replacement = gsm_replacement(char)
        if replacement is None:
            continue
        kind = "typography" if char in _TYPOGRAPHIC else "spelling"
        suggestions.append(
            {
                "char": char,
                "position": index,
                "codepoint": f"U+{ord(char):04X}",
                "replacement": replacement,
                "kind": kind,
            }
        )
    return suggestions


def to_gsm(text: str) -> str:
    """Apply every suggestion of `gsm_replacements`; characters without a stand-in stay."""
    return "".join(_replace_or_keep(char) for char in text)


def _replace_or_keep(char: str) -> str:
    replacement = gsm_replacement(char)
    return char if replacement is None else replacement


# --- Readability (Flesch-Douma, Dutch) ----------------------------------------------------------

LONG_SENTENCE_WORDS = 15
LONG_WORD_SYLLABLES = 4
LONG_WORD_LETTERS = 15
MAX_HYPHENATED_LETTERS = 64

# Flesch-Douma has no official CEFR mapping; these cut-offs are ours. Douma calls 60-70 "normaal"
# and 80+ "gemakkelijk", and our B1 alert templates score 64-91 (docs/context-nl.md 2.5), so a text
# at 60 or more is labelled B1 and one at 80 or more A2 (what Rijksoverheid asks for where it can).
READABILITY_LEVELS = ((80.0, "A2"), (60.0, "B1"), (45.0, "B2"), (30.0, "C1"))
LOWEST_LEVEL = "C2"

# Vowel nuclei, longest first, so that "ieuw" or "draaien" are read as Dutch spelling is. A vowel
# with a diaeresis starts a new syllable (ideeën, geïnformeerd) but still joins the i or u after it
# (beëindigen).
_NUCLEUS_RE = re.compile(
    r"aai|ooi|oei|eeu|ieu|ëi|ëu|aa|ee|oo|uu|ie|oe|eu|ei|ij|ui|ou|au|[aeiouyàáâäèéêëìíîïòóôöùúûü]",
    re.IGNORECASE,
)
_WORD_RE = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
_WORD_PART_RE = re.compile(r"[^\W\d_]+")
# Links, addresses, handles and hashtags are not read as words, so they must not count as such.
# The look-behinds let a match start only where a run of characters starts: without them a long
# pasted token makes the search quadratic, and the preview runs on every keystroke.
_NOT_PROSE_RE = re.compile(
    r"(?:https?://|www\.)\S+|(?<![\w.+-])[\w.+-]+@\S+|[@#]\w+"
    r"|(?<![\w.-])[\w-]+(?:\.[\w-]+)*\.(?:nl|com|org|net|eu|be|de|info)\b(?:/\S*)?",
    re.IGNORECASE,
)
_SPACE_RUN_RE = re.compile(r"\s+")
SENTENCE_END = ".!?…"

_hyphenators: dict[str, pyphen.Pyphen] = {}


@dataclass(frozen=True)
class Readability:
    """A Flesch-Douma score, its level label and the places that pull it down.

    `long_sentences` items are {"start", "end", "words", "text"}; `long_words` items are
    {"word", "start", "end", "syllables", "letters"}; positions are Python string indexes into the
    text that was scored, end exclusive. The score is None for a text without words.
    """

    flesch_douma: float | None
    level: str | None
    words: int
    sentences: int
    syllables: int
    long_sentences: list[dict[str, Any]]
    long_words: list[dict[str, Any]]


def count_syllables(word: str, language: str = "nl") -> int:
    """Syllables in one word: vowel nuclei counted within pyphen's hyphenation fragments.

    Pyphen alone undercounts (its patterns never split off one letter: "over", "idee"), a vowel
    counter alone merges vowels across a syllable break ("museum"); together they get both.
    A word without vowels (a number, an abbreviation) counts one.
    """
    hyphenator = _hyphenator(language)
    count = 0
    for part in _WORD_PART_RE.findall(word.lower()):
        count += sum(len(_NUCLEUS_RE.findall(f)) for f in _fragments(hyphenator, part))
    return max(count, 1)


def _fragments(hyphenator: pyphen.Pyphen, part: str) -> list[str]:
    # Pyphen's pattern matching is quadratic in the word's length; a pasted token of thousands of
    # letters would stall the preview, and no Dutch word is that long anyway.
    if len(part) > MAX_HYPHENATED_LETTERS:
        return [part]
    return hyphenator.inserted(part, hyphen="\x00").split("\x00")


def _hyphenator(language: str) -> pyphen.Pyphen:
    if language != "nl":
        raise ValueError(f"readability supports Dutch ('nl') only, not {language!r}")
    if language not in _hyphenators:
        _hyphenators[language] = pyphen.Pyphen(lang="nl_NL")
    return _hyphenators[language]


def readability(text: str, language: str = "nl") -> Readability:
    """Score `text` with Flesch-Douma and flag sentences and words that are too long.

    Flesch-Douma = 206.835 - 0.93 x words/sentences - 77 x syllables/words; higher is easier.
    Only Dutch is supported (ValueError otherwise).
    """
    _hyphenator(language)
    prose = _prose(text)
    sentences = [words for words in (_words(prose, span) for span in _sentences(text)) if words]
    words = [word for sentence in sentences for word in sentence]
    syllables = sum(word["syllables"] for word in words)
    score = _flesch_douma(len(words), len(sentences), syllables)
    return Readability(
        flesch_douma=score,
        level=_level(score),
        words=len(words),
        sentences=len(sentences),
        syllables=syllables,
        long_sentences=[_sentence_flag(text, s) for s in sentences if len(s) > LONG_SENTENCE_WORDS],
        long_words=[word for word in words if _is_long(word)],
    )


def _sentences(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for space in _SPACE_RUN_RE.finditer(text):
        if _ends_sentence(text, space):
            spans.append((start, space.start()))
            start = space.end()
    spans.append((start, len(text)))
    return spans


def _ends_sentence(text: str, space: re.Match[str]) -> bool:
    # A line break always does: messages put separate points on separate lines. Otherwise . ! ?
    # or … before the space, and no lower-case letter after it (so "o.a. de" goes on).
    if "\n" in space.group():
        return True
    before, after = text[space.start() - 1 : space.start()], text[space.end() : space.end() + 1]
    return before != "" and before in SENTENCE_END and not after.islower()


def _prose(text: str) -> str:
    # Blank out links and the like with spaces of the same length, so positions stay true.
    return _NOT_PROSE_RE.sub(lambda m: " " * len(m.group()), text)


def _words(prose: str, span: tuple[int, int]) -> list[dict[str, Any]]:
    return [_word(match) for match in _WORD_RE.finditer(prose, *span)]


def _word(match: re.Match[str]) -> dict[str, Any]:
    word = match.group()
    return {
        "word": word,
        "start": match.start(),
        "end": match.end(),
        "syllables": count_syllables(word),
        "letters": sum(c.isalpha() for c in word),
    }


def _is_long(word: dict[str, Any]) -> bool:
    return word["syllables"] > LONG_WORD_SYLLABLES or word["letters"] > LONG_WORD_LETTERS


def _sentence_flag(text: str, words: list[dict[str, Any]]) -> dict[str, Any]:
    start, end = words[0]["start"], words[-1]["end"]
    return {"start": start, "end": end, "words": len(words), "text": text[start:end]}


def _flesch_douma(words: int, sentences: int, syllables: int) -> float | None:
    if not words:
        return None
    return round(206.835 - 0.93 * words / sentences - 77 * syllables / words, 1)


def _level(score: float | None) -> str | None:
    if score is None:
        return None
    return next((label for floor, label in READABILITY_LEVELS if score >= floor), LOWEST_LEVEL)
