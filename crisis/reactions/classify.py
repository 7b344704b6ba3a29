"""Transparent, rule-based triage of public reactions (Dutch and English).

``classify(text)`` returns the category (question, rumour, help, report, complaint, thanks,
other), urgency, sentiment and language of one reaction, with the words and phrases that decided
each field, so the team can see *why* a reaction is flagged and overrule it.

How it decides
--------------
1. Normalise: lowercase, strip accents, drop apostrophes, hyphens to spaces, a letter repeated
   three or more times collapsed to two ("heeeelp" -> "heelp"; patterns allow repeats).
2. Every category has weighted patterns, compiled once at import into one regex per category.
   Each distinct, non-overlapping match adds its weight to that category's score and is kept as
   a trigger.
3. **A call for help wins whenever its score reaches ``HELP_THRESHOLD``**, whatever else the text
   says ("kan iemand bij mijn moeder kijken?" is help, not a question). Help cues are broad on
   purpose (pleas, trapped, medical, a hazard inside *my* home, a vulnerable person plus no power,
   heating, phone or transport): a missed call for help costs far more than a false alarm that
   the team dismisses in a second.
4. Otherwise the highest score wins; ties go to the more actionable category
   (rumour > complaint > other > question > report > thanks). Adjustments, each a plain rule:
   - thanks and complaint cues after the last contrast ("maar", "but") weigh x1.25 and before it
     x0.5: "dank brandweer, maar de communicatie was slecht" is a complaint, "wat traag, maar
     super bedankt" is thanks;
   - a rumour cue plus a question mark adds to rumour ("klopt het dat de dijk is doorgebroken?");
   - an explicit question (question mark and an interrogative) halves report cues ("hier ook
     rook, moeten we ramen dicht?" must be answered);
   - a question or report without a single crisis topic word counts half ("hoe laat begint de
     wedstrijd?" is other);
   - nothing (or almost nothing) matched: other.
5. Urgency: help is high; a report of immediate danger (flames, gas smell, water over the dike)
   or a question or report with an urgent word (dringend, spoed, urgent) is high; thanks and other
   are low; everything else normal.
6. Sentiment: a small lexicon with negation ("niet", "geen", "not", "no" flip the next two words),
   emoji, shouting, harm words in reports, and a category prior (help and complaint lean negative,
   thanks positive). A question is neutral unless clearly emotional.
7. Language: Dutch-only and English-only function words; ties are broken on letter sequences
   ("ij", "oe", "sch" against "th", "wh", "ing") and then go to the default (``nl``).

Only the first ``MAX_CHARS`` characters are read: enough for any SMS, tweet or comment, and a
bound on the work a hostile input can cause. About 2,000 typical reactions per second on one core.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

CATEGORIES = ("question", "rumour", "help", "report", "complaint", "thanks", "other")
URGENCIES = ("high", "normal", "low")
SENTIMENTS = ("negative", "neutral", "positive")
LANGUAGES = ("nl", "en")

DATA_DIR = Path(__file__).resolve().parent / "data"
DEVELOPMENT = DATA_DIR / "development.jsonl"
HELDOUT = DATA_DIR / "heldout.jsonl"

MAX_CHARS = 2000
HELP_THRESHOLD = 2.5
MIN_SCORE = 1.0  # below this nothing was really said: other
# Ties go to the more actionable category; help never ties (it wins at its threshold).
TIE_ORDER = ("rumour", "complaint", "other", "question", "report", "thanks")
CONTRAST_BEFORE, CONTRAST_AFTER = 0.5, 1.25


@dataclass(frozen=True)
class Classification:
    """The outcome for one reaction.

    ``triggers`` maps each decided field (category, urgency, sentiment, language) to the words or
    phrases that decided it. ``score`` is the winning category's rule score; ``confidence`` (0-1)
    compares it with the runner-up; ``scores`` has every category's score.
    """

    category: str
    urgency: str
    sentiment: str
    language: str
    triggers: dict[str, list[str]]
    score: float
    confidence: float
    scores: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"category": self.category, "urgency": self.urgency, "sentiment": self.sentiment,
                "language": self.language, "triggers": self.triggers, "score": self.score,
                "confidence": self.confidence, "scores": self.scores}


# --------------------------------------------------------------------------- normalisation

_APOSTROPHES = re.compile(r"['’‘`´]")
_HYPHEN = re.compile(r"(?<=\w)[-‐‑–—](?=\w)")
_REPEATS = re.compile(r"([a-z])\1{2,}")
_SPACES = re.compile(r"\s+")
_TOKEN = re.compile(r"[a-z0-9]+")
_DOUBLE_VOWEL = re.compile(r"(a|e|o|u)\1")
_SUFFIXES = ("heden", "ingen", "tjes", "etje", "jes", "tje", "ing", "en", "ed", "es", "je", "e", "s")


def normalise(text: str) -> str:
    """Lowercase, strip accents and apostrophes, collapse repeated letters and whitespace."""
    text = text[:MAX_CHARS]
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.lower()
    text = _APOSTROPHES.sub("", text)
    text = _HYPHEN.sub(" ", text)
    text = _REPEATS.sub(r"\1\1", text)
    return _SPACES.sub(" ", text).strip()


def tokens(text: str) -> list[str]:
    """The word tokens of already normalised text."""
    return _TOKEN.findall(text)


@lru_cache(maxsize=65536)
def stem(token: str) -> str:
    """A light Dutch/English stem: one common suffix off, then doubled letters undone.

    Not linguistics, just enough that "zandzakken"/"zandzak", "koken"/"kook" and
    "drinking"/"drink" meet: strip one suffix, undouble a final consonant, single doubled vowels.
    """
    if len(token) <= 3 or not token.isalpha():
        return token
    for suffix in _SUFFIXES:
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            token = token[: -len(suffix)]
            break
    if len(token) > 3 and token[-1] == token[-2] and token[-1] not in "aeiou":
        token = token[:-1]
    return _DOUBLE_VOWEL.sub(r"\1", token)


# --------------------------------------------------------------------------- rules

@dataclass(frozen=True)
class RuleSet:
    """One category's weighted patterns, compiled into a single regex (one scan per text).

    Each rule is a named group; at any position the first rule (in order) that matches wins, and
    matches never overlap, so a phrase is counted once.
    """

    pattern: re.Pattern[str]
    weights: dict[str, float]

    def scan(self, text: str) -> list[tuple[float, str, int]]:
        """``(weight, phrase, start)`` for every distinct phrase that matches."""
        seen, out = set(), []
        for m in self.pattern.finditer(text):
            phrase = m.group(0).strip()
            if phrase not in seen:
                seen.add(phrase)
                out.append((self.weights[m.lastgroup], phrase, m.start()))
        return out


def _compile(rules: Iterable[tuple[float, str]]) -> RuleSet:
    parts, weights = [], {}
    for i, (weight, pattern) in enumerate(rules):
        parts.append(f"(?P<r{i}>{pattern})")
        weights[f"r{i}"] = weight
    # Word-ish boundaries that still let a pattern end in "?" or "!".
    return RuleSet(re.compile(r"(?<![a-z0-9])(?:" + "|".join(parts) + r")(?![a-z0-9])"), weights)


# Generic Dutch place shapes (street and road names, N-roads): a weak sign of an eyewitness report.
# Village names are the deployment's data, not code: the classifier does not need them.
PLACES = r"n\d{2,3}|a\d{1,2}|\w+(straat|weg|laan|dijk|plein|steeg|singel|oever|kade|pad|dreef|hof)"

_KIN = (r"(moeder|vader|moe|pa|ma|oma|opa|ouders|schoonmoeder|schoonvader|zoon|zoontje|dochter"
        r"|dochtertje|kind|kinderen|baby|vrouw|man|broer|zus|mum|mom|dad|mother|father|grandma"
        r"|grandmother|grandpa|grandfather|husband|wife|son|daughter|kids?|brother|sister)")

# "bedankt voor de hulp", "geen hulp", "thanks for the help": not a plea.
_NOT_THANKED = (r"(?<!voor de )(?<!voor alle )(?<!voor jullie )(?<!for the )(?<!for your )(?<!for all the )"
                r"(?<!geen )(?<!no )(?<!zonder )(?<!without )")

HELP_RULES = _compile([
    # explicit pleas
    (3, r"sos|hulp nodig|help nodig|helpt? (me|mij|ons|us)|please (send )?help|send help|need help"
        r"|(we|i) need (an? )?(help|ambulance|boat|doctor)"),
    (3, r"(kan|kunnen|kun|wil) (er )?(alstublieft |aub |pls |please )?iemand"
        r" (\w+ ){0,6}(komen|kijken|helpen|ophalen|halen|langs)"),
    (3, r"(wie|iemand die) (kan|kunnen) (er )?(\w+ ){0,2}(helpen|komen|kijken|ophalen|halen|der hen|erheen)"),
    (3, r"wie haalt (me|mij|ons)|kom(t|en)? (me|mij|ons) (halen|ophalen|helpen)"),
    (3, r"(iemand|anyone|someone) (met|with) (een |a )?(boot|trekker|tractor|aggregaat|auto|boat|car)"),
    (3, r"(can|could) (someone|somebody|anyone) (please )?(check|come|help|pick|get)"
        r"|check on (her|him|them|my)"),
    (3, r"(ambulance|dokter|arts|brandweer) (sturen|nodig)|send (an )?ambulance|komen kijken"),
    # trapped, cannot get away, missing
    (3, r"(zit|zitten|zat|zaten|sta) (\w+ ){0,4}vast|ingesloten|opgesloten|komt er niet (meer )?uit"
        r"|komen er niet (meer )?uit|trapped|stuck|cant get (out|away)|cannot get (out|away)"),
    (3, r"(kan|kunnen|kun) (\w+ ){0,2}niet (weg|evacueren|lopen|naar buiten|vluchten)|kunnen nergens heen"
        r"|durven niet (naar )?buiten|cant (evacuate|leave|walk|get out)|cannot (evacuate|leave|walk)"
        r"|unable to (evacuate|leave)"),
    (3, r"weggelopen|vermist|missing person|is missing|wandered off"),
    (3, r"(kan|kunnen|kun) (\w+ )?(niet|nie) (meer )?(opstaan|overeind)|(niet|nie) overeind"
        r"|cant get (up|him up|her up)|cannot get up"),
    # medical
    (3, r"bewusteloos|reageert (niet|nauwelijks|slecht)|reageert (\w+ )?niet goed|onwel|benauwd"
        r"|slecht adem|krijg(t|en)? geen (lucht|adem)|pijn op de borst|hartaanval|onderkoeld|epilep"
        r"|collapsed|unconscious|not breathing|(struggling|cant|cannot) (to )?breathe|chest pain"
        r"|heart attack|hypotherm"),
    (3, r"zuurstof\w*|beademing|thuisbeademing|insuline|dialyse|oxygen|ventilator|insulin|dialysis"),
    (2, r"(is|ben|zijn|van de trap|uit bed|op de grond|in het water) gevallen|duizelig|overgeven|braken"
        r"|bloedt|bloeden|gewond|flauw|weeen|bevallen|zwanger|fever|koorts|vomit\w*|diarrh\w*|injured"
        r"|bleeding|fallen|pregnant|contractions|labou?r"),
    (2, r"astma|asthma|copd|hartpatient|diabetes|medicijnen (op|nodig)|medication"),
    (2, r"moet (ik|ze|hij|we) naar (de dokter|het ziekenhuis|de huisarts)"
        r"|(go|going) to (the )?(hospital|doctor)"),
    # a hazard inside my own home
    (3, r"(ruik|ruiken|smell) (\w+ ){0,2}gas (in|bij) (mijn|mn|ons|onze|het|my|our)"
        r"|(gas|gaslucht|gaslek) (\w+ ){0,2}in (mijn|mn|ons|onze|het hele|my|our)"
        r" (huis|keuken|woning|kelder|flat|house|home|kitchen)"
        r"|ruiken het in het hele huis|gas in (my|our) (house|home|kitchen|flat)"),
    (3, r"water (komt|loopt|stroomt) (\w+ ){0,2}(huis|woning|kelder) (in|binnen)"
        r"|water in (ons|mijn|mn|het) huis|water (\w+ ){0,2}in (huis|de woonkamer)!"
        r"|water in (de|onze|mijn|mn) (kelder|woonkamer|keuken|slaapkamer|gang)"
        r"|kelder (loopt|staat) (\w+ )?(vol|onder)|water (is )?coming (in|into) (the|our|my) (house|home)"
        r"|(basement|cellar|house) (is )?(filling|flooding)"),
    (3, r"(vuur|brand|vlammen) slaat over|rook (komt )?(onder de deur|in (ons|mijn|het) huis|binnen)"
        r"|brand in (ons|mijn|mn) huis|fire in (our|my) (house|home)|smoke (is )?(coming )?in(to)? (our|my)"),
    (3, r"boom (\w+ ){0,2}op (ons|mijn|mn) (huis|dak|auto)|tree fell on (our|my|a)|dak is (open|weg|eraf)"
        r"|dak (\w+ ){0,3}waait weg"),
    (2, r"(het )?water (stijgt|komt steeds hoger)|water is rising|rising fast|onder water"),
    # a vulnerable person ...
    (1.5, r"(mijn|mn|onze|ons|m|our|my) " + _KIN),
    (1.5, r"\(?(van|ben|is|zijn|ze is|hij is|aged?|shes|hes) (7|8|9)\d( jaar)?\)?|\((7|8|9)\d\)"
          r"|in de (7|8|9)0|allebei (7|8|9)\d"),
    (1.5, r"slecht ter been|slechtziend|blind|doof|rolstoel|rollator|dementerend\w*|dementie|gehandicapt"
          r"|invalide|bedlegerig|kan niet lopen|wheelchair|disabled|elderly|bedridden|dementia"),
    (1.5, r"(ik )?woon(t)? alleen|alleen thuis|allenig|lives alone|live alone|on (my|her|his) own"
          r"|niemand om (me|mij) heen|kleine kinderen|small kids|young children|baby"),
    (1, r"buurvrouw|buurman|buren|neighbou?rs?"),
    # ... without power, heating, phone or transport
    (1.5, r"(zonder|geen|gin|no) (stroom|verwarming|warmte|vervoer|power|heating|heat|electricity)"
          r"|ijskoud in huis|freezing in the house"),
    (1.5, r"accu (is )?(\w+ )?leeg|battery (is )?(almost )?(dead|empty|flat)|pomp werkt niet|pump is dead"),
    (1.5, r"(kan|kun|kunnen) (\w+ )?(niet|nie) bellen|telefoon werkt (niet|amper)|niet bereiken"
          r"|(cannot|cant) reach|geen 112|112 (isnt|is not|not) answering|krijg (\w+ )?niet te pakken"),
    (1.5, r"(geen|no|dont have a) (auto|car|transport)|heb geen vervoer"),
    (1.5, r"waar (kan|moet) (ik|we) (heen|naartoe)|where (do|can|should) (i|we) go|where to go"),
    (3, r"(heb|hebben|heeft|zijn|is) (\w+ )?(dringend|snel|nu|met spoed) (\w+ ){0,3}nodig"
        r"|dringend (\w+ ){0,2}nodig|urgently need\w*"),
    (1.5, r"dringend|urgent|spoed|asap|met spoed|wat nu\?+|(heb|hebben|heeft) (\w+ ){0,3}nodig"),
    (1, r"wat moet(en)? (ik|we|wij) (nu )?doen|what (should|do) (i|we) do"),
    (2, _NOT_THANKED + r"(hulp|he+lp+)"),  # bare; opening, closing, shouted or "!": see _HELP_PLEA
])

RUMOUR_RULES = _compile([
    (3, r"(ik )?(hoor|hoorde|lees|las) (\w+ ){0,3}dat|(ik )?heb (\w+ ){0,3}gehoord|hoor net van"
        r"|hoorde (het|dat) (\w+ ){0,2}(bij|van)|hoor ik overal|hoor je overal"),
    (3, r"klopt (het|dat)|is (het|dat) (echt )?waar|toch niet waar|is het echt zo|is dat echt"
        r"|echt of (fake|nep)|wat is waar"),
    (3, r"nepnieuws|nep nieuws|fake( news)?|hoax|complot\w*|geruchte?n?|rumou?rs?|het verhaal gaat"
        r"|gaat (een bericht|het verhaal|het gerucht|iets) rond|er wordt (\w+ )?gezegd"),
    (3, r"(ze|mensen|iedereen|men|ze in \w+) zeggen (\w+ ){0,4}dat|zegt dat|zeggen dat"
        r"|iedereen (\w+ ){0,3}zegt|schijnt|schijnbaar|blijkbaar|naar verluidt"),
    (3, r"i heard|heard (that|from|the|its|it)|is (that|it|this) (really )?true|apparently|supposedly"
        r"|allegedly|people (are )?saying|(someone|everyone|my \w+|a friend)( \w+){0,3} says"
        r"|says that|saw (a|on) (tweet|post|video|facebook|tiktok|twitter)|can anyone confirm"
        r"|(is it|is that|if its|if it is) (real|true)"),
    (2.5, r"volgens (mijn|de|het|iemand|een|tiktok|facebook|insta\w*|twitter|x|whatsapp|sommigen)"
          r"|zag op (facebook|tiktok|insta\w*|twitter|x|whatsapp)"),
    (2.5, r"liegt|liegen|houden het stil|stil gehouden|doofpot|verzwijgen|(covering|cover) (it )?up"
          r"|cover up|they(re| are) hiding"),
    (2, r"zou(den)? (\w+ ){0,3}(zijn|hebben|gaan|komen|worden|gezeten|zitten|gebeurd)"),
    (2, r"opgezet|expres|met opzet|sabotage|cyberaanval|aanslag|van het lab|lab leak"
        r"|bestaat (niet|helemaal niet)|on purpose|deliberately|zoek het (maar )?op"
        r"|do your (own )?research|push vaccines"),
    (2, r"zich voordoen als|oplicht\w*|scam|phishing"),
    (1.5, r"groepsapp|facebookgroep|whatsapp|tiktok|in de app|op insta\w*|op facebook|on facebook"
          r"|onzin|bangmakerij|betrouwbaar|hack|echt\?+|really\?+"),
    (1, r"waarschijnlijk|wss|vast en zeker|probably|i bet"),
])

QUESTION_RULES = _compile([
    (2, r"vraag(je)?|weet iemand|weet u|weet jij|iemand een idee|does anyone know|anyone know|any info"
        r"|can (someone|you) (please )?explain|graag (\w+ )?(info|informatie|uitleg)"),
    (2, r"wat (moet|moeten|kan|kunnen) (ik|we|wij|je) (\w+ )?doen|what (should|do|can) (i|we) do"
        r"|wat is er aan de hand|what is (going on|happening)|whats (going on|happening)"),
    (1, r"(info|informatie|uitleg|antwoord)( in het engels| in english)?\?|in english"),
])
# Interrogatives and inverted verbs count only where a sentence or clause starts.
_NL_OPENERS = (r"wie|wat|waar|wanneer|wnr|hoe|hoelang|hoeveel|hoe lang|hoe laat|welke?|mag|mogen|moet"
               r"|moeten|mut|kan|kun|kunnen|is|zijn|geldt|gelden|gaat|gaan|wordt|worden|blijft|blijven"
               r"|heeft|hebben|zitten|komt|komen|doen|werkt|waarom")
_EN_OPENERS = (r"is|are|do|does|did|can|could|should|will|would|where|when|what|how|which|who|any"
               r"|have|has|why")
QUESTION_OPENER = re.compile(r"(?:^|[.!?,;:]\s*|\n)(?P<q>(?:" + _NL_OPENERS + "|" + _EN_OPENERS
                             + r") [a-z0-9]+)")

REPORT_RULES = _compile([
    (2, r"k?zie (net|hier|veel|ook|nu|mensen|geen|ambulances|politie|brandweer|rook|vlammen|water|overal)"
        r"|ik zie|zag net|net (zelf )?gezien|zelf gezien|(ik )?ruik|ruik je|i (can )?see"
        r"|just (saw|received|got|went|heard)|can confirm|kan bevestigen"),
    (2, r"(hoor|hoorde|hear|heard) (\w+ )?(de|het|een|the|a)"
        r" (sirene|sirenes|knal|alarm|explosie|siren|bang)"),
    (2, r"net (\w+ )?(binnen|aangekomen|uitgevallen|gehad|gekregen|ontvangen)"
        r"|nl alert (net )?(binnen|ontvangen|gehad)"),
    (1.5, r"hier (in|bij|op|aan|ook)|bij ons|here (in|too|as well)|all the way (in|to)"
          r"|in (de|onze) (straat|wijk)"),
    (1.5, r"(staat|staan|stiet|ligt|liggen|hangt|hangen) (\w+ ){0,3}"
          r"(al|tot|op|onder|blank|vast|over|vol|leeg|klaar|overal|in brand|uit)"),
    (1.5, r"uitgevallen|afgesloten|afgezet|omgeblazen|overstroomd|ondergelopen|blank|ingestort"
          r"|onder controle|over te lopen|overlopen|borrelt|hamsteren|uitverkocht|al op|weer terug"
          r"|weer open|valt uit|(is|are|has|have) (already|just)|flooded|blocked|run out|ran out|out of"
          r"|back on|went out|coming out|sold out|everywhere|overal"),
    (1, r"rook|rookwolk|vlammen|stank|stinkt|gaslucht|sirenes?|ambulances?|brandweer|politie|wellen"
        r"|dode \w+|dakpannen|boom (over|op)|water op de weg|putten|smoke|flames|police"
        r"|fire (trucks?|brigade)|dead (\w+)|roof tiles|tree down|brown|bruin|chloor|lekt|storing"),
    (1, r"hier|here"),
    (0.5, PLACES),
])

COMPLAINT_RULES = _compile([
    (3, r"schandalig|schande|belachelijk|waardeloos|bedroevend|beneden (alle )?peil|amateur\w*"
        r"|slecht (\w+ )?georganiseerd|chaos|puinhoop|slaat nergens op|(dit )?kan (echt )?niet\b(?! \w)"
        r"|onacceptabel|ongelofelijk|onbegrijpelijk|schandaal|zielig|triest"),
    (3, r"(veel |veels )?te laat|pas (nu|toen)|nu pas|onbereikbaar|in de wacht|niemand neemt op"
        r"|neemt niet op|geen (enkel |enkele )?(bericht|update|info|informatie|hulp|reactie|antwoord)"
        r"|weer geen|vergeten|hoe moeilijk kan|lekker dan|voor niks|voor niets|ligt plat|plat ligt"
        r"|doe er (eens )?wat aan|urenlang stilte|niks ontvangen|niets ontvangen|werkt dit wel|veel te"
        r"|vaag"),
    (3, r"top geregeld|goed bezig|lekker bezig|goed geregeld (weer )?hoor|knap hoor|fijn hoor"
        r"|geweldig hoor"),
    (3, r"ridiculous|unacceptable|useless|disgrace\w*|shameful|pathetic|(way )?too late|not a single"
        r"|no update|busy for|on hold|down again|(total|complete) mess|shambles|thanks for nothing"
        r"|only in dutch|never (got|received|heard)|terrible|appalling|incompetent"),
    (3, r"waarom (\w+ ){0,4}(pas|alleen|nog steeds|niet|nooit|niks|niets)|why (did|does|do) it take"
        r"|why (are|is) (all|only|there no|nobody)|why (has|have) nobody"),
    (2.5, r"nobody (thought|bothered|tells|told|cares|is telling)|no one (tells|told|cares)"
          r"|niemand (vertelt|weet|zegt)|niet eens|zo (maak|krijg) je|gek van|typisch|natuurlijk\.\.\."),
    (2, r"(had|hadden) (\w+ ){0,4}gemoeten|(zegt|zei|zeggen) iets anders|tegenstrijdig|verwarrend"
        r"|onduidelijk|al uren|al dagen|al (\d+|twee|drie) (uur|dagen)|weer eens|nu al de|pff+|tja"
        r"|traag|slow"),
    (2, "🙄|😡|😠|🤬"),
])

THANKS_RULES = _compile([
    (3, r"dank|bedankt(?! voor (niks|niets))|dankjewel|dankuwel|dank je|dank u|thx|tnx"
        r"|thanks(?! for nothing)|thank (you|u)|cheers|chapeau|respect voor|complimenten|compliment"
        r"|hulde|kudos|shout ?out|much appreciated|appreciated?"
        r"|(super|goed|prima|netjes|perfect) geregeld(?! (weer )?hoor)"),
    (3, r"top (dat|gedaan|werk|geregeld door)|(?<!niks )(?<!niets )goed gedaan|helden|held|trots op"
        r"|well done|great (job|work|communication)|really helpful|heel duidelijk|duidelijk bericht"),
    (2, r"fijn dat|mooi dat|goed dat jullie|fijn om te weten|heel fijn"),
    (1, "🙏|❤️|❤|💪|👏"),
])

OTHER_RULES = _compile([
    # spam and self-promotion
    (3, r"verdien\w*|klik (op|hier)|link in (mijn |de )?bio|gratis|winnen|win een|deel dit"
        r"|like (de|onze|mijn) pagina|abonneer\w*|volg (mij|mijn|ons)|te koop|dm me|earn"
        r"|follow (my|our|me)|subscribe|giveaway|crypto|bitcoin|(mijn|my) (kanaal|channel|pagina|page)"),
    # off-topic: social, leisure, politics
    (3, r"gefeliciteerd|verjaardag|goedemorgen|goedemiddag|goedenavond|wedstrijd|voetbal|kermis|markt"
        r"|oppas|loodgieter|plumber|football|match|sunset|zonsondergang|mooi dagje|monopoly|spelletje"
        r"|netflix|schoonmoeder|stem (op|volgende)|partij|politici|politicians|vote"
        r"|burgemeester moet (\w+ )?weg|aftreden|opstappen|birthday"),
    (3, r"(mijn|onze) (\w+ )?(kat|kater|poes|hond) (\w+ )?(gezien|kwijt)|(lost|missing) (cat|dog)"),
    (2, r"haha\w*|hihi|lol|lmao|grapje|check this|kijk dit"),
    (1.5, "😂|🤣|😄|😆|😍|🎉|📸|☀️"),
])

_RULES = {"help": HELP_RULES, "rumour": RUMOUR_RULES, "report": REPORT_RULES,
          "complaint": COMPLAINT_RULES, "thanks": THANKS_RULES, "other": OTHER_RULES}

# A plea: "help"/"hulp" opening or closing the message or followed by "!" (normalised text), or
# "HELP" shouted in a message that is not all capitals anyway (raw text).
_HELP_PLEA = re.compile(r"^\W*(he+lp+|hulp)(?![a-z0-9])|" + _NOT_THANKED
                        + r"(?<![a-z0-9])(he+lp+|hulp)\s*(!|\W*$)")
_BARE_HELP = re.compile(r"he+lp+|hulp")
_HELP_SHOUT = re.compile(r"(?<![A-Za-z])(HE+LP+|HULP)(?![A-Za-z])")
_MENTION = re.compile(r"(?<!\w)@\w+")
_CONTRAST = re.compile(r"(?<![a-z])(maar|but|however|alleen jammer)(?![a-z])")

# Crisis topic words: a question or report without any of them is probably off-topic. Dutch
# compounds ("asbestbrand", "kraanwaterprobleem") count, so longer words may sit inside a word.
_TOPIC_WORDS = (
    "water kraan kook drink douch tandenpoets flesvoeding stroom elektriciteit power outage storing "
    "aggregaat rook brand vuur vlam smoke fire flame stank ruik dijk rivier river dike dyke "
    "hoogwater overstrom blank weiland uiterwaard flood zandzak sandbag evacu ontruim opvang shelter "
    "centre center thuis huis home terug gas asbest vogelgriep bird flu kip chicken vogel eieren dode "
    "storm wind boom tree dak schade damage wegen road afgesloten afgezet sirene siren alert "
    "update info bericht nummer number school veilig safe gevaar risk ramen deuren windows ventilat "
    "politie brandweer ambulance 112 gemeente tankwagen tanker ongeluk ongeval code oranje stoffen "
    "symptom kinderen afval bus brug trein hond dog diepvries telefoon").split()
_TOPIC = re.compile("|".join(
    (re.escape(w) if len(w) >= 5 else r"(?<![a-z0-9])" + re.escape(w))
    for w in sorted(_TOPIC_WORDS, key=len, reverse=True)))

_URGENT = re.compile(r"(?<![a-z])(dringend|urgent|spoed|asap|met spoed|nu meteen|immediately|sos)(?![a-z])")
_DANGER = re.compile(
    r"(?<![a-z])(vlammen|in brand|brandende|slaat over|explosie|ontploffing|gaslucht|gas lucht|gaslek"
    r"|ruik \w* ?gas|smell of gas|gas smell|smell gas|over de dijk|dijk (is )?doorgebroken|dijkdoorbraak"
    r"|levensgevaar\w*|bewusteloos|flames|explosion|on fire|dike (broke|breach)|water komt over)(?![a-z])")
_NEGATED_BEFORE = re.compile(r"(geen|no|niet|not) (\w+ )?$")

# Sentiment lexicon (stems) and emoji.
_POSITIVE = frozenset(stem(w) for w in (
    "dank bedankt dankjewel thanks thank thx tnx top super fijn goed geweldig mooi mooie held helden "
    "respect chapeau trots complimenten duidelijk helpful great appreciated gelukkig gezellig blij "
    "heerlijk prima perfect beautiful happy love rustig opgelucht eindelijk cheers kudos vriendelijk "
    "hero heroes amazing wonderful relieved nice").split())
_NEGATIVE = frozenset(stem(w) for w in (
    "slecht schandalig belachelijk waardeloos bang ziek dood doden gevaarlijk stinkt stank benauwd "
    "kapot ramp erg verschrikkelijk vreselijk boos woedend angst eng paniek gif vergiftigd "
    "kankerverwekkend liegt onzin bad terrible awful ridiculous useless unacceptable scared dead sick "
    "worst mess hate angry afraid poisoned dangerous hoax fake nep scam help hulp trapped stuck onwel "
    "bewusteloos niks niemand nobody nothing helaas jammer mis fout probleem problemen ingesloten "
    "dringend urgent levensgevaarlijk careful voorzichtig same").split())
# Harm being described: negative in a report or a plea, but a question about smoke is not negative.
_HAZARD = frozenset(stem(w) for w in (
    "rook rookwolk smoke brand fire vlammen flames schade damage overstroomd flooded ondergelopen "
    "blank omgeblazen leeg uitverkocht hamsteren wellen borrelt overlopen lopen storing uit brown "
    "bruin snippers dakpannen tiles afgesloten dicht vast").split())
_RELIEF = ("weer terug", "back on", "onder controle", "under control", "weer open", "alles rustig")
_NEGATORS = frozenset("niet geen nooit not no never dont isnt wasnt nie gin".split())
_POSITIVE_EMOJI = ("🙏", "❤", "💪", "😍", "🎉", "😂", "🤣", "😄", "😊", "👍", "☀")
_NEGATIVE_EMOJI = ("🙄", "😡", "😠", "😢", "😭", "🤬", "😱", "😨")
_SENTIMENT_PRIOR = {"help": -2.0, "complaint": -2.0, "rumour": -1.5, "thanks": 2.0}

# Language: frequent function words; a word in both lists ("in", "is", "we") counts for neither.
_NL_WORDS = frozenset((
    "de het een en van ik je jij dat die niet op te zijn er met voor wat mijn mn we wij ons onze hier "
    "ook nog maar al naar bij kan kun moet mag geen hoe waar wanneer jullie u zo dan nu heb hebben "
    "weer gewoon echt hoor weg uit wordt worden komt gaat klopt iemand alles niks niets wel zit staat "
    "ligt deze dit om aan of als omdat door zonder tot over ze hij zij mut wiej ut nie gin allenig der "
    "hen ff idd wss tis kzie kheb das dr").split())
_EN_WORDS = frozenset((
    "the a an and of to are i you we my our it this that on for with no not can do does what where "
    "when how why there here be have has just please from at by out all any is was were will would "
    "should could been being they them their your me us some someone anyone nobody everyone too very "
    "im its dont cant isnt wont going get got into about after before since near back over tonight "
    "today tomorrow still really").split())
_NL_GRAMS = re.compile(r"ij|oe|sch|aa|uu|ui|cht")
_EN_GRAMS = re.compile(r"th|wh|sh|ing|ck|ea|ou")


# --------------------------------------------------------------------------- classification

def detect_language(text: str, default: str = "nl", *, normalised: bool = False) -> tuple[str, list[str]]:
    """``("nl" | "en", the words that decided)``; ties and empty texts give ``default``."""
    words = tokens(text if normalised else normalise(text))
    nl = [w for w in words if w in _NL_WORDS and w not in _EN_WORDS]
    en = [w for w in words if w in _EN_WORDS and w not in _NL_WORDS]
    if len(en) != len(nl):
        return ("en", en[:6]) if len(en) > len(nl) else ("nl", nl[:6])
    if words:
        joined = " ".join(words)
        nl_grams, en_grams = len(_NL_GRAMS.findall(joined)), len(_EN_GRAMS.findall(joined))
        if nl_grams != en_grams:
            return ("nl" if nl_grams > en_grams else "en"), [f"letters: {nl_grams} nl, {en_grams} en"]
    return default, [f"default:{default}"]


def _question_score(norm: str) -> tuple[float, list[str]]:
    score, found = 0.0, []
    if "?" in norm:
        score += 2.0
        found.append("?")
    for m in QUESTION_OPENER.finditer(norm):
        opener = m.group("q")
        # "waarom ...?" aimed at the municipality is usually a reproach, not a question.
        score += 0.5 if opener.startswith(("waarom", "why")) else 1.5
        found.append(opener)
    for weight, phrase, _ in QUESTION_RULES.scan(norm):
        score += weight
        found.append(phrase)
    return score, found


def _sentiment(norm: str, raw: str, category: str) -> tuple[str, list[str]]:
    score, found = _SENTIMENT_PRIOR.get(category, 0.0), []
    if category in _SENTIMENT_PRIOR:
        found.append(f"category:{category}")
    hazards_count = category in ("report", "help", "other")
    words = tokens(norm)
    negated_until = -1
    for i, word in enumerate(words):
        if word in _NEGATORS:
            negated_until = i + 2
            continue
        s = stem(word)
        polarity = (1 if s in _POSITIVE else -1 if s in _NEGATIVE
                    else -1 if hazards_count and s in _HAZARD else 0)
        if polarity and i <= negated_until:
            polarity = -polarity  # "niet goed", "geen vlammen meer"
            word = f"{words[negated_until - 2]} {word}"
        if polarity:
            score += polarity
            found.append(word)
    if category == "report":
        for phrase in _RELIEF:
            if phrase in norm:
                score += 2
                found.append(phrase)
    for emoji in _POSITIVE_EMOJI:
        if emoji in raw:
            score += 1
            found.append(emoji)
    for emoji in _NEGATIVE_EMOJI:
        if emoji in raw:
            score -= 1
            found.append(emoji)
    if raw.upper() == raw and sum(1 for ch in raw if ch.isupper()) > 12:
        score -= 1
        found.append("ALL CAPS")
    bar = 2 if category == "question" else 1  # a question is neutral unless clearly emotional
    if score >= bar:
        return "positive", found
    if score <= -bar:
        return "negative", found
    return "neutral", found or ["no sentiment words"]


def _urgency(norm: str, category: str) -> tuple[str, list[str]]:
    urgent = [m.group(0) for m in _URGENT.finditer(norm)]
    if category == "help":
        return "high", ["category:help", *urgent]
    danger = [m.group(0) for m in _DANGER.finditer(norm)
              if not _NEGATED_BEFORE.search(norm, max(0, m.start() - 14), m.start())]
    if category == "report" and danger:
        return "high", danger
    if urgent and category in ("question", "report"):
        return "high", urgent
    if category in ("thanks", "other"):
        return "low", [f"category:{category}"]
    return "normal", [f"category:{category}"]


def classify(text: str, default_language: str = "nl") -> Classification:
    """Classify one reaction; the module docstring explains how the rules decide."""
    raw = text[:MAX_CHARS]
    norm = normalise(raw)
    contrast = None
    for m in _CONTRAST.finditer(norm):
        contrast = m.start()  # the last contrast marker counts
    scores: dict[str, float] = {}
    triggers: dict[str, list[str]] = {}
    scores["question"], triggers["question"] = _question_score(norm)
    for category, rules in _RULES.items():
        weigh_contrast = contrast is not None and category in ("thanks", "complaint")
        total, found = 0.0, []
        for weight, phrase, start in rules.scan(norm):
            if weigh_contrast:
                weight *= CONTRAST_AFTER if start > contrast else CONTRAST_BEFORE
            total += weight
            found.append(phrase)
        scores[category], triggers[category] = total, found

    plea = _HELP_PLEA.search(norm) or (raw.upper() != raw and _HELP_SHOUT.search(raw))
    if plea:
        bare = [p for p in triggers["help"] if _BARE_HELP.fullmatch(p)]
        scores["help"] += 3 - 2 * bool(bare)  # the plea replaces the bare word, not adds to it
        triggers["help"] = [plea.group(0).strip(), *(p for p in triggers["help"] if p not in bare)]
    mention = _MENTION.search(raw)
    if mention and len(tokens(norm)) <= 6:
        scores["other"] += 2
        triggers["other"].append(mention.group(0))
    if scores["rumour"] >= 2 and "?" in norm:
        scores["rumour"] += 1.5  # asking whether a claim is true: how rumours reach the team
        triggers["rumour"].append("?")
    elif "?" in triggers["question"] and scores["question"] >= 3.5:
        scores["report"] *= 0.5  # an explicit question must be answered, whatever it observes
    if not _TOPIC.search(norm):
        scores["question"] *= 0.5
        scores["report"] *= 0.5
    scores = {c: round(scores[c], 2) for c in CATEGORIES}

    if scores["help"] >= HELP_THRESHOLD:
        category = "help"
    else:
        best = max(scores[c] for c in TIE_ORDER)
        category = next(c for c in TIE_ORDER if scores[c] == best) if best >= MIN_SCORE else "other"
    win = scores[category]
    runner_up = max(s for c, s in scores.items() if c != category)
    confidence = round(min(1.0, win / (win + runner_up + 1.0)), 2) if win > 0 else 0.3

    language, language_triggers = detect_language(norm, default_language, normalised=True)
    urgency, urgency_triggers = _urgency(norm, category)
    sentiment, sentiment_triggers = _sentiment(norm, raw, category)
    return Classification(
        category=category, urgency=urgency, sentiment=sentiment, language=language,
        triggers={"category": triggers[category] or ["no category cue matched"],
                  "urgency": urgency_triggers, "sentiment": sentiment_triggers,
                  "language": language_triggers},
        score=win, confidence=confidence, scores=scores)


# --------------------------------------------------------------------------- evaluation

def load_jsonl(path: str | Path) -> list[dict]:
    """Labelled reactions, one JSON object per line."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def evaluate(rows: list[dict], classifier: Callable[[str], Classification] = classify) -> dict:
    """Per-category precision/recall/F1, macro-F1, help recall, and accuracy of the other fields."""
    pairs = [(row, classifier(row["text"])) for row in rows]
    per_category = {}
    for category in CATEGORIES:
        tp = sum(1 for r, p in pairs if r["category"] == category and p.category == category)
        fp = sum(1 for r, p in pairs if r["category"] != category and p.category == category)
        fn = sum(1 for r, p in pairs if r["category"] == category and p.category != category)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_category[category] = {"precision": round(precision, 3), "recall": round(recall, 3),
                                  "f1": round(f1, 3), "support": tp + fn}
    present = [c for c in CATEGORIES if per_category[c]["support"]]
    macro_f1 = sum(per_category[c]["f1"] for c in present) / len(present) if present else 0.0

    def accuracy(key: str) -> float:
        return round(sum(1 for r, p in pairs if getattr(p, key) == r[key]) / len(pairs), 3) if pairs else 0.0

    errors = [{"text": r["text"], "expected": r["category"], "got": p.category,
               "triggers": p.triggers["category"]}
              for r, p in pairs if r["category"] != p.category]
    return {"n": len(pairs), "per_category": per_category, "macro_f1": round(macro_f1, 3),
            "help_recall": per_category["help"]["recall"], "accuracy": accuracy("category"),
            "urgency_accuracy": accuracy("urgency"), "sentiment_accuracy": accuracy("sentiment"),
            "language_accuracy": accuracy("language"), "errors": errors}
