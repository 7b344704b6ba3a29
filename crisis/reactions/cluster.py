"""Incremental clustering of an incident's reactions into themes, with a readable label each.

One ``Clusterer`` per incident. ``assign(text, category, at)`` puts a reaction in a cluster of the
same category and returns ``(cluster_id, created)``:

1. **Near-duplicates** (retweets, copied WhatsApp texts, the same SMS sent twice): Jaccard
   similarity of character 4-gram sets of the normalised text, against a few exemplars of each
   cluster, at least ``near_duplicate`` (0.6).
2. **Themes**: the salient terms of the text (stems without stop words and without the incident's
   place names; Dutch and English synonyms mapped to one concept: "tap water" = "kraanwater",
   "power" = "stroom"; a known concept weighs double) are compared with each cluster's term
   profile. The similarity is the share of the text's term weight (IDF over the incident) that the
   cluster covers, each term counted by the fraction of the cluster's members that contain it. At
   least ``theme`` (0.4) and one shared core term (in at least half the members) joins; otherwise
   a new cluster starts.
3. A text without any salient term ("ok", "👍") joins the category's catch-all cluster.

Labels are the cluster's 2-4 most typical terms in reading order ("kraanwater drinken?"; a
question cluster ends in "?"), with the shortest member text as ``example``; a label is worked
out when read, once for all the reactions that joined since. Counts are kept per
``bucket_seconds`` (5 minutes) for sparklines and spike detection. Everything is deterministic
(no randomness, ties go to the oldest cluster) and the whole state round-trips through JSON
(``to_dict``/``from_dict``), so the app can persist it with the incident.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from crisis.reactions.classify import normalise, stem, tokens

BUCKET_SECONDS = 300
STATE_VERSION = 1
CONCEPT_WEIGHT = 2.0

# Synonyms and spelling variants that should land in one theme; the key is the display form.
CONCEPTS: dict[str, tuple[str, ...]] = {
    "kraanwater": ("kraanwater", "kraan", "drinkwater", "leidingwater", "tapwater", "tap"),
    "drinken": ("drinken", "drink", "drinking", "drinkbaar", "drinkable"),
    "koken": ("koken", "kook", "kookadvies", "gekookt", "boil", "boiling", "boiled"),
    "douchen": ("douchen", "douche", "shower", "showering"),
    "tandenpoetsen": ("tandenpoetsen", "tanden", "teeth", "brushing"),
    "stroom": ("stroom", "stroomstoring", "stroomuitval", "elektriciteit", "power", "outage",
               "electricity", "storing"),
    "rook": ("rook", "rookwolk", "smoke", "smoky", "rookontwikkeling"),
    "brand": ("brand", "fire", "vuur", "vlammen", "flames"),
    "ramen": ("ramen", "windows", "window", "ventilatie", "ventilation", "deuren", "doors"),
    "doorgebroken": ("doorgebroken", "doorbraak", "dijkdoorbraak", "broke", "breach", "breached"),
    "dijk": ("dijk", "dijken", "dike", "dikes", "dyke"),
    "hoogwater": ("hoogwater", "overstroming", "flood", "flooding", "flooded", "overstroomd", "blank"),
    "evacuatie": ("evacuatie", "evacueren", "evacuate", "evacuation", "evacuated", "ontruiming",
                  "ontruimd", "ontruimen", "geevacueerd"),
    "opvang": ("opvang", "noodopvang", "shelter", "opvanglocatie"),
    "gas": ("gas", "gaslek", "gaslucht", "gasleiding"),
    "asbest": ("asbest", "asbestos", "asbestbrand"),
    "vogelgriep": ("vogelgriep", "birdflu"),
    "zandzakken": ("zandzak", "zandzakken", "sandbag", "sandbags"),
    "school": ("school", "scholen", "schools"),
    "sirene": ("sirene", "sirenes", "siren", "sirens"),
    "kippen": ("kippen", "kip", "chickens", "chicken", "pluimvee", "poultry"),
    "vergoeding": ("vergoeding", "schadevergoeding", "compensation"),
    "schade": ("schade", "damage"),
    "terug": ("terug", "back", "hersteld", "restored"),
    "ziek": ("ziek", "sick", "ill", "ziekte"),
    "gif": ("gif", "giftig", "vergiftigd", "poisoned", "toxic", "poison"),
}
# Two-word phrases folded into one term before tokenising.
_PHRASES = ((re.compile(r"\btap water\b"), "kraanwater"), (re.compile(r"\bbird flu\b"), "birdflu"),
            (re.compile(r"\bdrinking water\b"), "kraanwater"), (re.compile(r"\bpower cut\b"), "power"),
            (re.compile(r"\bevacuation (centre|center)\b"), "shelter"),
            (re.compile(r"\bnl alert\b"), "nlalert"))

_CONCEPT_OF: dict[str, str] = {}
for _concept, _words in CONCEPTS.items():
    for _word in _words:
        _CONCEPT_OF[_word] = _concept
        _CONCEPT_OF[stem(_word)] = _concept

# Concept words that also close compounds ("rivierdijk", "gaslekken"); "water" is left out on
# purpose: "regenwater" is not "kraanwater".
_COMPOUND_TAILS = tuple((w, c) for w, c in (("dijk", "dijk"), ("dijken", "dijk"), ("storing", "stroom"),
                                            ("storingen", "stroom"), ("brand", "brand"), ("opvang", "opvang"),
                                            ("evacuatie", "evacuatie"), ("zandzakken", "zandzakken")))

STOPWORDS = frozenset((
    # Dutch function words, modal verbs, fillers
    "aan al alle alles als ben bij dan dat de deze die dit doe doen door dus een en er ff gaat gaan "
    "geen gewoon had hadden heb hebben heeft het hier hij hoe hoor iemand ik in is ja je jij jullie "
    "kan kun kunnen maar mag me men met mij mijn mn moet moeten mogen na naar nee niet niets niks nog "
    "nu of om ons onze ook op over te tot u uit van voor waar waarom wanneer wat we weer wel welke "
    "wie wij wordt worden zal ze zich zij zijn zit zitten zo zou zouden echt even eigenlijk graag "
    "weet weten vraag vraagje vragen iets ergens allemaal nou toch wnr hoelang lang laat komt komen "
    "krijgen krijg word ga gaan staat staan ligt liggen blijft blijven gebruiken maken halen "
    "mut wiej ut nie gin idd wss tis kzie kheb das dr nog steeds ivm thx tnx jullie elkaar daar "
    "klopt hoor hoorde gehoord heard hear true waar fake schijnt schijnbaar blijkbaar volgens "
    "apparently supposedly help hulp helpen helpt please pls aub alstublieft dringend urgent asap "
    "dank bedankt dankjewel thanks thank cheers haalt halen kijken komen denken denk vind vindt "
    "cant wont didnt isnt arent doesnt "
    # English
    "a about after all also am an and any anyone are as at be been before being but by can could "
    "did do does dont for from get got had has have he her here him his how i if im in into is it "
    "its just know me more my no not now of on or our out please should so some someone still that "
    "the their them there they this to too up us was we were what when where which who why will "
    "with would you your yet going need right safe "
    # generic verbs, adverbs and adjectives that say nothing about the theme
    "zie zien zag net veel heel hele echt eens even heb hebt hadden gehad geweest zeggen zegt zei "
    "eerst toen boven onder tussen haar hem hun jou mensen iedereen niemand beter goed slecht groot "
    "klein enorme nieuwe oude andere ander zelf weg hand normaal allebei alleen nogal helemaal "
    "because close live living really very much many lot lots thing things tell told say says said "
    "see saw look make think anything everything nothing people everyone nobody another other "
    "vanaf sinds tijdens binnen buiten straks morgen vandaag vanavond vannacht gisteren "
    "today tonight tomorrow yesterday").split())

_SHINGLE_CLEAN = re.compile(r"[^a-z0-9 ]+")
_NUMBER = re.compile(r"\d+")
_ROAD = re.compile(r"[an]\d{1,3}")


def _compound_concept(word: str) -> str | None:
    """A Dutch compound that ends in a concept word: "rivierdijk" -> dijk, "stroomstoringen"."""
    for suffix, concept in _COMPOUND_TAILS:
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            return concept
    return None


def _epoch(at: datetime | float | int | None) -> int:
    if at is None:
        return int(datetime.now(UTC).timestamp())
    if isinstance(at, datetime):
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)  # naive datetimes are UTC, as stored
        return int(at.timestamp())
    return int(at)


def shingles(norm: str, k: int = 4) -> frozenset[str]:
    """Character k-grams of normalised text (punctuation dropped, spaces kept)."""
    text = " ".join(_SHINGLE_CLEAN.sub(" ", norm).split())
    if len(text) <= k:
        return frozenset([text]) if text else frozenset()
    return frozenset(text[i:i + k] for i in range(len(text) - k + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


@dataclass
class Cluster:
    """Reactions on one theme in one incident; plain data, JSON-friendly through ``as_dict``."""

    id: int
    category: str
    count: int = 0
    first_at: int = 0
    last_at: int = 0
    terms: dict[str, int] = field(default_factory=dict)  # term -> members containing it
    forms: dict[str, dict[str, int]] = field(default_factory=dict)  # term -> surface forms seen
    positions: dict[str, float] = field(default_factory=dict)  # term -> summed relative position
    exemplars: list[str] = field(default_factory=list)  # normalised texts for near-duplicates
    example: str = ""  # the shortest member text (original spelling), for the card
    buckets: dict[int, int] = field(default_factory=dict)  # bucket start (epoch s) -> count
    catch_all: bool = False
    label: str = ""

    def as_dict(self) -> dict:
        return {"id": self.id, "category": self.category, "label": self.label, "count": self.count,
                "first_at": self.first_at, "last_at": self.last_at, "example": self.example,
                "catch_all": self.catch_all, "terms": dict(self.terms),
                "forms": {t: dict(f) for t, f in self.forms.items()},
                "positions": dict(self.positions), "exemplars": list(self.exemplars),
                "buckets": {str(b): n for b, n in sorted(self.buckets.items())}}

    @classmethod
    def from_dict(cls, data: dict) -> Cluster:
        return cls(id=int(data["id"]), category=data["category"], count=int(data["count"]),
                   first_at=int(data["first_at"]), last_at=int(data["last_at"]),
                   terms={t: int(n) for t, n in data["terms"].items()},
                   forms={t: {f: int(n) for f, n in fs.items()} for t, fs in data["forms"].items()},
                   positions={t: float(p) for t, p in data["positions"].items()},
                   exemplars=list(data["exemplars"]), example=data.get("example", ""),
                   buckets={int(b): int(n) for b, n in data["buckets"].items()},
                   catch_all=bool(data.get("catch_all", False)), label=data.get("label", ""))


class Clusterer:
    """The clusters of one incident, assigned incrementally; see the module docstring."""

    def __init__(self, *, places: Iterable[str] = (), near_duplicate: float = 0.6, theme: float = 0.4,
                 bucket_seconds: int = BUCKET_SECONDS, max_exemplars: int = 4, max_forms: int = 5):
        # Place names (the incident's villages, streets) say where, not what: they never make a theme.
        self.places = frozenset(t for p in places for t in tokens(normalise(p)))
        self.near_duplicate = near_duplicate
        self.theme = theme
        self.bucket_seconds = bucket_seconds
        self.max_exemplars = max_exemplars
        self.max_forms = max_forms
        self._clusters: dict[int, Cluster] = {}
        self._df: dict[str, int] = {}  # incident-wide: term -> reactions containing it
        self._total = 0
        self._buckets: dict[int, int] = {}
        self._next_id = 1
        self._shingle_cache: dict[str, frozenset[str]] = {}
        # Clusters whose label is out of date. Relabelled at every join, a batch of a hundred
        # reactions spent two fifths of its clustering (a tenth of the batch) on labels nobody read.
        self._unlabelled: set[int] = set()

    # ----------------------------------------------------------------- terms

    def terms(self, text: str) -> list[tuple[str, str, float]]:
        """``(term, surface form, relative position)`` of the salient words, in reading order."""
        norm = normalise(text)
        for pattern, replacement in _PHRASES:
            norm = pattern.sub(replacement, norm)
        words = tokens(norm)
        out, seen = [], set()
        for i, word in enumerate(words):
            if word in STOPWORDS or word in self.places:
                continue
            if _NUMBER.fullmatch(word):
                continue
            concept = _CONCEPT_OF.get(word) or _CONCEPT_OF.get(stem(word)) or _compound_concept(word)
            if concept:
                term, form = concept, concept
            elif len(word) < 3 and not _ROAD.fullmatch(word):
                continue
            elif _ROAD.fullmatch(word):
                term, form = word, word.upper()
            else:
                term, form = stem(word), word
            if term not in seen:
                seen.add(term)
                out.append((term, form, i / max(1, len(words) - 1)))
        return out

    def _idf(self, term: str) -> float:
        # Known crisis topics (the concepts) carry twice the weight of an incidental word.
        boost = CONCEPT_WEIGHT if term in CONCEPTS else 1.0
        return boost * (math.log((self._total + 1) / (self._df.get(term, 0) + 1)) + 1.0)

    def _shingles(self, exemplar: str) -> frozenset[str]:
        # Only exemplars are cached (at most max_exemplars per cluster): not part of the state.
        cached = self._shingle_cache.get(exemplar)
        if cached is None:
            cached = self._shingle_cache[exemplar] = shingles(exemplar)
        return cached

    # ----------------------------------------------------------------- assignment

    def assign(self, text: str, category: str, at: datetime | float | int | None = None) -> tuple[int, bool]:
        """Put one reaction in a cluster; ``(cluster_id, created)``."""
        when = _epoch(at)
        norm = normalise(text)
        grams = shingles(norm)
        terms = self.terms(text)
        candidates = [c for c in self._clusters.values() if c.category == category]

        cluster = self._near_duplicate(grams, candidates)
        if cluster is None and terms:
            cluster = self._best_theme(terms, candidates)
        if cluster is None and not terms:
            cluster = next((c for c in candidates if c.catch_all), None)
        created = cluster is None
        if cluster is None:
            cluster = Cluster(id=self._next_id, category=category, first_at=when, catch_all=not terms)
            self._clusters[cluster.id] = cluster
            self._next_id += 1
        self._add(cluster, text, norm, terms, when)
        return cluster.id, created

    def _near_duplicate(self, grams: frozenset[str], candidates: list[Cluster]) -> Cluster | None:
        best, best_score = None, self.near_duplicate
        n = len(grams)
        for cluster in candidates:
            for exemplar in cluster.exemplars:
                other = self._shingles(exemplar)
                m = len(other)
                if not n or not m or min(n, m) / max(n, m) < self.near_duplicate:
                    continue  # Jaccard cannot reach the threshold: skip the set work
                score = jaccard(grams, other)
                if score >= best_score and (best is None or score > best_score):
                    best, best_score = cluster, score
        return best

    def _best_theme(self, terms: list[tuple[str, str, float]], candidates: list[Cluster]) -> Cluster | None:
        weights = {t: self._idf(t) for t, _, _ in terms}
        total = sum(weights.values())
        best, best_score = None, self.theme
        for cluster in candidates:
            if cluster.catch_all or not cluster.count:
                continue
            covered, core = 0.0, False
            for term, weight in weights.items():
                share = cluster.terms.get(term, 0) / cluster.count
                covered += weight * share
                core = core or share >= 0.5
            score = covered / total
            if core and score >= best_score and (best is None or score > best_score):
                best, best_score = cluster, score
        return best

    def _add(self, cluster: Cluster, text: str, norm: str, terms, when: int) -> None:
        cluster.count += 1
        cluster.first_at = min(cluster.first_at or when, when)
        cluster.last_at = max(cluster.last_at, when)
        for term, form, position in terms:
            cluster.terms[term] = cluster.terms.get(term, 0) + 1
            cluster.positions[term] = cluster.positions.get(term, 0.0) + position
            forms = cluster.forms.setdefault(term, {})
            if form in forms or len(forms) < self.max_forms:
                forms[form] = forms.get(form, 0) + 1
            self._df[term] = self._df.get(term, 0) + 1
        self._total += 1
        if norm not in cluster.exemplars:
            # Keep the first exemplars and the latest one: the theme's origin and where it drifts.
            if len(cluster.exemplars) < self.max_exemplars:
                cluster.exemplars.append(norm)
            else:
                self._shingle_cache.pop(cluster.exemplars[-1], None)
                cluster.exemplars[-1] = norm
        short = " ".join(text.split())[:140]
        if not cluster.example or len(short) < len(cluster.example):
            cluster.example = short
        bucket = when - when % self.bucket_seconds
        cluster.buckets[bucket] = cluster.buckets.get(bucket, 0) + 1
        self._buckets[bucket] = self._buckets.get(bucket, 0) + 1
        self._unlabelled.add(cluster.id)

    # ----------------------------------------------------------------- reading

    def _relabel(self) -> None:
        for cluster_id in self._unlabelled:
            cluster = self._clusters[cluster_id]
            cluster.label = self._label(cluster)
        self._unlabelled.clear()

    def _label(self, cluster: Cluster, max_terms: int = 4) -> str:
        if cluster.catch_all or not cluster.terms:
            return "(no topic)"
        # Typical terms: in as many members as possible, then rarer across the incident.
        ranked = sorted(cluster.terms, key=lambda t: (-cluster.terms[t], -self._idf(t), t))
        if cluster.count < 3:
            chosen = ranked[:3]  # too few members to tell typical from incidental
        else:
            floor = max(2, math.ceil(0.3 * cluster.count))
            chosen = [t for t in ranked if cluster.terms[t] >= floor][:max_terms] or ranked[:2]
        # Reading order: as in the first exemplar that has them all, else their average place.
        order = {t: cluster.positions[t] / cluster.terms[t] for t in chosen}
        for exemplar in cluster.exemplars:
            found = {term: i for i, (term, _, _) in enumerate(self.terms(exemplar))}
            if all(t in found for t in chosen):
                order = found
                break
        chosen.sort(key=lambda t: (order[t], t))
        words = [max(cluster.forms[t].items(), key=lambda kv: (kv[1], -len(kv[0]), kv[0]))[0]
                 if cluster.forms.get(t) else t for t in chosen]
        label = " ".join(words)
        return label + "?" if cluster.category == "question" else label

    @property
    def clusters(self) -> list[Cluster]:
        """All clusters, oldest first."""
        self._relabel()
        return [self._clusters[i] for i in sorted(self._clusters)]

    def get(self, cluster_id: int) -> Cluster:
        self._relabel()
        return self._clusters[cluster_id]

    def label(self, cluster_id: int) -> str:
        return self.get(cluster_id).label

    def series(self, cluster_id: int | None = None, *, start: datetime | float | int | None = None,
               end: datetime | float | int | None = None) -> list[int]:
        """Counts per bucket, zero-filled, from ``start`` (default: first bucket) to ``end``
        (default: last bucket); the incident total when ``cluster_id`` is None."""
        buckets = self._buckets if cluster_id is None else self._clusters[cluster_id].buckets
        if not self._buckets:
            return []
        # The incident's time axis, so every cluster's sparkline lines up with the others.
        first = _epoch(start) if start is not None else min(self._buckets)
        last = _epoch(end) if end is not None else max(self._buckets)
        first -= first % self.bucket_seconds
        last -= last % self.bucket_seconds
        return [buckets.get(b, 0) for b in range(first, last + 1, self.bucket_seconds)]

    def summary(self, limit: int | None = None) -> list[dict]:
        """Cards for the console: biggest clusters first (ties: most recent activity, then id)."""
        self._relabel()
        ordered = sorted(self._clusters.values(), key=lambda c: (-c.count, -c.last_at, c.id))
        return [{"id": c.id, "category": c.category, "label": c.label, "count": c.count,
                 "example": c.example, "first_at": c.first_at, "last_at": c.last_at,
                 "catch_all": c.catch_all} for c in ordered[:limit]]

    # ----------------------------------------------------------------- persistence

    def to_dict(self) -> dict:
        return {"version": STATE_VERSION, "places": sorted(self.places),
                "near_duplicate": self.near_duplicate, "theme": self.theme,
                "bucket_seconds": self.bucket_seconds, "max_exemplars": self.max_exemplars,
                "max_forms": self.max_forms, "next_id": self._next_id, "total": self._total,
                "df": dict(sorted(self._df.items())),
                "buckets": {str(b): n for b, n in sorted(self._buckets.items())},
                "clusters": [c.as_dict() for c in self.clusters]}

    @classmethod
    def from_dict(cls, data: dict) -> Clusterer:
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported clusterer state version {data.get('version')!r}")
        clusterer = cls(places=data["places"], near_duplicate=data["near_duplicate"], theme=data["theme"],
                        bucket_seconds=data["bucket_seconds"], max_exemplars=data["max_exemplars"],
                        max_forms=data["max_forms"])
        clusterer._next_id = int(data["next_id"])
        clusterer._total = int(data["total"])
        clusterer._df = {t: int(n) for t, n in data["df"].items()}
        clusterer._buckets = {int(b): int(n) for b, n in data["buckets"].items()}
        clusterer._clusters = {c["id"]: Cluster.from_dict(c) for c in data["clusters"]}
        return clusterer

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Clusterer:
        return cls.from_dict(json.loads(text))
