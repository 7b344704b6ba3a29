"""The reaction classifier: targets on the labelled data, triggers, language, and the hard cases."""

import time
from collections import Counter

import pytest

from crisis.reactions.classify import (
    CATEGORIES,
    DEVELOPMENT,
    HELDOUT,
    LANGUAGES,
    SENTIMENTS,
    URGENCIES,
    classify,
    detect_language,
    evaluate,
    load_jsonl,
    normalise,
    stem,
)

TARGET_MACRO_F1 = 0.8
TARGET_HELP_RECALL = 0.9


# ----------------------------------------------------------------------------- the labelled data

def test_labelled_data_is_well_formed_and_split():
    development, heldout = load_jsonl(DEVELOPMENT), load_jsonl(HELDOUT)
    assert len(development) + len(heldout) >= 320
    assert len(heldout) >= 110
    for row in development + heldout:
        assert set(row) == {"text", "language", "category", "urgency", "sentiment"}
        assert row["text"].strip()
        assert row["category"] in CATEGORIES
        assert row["urgency"] in URGENCIES
        assert row["sentiment"] in SENTIMENTS
        assert row["language"] in LANGUAGES
    # Stratified: every category in the held-out part, with enough calls for help to measure recall.
    held_categories = Counter(row["category"] for row in heldout)
    assert set(held_categories) == set(CATEGORIES)
    assert held_categories["help"] >= 15
    # About three quarters Dutch.
    dutch = sum(row["language"] == "nl" for row in development + heldout) / len(development + heldout)
    assert 0.65 <= dutch <= 0.85
    # No reaction is in both parts.
    assert not {r["text"] for r in development} & {r["text"] for r in heldout}


def test_development_set_meets_targets():
    result = evaluate(load_jsonl(DEVELOPMENT))
    errors = "\n".join(f"{e['expected']} -> {e['got']}: {e['text']}" for e in result["errors"])
    assert result["macro_f1"] >= TARGET_MACRO_F1, errors
    assert result["help_recall"] >= TARGET_HELP_RECALL, errors


def test_heldout_set_meets_targets():
    # The honest check: the rules were never tuned on this file. If it fails, report it; do not
    # tune on it (which is why the failure shows the numbers, not the misclassified texts).
    result = evaluate(load_jsonl(HELDOUT))
    numbers = {k: result[k] for k in ("macro_f1", "help_recall", "accuracy")}
    assert result["macro_f1"] >= TARGET_MACRO_F1, numbers
    assert result["help_recall"] >= TARGET_HELP_RECALL, numbers


def test_every_help_in_development_is_high_urgency():
    for row in load_jsonl(DEVELOPMENT):
        result = classify(row["text"])
        if result.category == "help":
            assert result.urgency == "high", row["text"]


# ----------------------------------------------------------------------------- behaviour

@pytest.mark.parametrize(("text", "category"), [
    # a question that is a call for help is help
    ("Kan iemand bij mijn moeder (87) in Ankum kijken? Ze heeft geen stroom en reageert niet", "help"),
    ("ik ruik gas in mijn keuken, wat moet ik doen?", "help"),
    ("HELP water in huis!!! Nieuwleusen", "help"),
    ("we are trapped on the first floor, the water keeps rising", "help"),
    ("Water in de kelder, help", "help"),
    # rumours, also when phrased as a question
    ("klopt het dat de dijk bij Hoonhorst is doorgebroken??", "rumour"),
    ("Ik heb gehoord dat het kraanwater vergiftigd is", "rumour"),
    ("is it true that they are evacuating all of Lemelerveld?", "rumour"),
    # eyewitness reports, including a literal "ik hoor"
    ("hier in Lemelerveld ook rook", "report"),
    ("water staat al op de weg bij de Vechtdijk", "report"),
    ("ik hoor de sirene ook in Oudleusen", "report"),
    # questions
    ("mag ik het kraanwater gebruiken?", "question"),
    ("moeten we ramen dicht", "question"),
    ("Do we need to boil the water for the baby bottles?", "question"),
    # complaints: sarcasm, a "why" that is a reproach, thanks with a complaint after "maar"
    ("Top geregeld weer hoor, 4 uur geen stroom en geen enkel bericht", "complaint"),
    ("Waarom horen we dit pas nu??", "complaint"),
    ("Dank aan de brandweer, maar de info van de gemeente was waardeloos", "complaint"),
    # thanks, also with a small complaint before "maar"
    ("Ging wat traag in het begin, maar super bedankt allemaal!", "thanks"),
    ("Thank you for the clear updates!", "thanks"),
    # other: off-topic, spam, a bare mention
    ("Hoe laat begint de wedstrijd zaterdag?", "other"),
    ("Verdien 500 euro per dag, klik op de link in mijn bio", "other"),
    ("@piet kijk dit", "other"),
    ("ok", "other"),
])
def test_categories(text, category):
    assert classify(text).category == category


def test_thanks_for_the_help_is_not_a_call_for_help():
    assert classify("bedankt voor de hulp!").category == "thanks"
    assert classify("thanks for the help everyone").category == "thanks"
    assert classify("GEEN STROOM, GEEN INFO, GEEN HULP. BEDANKT GEMEENTE").category == "complaint"


@pytest.mark.parametrize("text", [
    "HELP mijn vader zit vast in de auto", "klopt het dat de dijk is doorgebroken?", "hier ook rook",
    "mag ik kraanwater drinken?", "schandalig dat er geen info is", "dank je wel!", "kijk op mijn kanaal",
])
def test_triggers_present_for_every_decided_field(text):
    result = classify(text)
    assert set(result.triggers) == {"category", "urgency", "sentiment", "language"}
    for field, found in result.triggers.items():
        assert found and all(isinstance(x, str) and x for x in found), field
    assert 0 < result.confidence <= 1
    assert result.score == result.scores[result.category] > 0


def test_triggers_name_the_words_that_decided():
    result = classify("Klopt het dat het kraanwater vergiftigd is?")
    assert "klopt het" in result.triggers["category"]
    result = classify("Buurvrouw van 90 heeft geen stroom en geen verwarming")
    assert result.category == "help"
    assert "van 90" in result.triggers["category"] and "geen stroom" in result.triggers["category"]
    assert "category:help" in result.triggers["urgency"]


def test_urgency():
    assert classify("help we zitten vast op zolder").urgency == "high"
    assert classify("Ik zie vlammen uit het dak van de schuur aan de Veldhoeveweg").urgency == "high"
    assert classify("Brand lijkt onder controle, zie geen vlammen meer").urgency == "normal"
    assert classify("Wanneer is de stroom terug?").urgency == "normal"
    assert classify("Bedankt voor de info").urgency == "low"


def test_sentiment_with_negation_and_emoji():
    assert classify("Bedankt brandweer, top gedaan 👏").sentiment == "positive"
    assert classify("Dit is echt belachelijk slecht geregeld").sentiment == "negative"
    assert classify("de info was niet goed").sentiment == "negative"
    assert classify("Wanneer gaan de scholen weer open?").sentiment == "neutral"


@pytest.mark.parametrize(("text", "language"), [
    ("Mag ik het kraanwater nog drinken?", "nl"),
    ("Is the tap water safe to drink?", "en"),
    ("mut wiej ok de ramen dichtdoen", "nl"),
    ("HELP we are trapped", "en"),
    ("Beautiful sunset over the river tonight", "en"),
    ("Gaslek!!!", "nl"),  # nothing to go on: the default
    ("👍", "nl"),
])
def test_language_detection(text, language):
    assert classify(text).language == language
    assert detect_language(text)[0] == language


def test_language_default_is_configurable():
    assert detect_language("👍", default="en")[0] == "en"
    assert classify("👍", default_language="en").language == "en"


def test_normalisation_and_stemming():
    assert normalise("  HEEEELP!!   Geëvacueerd  ") == "heelp!! geevacueerd"
    assert normalise("d'r is NL-Alert") == "dr is nl alert"
    assert stem("zandzakken") == stem("zandzak")
    assert stem("koken") == stem("kook")
    assert stem("drinking") == stem("drink")


def test_fast_enough_for_a_busy_incident():
    texts = [row["text"] for row in load_jsonl(DEVELOPMENT)]
    batch = (texts * (1000 // len(texts) + 1))[:1000]
    started = time.process_time()
    for text in batch:
        classify(text)
    assert time.process_time() - started < 1.0  # at least 1000 reactions per CPU second


def test_long_and_empty_input():
    assert classify("").category == "other"
    result = classify("help " + "bla " * 20000)
    assert result.category == "help"
