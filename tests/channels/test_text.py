"""Tests for channels.text against the shared conformance vectors and our own boundaries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from channels.text import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    count_syllables,
    gsm_replacements,
    readability,
    sms_info,
    to_gsm,
    x_length,
)
from tests.conformance import conformance_file

# --- X weighted length -------------------------------------------------------------------------

# Section of validate.yml -> the config file its cases are defined for (None: library default).
X_SECTIONS = {
    "WeightedTweetsCounterTest": "twitter-text/config/v2.json",
    "WeightedTweetsWithDiscountedEmojiCounterTest": "twitter-text/config/v3.json",
    "UnicodeDirectionalMarkerCounterTest": None,
}
X_CASE_COUNTS = {  # what the pinned twitter-text commit holds, so a truncated file cannot pass
    "WeightedTweetsCounterTest": 20,
    "WeightedTweetsWithDiscountedEmojiCounterTest": 22,
    "UnicodeDirectionalMarkerCounterTest": 2,
}


def _x_params():
    return [
        pytest.param(section, index, id=f"{section}-{index}")
        for section, count in X_CASE_COUNTS.items()
        for index in range(count)
    ]


@pytest.fixture(scope="module")
def validate_yml():
    with conformance_file("twitter-text/validate.yml").open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)["tests"]


def _observed(result):
    return {
        "weightedLength": result.weighted_length,
        "valid": result.valid,
        "permillage": result.permillage,
        "displayRangeStart": result.display_range[0],
        "displayRangeEnd": result.display_range[1],
        "validRangeStart": result.valid_range[0],
        "validRangeEnd": result.valid_range[1],
    }


def test_x_sections_have_the_expected_number_of_cases(validate_yml):
    assert {name: len(validate_yml[name]) for name in X_SECTIONS} == X_CASE_COUNTS


@pytest.mark.parametrize(("section", "index"), _x_params())
def test_x_length_conformance_with_the_json_config(validate_yml, section, index):
    case = validate_yml[section][index]
    config_path = X_SECTIONS[section]
    config = "v3" if config_path is None else json.loads(conformance_file(config_path).read_text())
    assert _observed(x_length(case["text"], config)) == case["expected"], case["description"]


@pytest.mark.parametrize(("section", "index"), _x_params())
def test_x_length_conformance_with_the_named_config(validate_yml, section, index):
    case = validate_yml[section][index]
    name = "v2" if section == "WeightedTweetsCounterTest" else "v3"
    assert _observed(x_length(case["text"], name)) == case["expected"], case["description"]


@pytest.mark.parametrize(
    ("text", "weighted"),
    [
        ("Code oranje: blijf binnen.", 26),
        ("Schade tot 10 €", 16),  # € is outside the light ranges: 2
        ("Wacht…", 7),  # so is the ellipsis
        ("Meer info: https://dalfsen.nl/incidenten/brand-kerkstraat/updates/12", 34),
        ("#NLAlert @crisis_nl", 19),
    ],
)
def test_x_length_dutch_examples(text, weighted):
    assert x_length(text).weighted_length == weighted


def test_x_length_limit_and_validity_at_280():
    assert x_length("a" * 280).valid is True
    over = x_length("a" * 281)
    assert (over.valid, over.limit, over.valid_range) == (False, 280, (0, 279))


def test_x_length_rejects_an_unknown_config_name():
    with pytest.raises(ValueError, match="v4"):
        x_length("x", "v4")


def test_importing_text_leaks_no_pkg_resources_warning():
    # A fresh interpreter: in this one twitter_text is already imported and would not warn again.
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", "import channels.text"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


# --- SMS --------------------------------------------------------------------------------------


def _sms_cases():
    with conformance_file("sms-segments/cases.json").open(encoding="utf-8") as handle:
        return json.load(handle)


SMS_CASE_COUNT = 48  # the count is asserted below, so a truncated file cannot pass


def test_sms_conformance_file_has_48_cases():
    assert len(_sms_cases()) == SMS_CASE_COUNT


@pytest.mark.parametrize("index", range(SMS_CASE_COUNT), ids=lambda i: f"sms-{i}")
def test_sms_conformance(index):
    case = _sms_cases()[index]
    info = sms_info(case["text"])
    observed = {"encoding": info.encoding, "segments": info.segments}
    expected = {"encoding": case["encoding"], "segments": case["segments"]}
    if "messageSize_bits" in case:
        observed |= {"messageSize_bits": info.bits, "totalSize_bits": info.total_bits}
        expected |= {k: case[k] for k in ("messageSize_bits", "totalSize_bits")}
    if "characters" in case:
        observed["characters"] = info.characters
        expected["characters"] = case["characters"]
    assert observed == expected, case["source"]


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),
        ("€" * 81, "GSM-7", 162, 2),
        ("ë" * 70, "UCS-2", 70, 1),
        ("ë" * 71, "UCS-2", 71, 2),
        ("ë" * 134, "UCS-2", 134, 2),
        ("ë" * 135, "UCS-2", 135, 3),
        ("😀" * 35, "UCS-2", 70, 1),
        ("😀" * 36, "UCS-2", 72, 2),
    ],
)
def test_sms_boundaries(text, encoding, units, segments):
    info = sms_info(text)
    assert (info.encoding, info.units, info.segments) == (encoding, units, segments)


def test_sms_extension_pair_is_not_split_across_parts():
    # 152 + € + 152 = 306 units, which a naive ceil(306 / 153) calls 2 parts. The ESC pair cannot
    # take unit 153 and 154, so it moves to part two, which then needs 154 units: 3 parts.
    assert sms_info("a" * 152 + "€" + "a" * 152).segments == 3
    assert sms_info("a" * 153 + "€" + "a" * 151).segments == 2


def test_sms_surrogate_pair_is_not_split_across_parts():
    # 134 units fit 2 parts of 67, but an emoji at units 67-68 cannot be cut: part one ends at 66.
    assert sms_info("ë" * 66 + "😀" + "ë" * 66).segments == 3
    assert sms_info("ë" * 67 + "😀" + "ë" * 65).segments == 2


def test_sms_lowercase_c_cedilla_is_not_gsm7_but_uppercase_is():
    assert sms_info("Ç").encoding == "GSM-7"
    assert sms_info("ç").encoding == "UCS-2"


def test_sms_gsm7_tables_have_the_standard_sizes():
    assert len(GSM7_BASIC) == 127  # 128 positions less ESC
    assert len(GSM7_EXTENSION) == 10


def test_sms_ucs2_chars_lists_positions_and_codepoints():
    info = sms_info("Auto’s weg, ideeën? 😀")
    assert info.ucs2_chars == [
        {"char": "’", "position": 4, "codepoint": "U+2019"},
        {"char": "ë", "position": 16, "codepoint": "U+00EB"},
        {"char": "😀", "position": 20, "codepoint": "U+1F600"},
    ]
    assert sms_info("Schade 10 € - Dalfsen").ucs2_chars == []


def test_gsm_replacements_suggest_stand_ins():
    text = "“Wacht” – ideeën…\u00a0façade 😀"
    by_char = {r["char"]: (r["replacement"], r["kind"]) for r in gsm_replacements(text)}
    assert by_char == {
        "“": ('"', "typography"),
        "”": ('"', "typography"),
        "–": ("-", "typography"),
        "ë": ("e", "spelling"),
        "…": ("...", "typography"),
        "\u00a0": (" ", "typography"),
        "ç": ("c", "spelling"),
    }
    assert [r["position"] for r in gsm_replacements(text)] == [0, 6, 8, 14, 16, 17, 20]


def test_to_gsm_makes_a_dutch_text_gsm7_again():
    text = "Auto’s niet parkeren – we houden u op de hoogte… Ideeën? Bel 14 0529."
    converted = to_gsm(text)
    assert converted == "Auto's niet parkeren - we houden u op de hoogte... Ideeen? Bel 14 0529."
    assert (sms_info(text).encoding, sms_info(converted).encoding) == ("UCS-2", "GSM-7")


def test_to_gsm_keeps_characters_without_a_stand_in():
    assert to_gsm("Brand 🔥 in Dalfsen") == "Brand 🔥 in Dalfsen"


# --- Readability ------------------------------------------------------------------------------

B1_FIRE = (
    "Grote brand bij een bedrijf aan de Kerkstraat in Dalfsen. Er komt veel rook vrij. "
    "Heeft u last van rook? Ga naar binnen. Houd ramen en deuren dicht. Zet de ventilatie uit. "
    "Meer informatie: dalfsen.nl."
)
BUREAUCRATIC_FIRE = (
    "In verband met een grootschalige brand bij een bedrijfspand aan de Kerkstraat te Dalfsen "
    "wordt omwonenden, alsmede personen die zich in de directe omgeving bevinden, met klem "
    "geadviseerd om ter voorkoming van gezondheidsklachten ramen en deuren gesloten te houden en "
    "mechanische ventilatiesystemen onmiddellijk uit te schakelen."
)
B1_BOIL = (
    "Kookadvies voor Nieuwleusen (postcode 7711). Er kan een bacterie in het kraanwater zitten. "
    "Kook het water 3 minuten. Doe dat voor drinken, eten en tandenpoetsen. Ook voor flesvoeding. "
    "Douchen mag gewoon. Meer informatie: vitens.nl."
)


@pytest.mark.parametrize(
    ("word", "syllables"),
    [
        ("brand", 1),
        ("over", 2),  # pyphen alone says 1
        ("idee", 2),
        ("radio", 3),
        ("museum", 3),  # a vowel counter alone says 2
        ("ideeën", 3),
        ("geïnformeerd", 4),
        ("beëindigen", 4),
        ("Nieuwleusen", 3),
        ("Lemelerveld", 4),
        ("ziekenhuis", 3),
        ("draaien", 2),
        ("informatie", 4),
        ("verantwoordelijkheid", 6),
        ("112", 1),
    ],
)
def test_count_syllables(word, syllables):
    assert count_syllables(word) == syllables


def test_readability_simple_text_scores_higher_than_bureaucratic_text():
    simple, boil, bureaucratic = (readability(t) for t in (B1_FIRE, B1_BOIL, BUREAUCRATIC_FIRE))
    assert simple.flesch_douma > boil.flesch_douma > bureaucratic.flesch_douma
    assert (simple.level, bureaucratic.level) == ("A2", "C2")
    assert boil.level in {"A2", "B1"}


def test_readability_counts_and_score_of_the_fire_template():
    result = readability(B1_FIRE)
    # The URL is not a word; 7 sentences, 34 words, 47 syllables.
    assert (result.sentences, result.words, result.syllables) == (7, 34, 47)
    assert result.flesch_douma == round(206.835 - 0.93 * 34 / 7 - 77 * 47 / 34, 1)
    assert result.long_sentences == [] and result.long_words == []


def test_readability_flags_long_sentence_and_long_words_with_positions():
    result = readability(BUREAUCRATIC_FIRE)
    [sentence] = result.long_sentences
    assert (sentence["start"], sentence["words"]) == (0, 46)
    assert sentence["text"] == BUREAUCRATIC_FIRE[sentence["start"] : sentence["end"]]
    flagged = {w["word"]: w for w in result.long_words}
    assert set(flagged) == {"gezondheidsklachten", "ventilatiesystemen"}
    word = flagged["gezondheidsklachten"]
    assert BUREAUCRATIC_FIRE[word["start"] : word["end"]] == "gezondheidsklachten"
    assert (word["syllables"], word["letters"]) == (5, 19)


def test_readability_long_word_by_letters_only():
    # Both have 4 syllables; only the second is over 15 letters.
    assert readability("Rijkswaterstaat is er.").long_words == []
    [word] = readability("De Stormvloedkering is dicht.").long_words
    assert (word["word"], word["syllables"], word["letters"]) == ("Stormvloedkering", 4, 16)


def test_readability_sentence_breaks():
    assert readability("Dit is zo. En dat ook! Klaar?").sentences == 3
    assert readability("Zie o.a. de website. Ga weg.").sentences == 2  # "o.a. de" goes on
    assert readability("Blijf binnen\nSluit ramen").sentences == 2


def test_readability_of_empty_text():
    result = readability("  https://dalfsen.nl ")
    assert (result.flesch_douma, result.level, result.words) == (None, None, 0)


def test_readability_rejects_other_languages():
    with pytest.raises(ValueError, match="Dutch"):
        readability("Stay indoors.", language="en")


@pytest.mark.timeout(20)  # a guard against a hang (the parser takes seconds on such text)
def test_x_length_refuses_pathological_long_text():
    from channels.text import X_PARSE_LIMIT, x_length

    result = x_length("a." * X_PARSE_LIMIT)
    assert not result.valid and result.weighted_length >= 2 * X_PARSE_LIMIT
