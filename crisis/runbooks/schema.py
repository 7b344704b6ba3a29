"""The runbook schema: one YAML file per incident type, checked field by field and as a whole.

Field checks (types, enums, unknown fields) are pydantic's. The checks that need the whole runbook
(ids that must exist, unique ids, dependency cycles, declared placeholders, the alert / update /
all-clear templates every runbook needs) run after them and raise `ConsistencyError`, which carries
the location of every problem, so the loader can point at the exact line of the YAML file.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    StringConstraints,
    model_validator,
)

Loc = tuple[str | int, ...]

SLUG_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
PLACEHOLDER_RE = re.compile(r"\{([a-z][a-z0-9_]*)\}")
PLACEHOLDER_NAME_RE = re.compile(r"[a-z][a-z0-9_]*")
ALL_AREAS = "all"
REQUIRED_KINDS = ("alert", "update", "all_clear")


# --- value types --------------------------------------------------------------------------------


def _slug(value: str) -> str:
    if not SLUG_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not an id: use lower-case letters, digits and single hyphens")
    return value


def _placeholder_name(value: str) -> str:
    if not PLACEHOLDER_NAME_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a placeholder name: use lower-case letters, digits and _")
    return value


def _template_text(value: str) -> str:
    # Every brace must belong to a valid {name}: a typo such as "{kern" or "{Kern}" would
    # otherwise go out to residents literally.
    position = _stray(value)
    if position is not None:
        raise ValueError(
            f"stray {value[position]!r} near {value[max(position - 12, 0):position + 12]!r}: write"
            " placeholders as {name}, with lower-case letters, digits and _"
        )
    return value


def _stray(value: str) -> int | None:
    """The position of the first brace that is not part of a valid placeholder."""
    spans = [m.span() for m in PLACEHOLDER_RE.finditer(value)]
    for index, char in enumerate(value):
        if char in "{}" and not any(start <= index < end for start, end in spans):
            return index
    return None


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Slug = Annotated[str, StringConstraints(max_length=80), AfterValidator(_slug)]
PlaceholderName = Annotated[str, AfterValidator(_placeholder_name)]
TemplateText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1),
                         AfterValidator(_template_text)]
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]

Channel = Literal["x", "facebook", "sms", "website"]
InjectChannel = Literal["x", "facebook", "sms", "form"]
Kind = Literal["alert", "update", "all_clear", "correction", "cancel"]
ReactionCategory = Literal["question", "rumour", "help", "report", "complaint", "thanks", "other"]


class Severity(StrEnum):
    """CAP 1.2 <severity>."""

    extreme = "Extreme"
    severe = "Severe"
    moderate = "Moderate"
    minor = "Minor"
    unknown = "Unknown"


class CapCategory(StrEnum):
    """CAP 1.2 <category>."""

    geo = "Geo"
    met = "Met"
    safety = "Safety"
    security = "Security"
    rescue = "Rescue"
    fire = "Fire"
    health = "Health"
    env = "Env"
    transport = "Transport"
    infra = "Infra"
    cbrne = "CBRNE"
    other = "Other"


class CapUrgency(StrEnum):
    """CAP 1.2 <urgency>."""

    immediate = "Immediate"
    expected = "Expected"
    future = "Future"
    past = "Past"
    unknown = "Unknown"


class CapCertainty(StrEnum):
    """CAP 1.2 <certainty>."""

    observed = "Observed"
    likely = "Likely"
    possible = "Possible"
    unlikely = "Unlikely"
    unknown = "Unknown"


def placeholders_in(text: str) -> list[str]:
    """The placeholder names used in `text`, in order of first use."""
    return list(dict.fromkeys(PLACEHOLDER_RE.findall(text)))


def fill(text: str, values: Mapping[str, str]) -> str:
    """Replace each {name} that `values` has; others stay as they are."""
    return PLACEHOLDER_RE.sub(lambda m: str(values.get(m.group(1), m.group(0))), text)


# --- models -------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Cap(_Model):
    """The CAP classification an incident started from this runbook gets by default."""

    category: CapCategory
    event: Text
    urgency: CapUrgency
    certainty: CapCertainty


class Placeholder(_Model):
    """A {name} the team fills in; the example is what previews and length checks use."""

    description: Text
    example: Text


class Role(_Model):
    """A team function (not a login role)."""

    id: Slug
    title: Text | None = None
    description: Text


class Phase(_Model):
    id: Slug
    title: Text
    order: PositiveInt
    description: Text | None = None


class Step(_Model):
    """A checklist step, due `target_minutes` after the incident started."""

    id: Slug
    title: Text
    role: Slug
    phase: Slug
    target_minutes: NonNegativeInt
    repeat_minutes: PositiveInt | None = None  # e.g. an update every 60 minutes
    depends_on: list[Slug] = Field(default_factory=list)
    notes: Text | None = None


class Variants(_Model):
    """Per-channel texts that replace the body on that channel (the message's overrides)."""

    x: TemplateText | None = None
    facebook: TemplateText | None = None
    sms: TemplateText | None = None
    website: TemplateText | None = None


class Template(_Model):
    id: Slug
    phase: Slug
    kind: Kind
    title: Text | None = None
    body: TemplateText
    en: TemplateText | None = None
    variants: Variants = Field(default_factory=Variants)
    placeholders: dict[PlaceholderName, Placeholder] = Field(default_factory=dict)

    def texts(self) -> Iterator[tuple[Loc, str]]:
        """Every text of the template with its location inside the template."""
        yield ("body",), self.body
        if self.en is not None:
            yield ("en",), self.en
        for channel, text in self.variants:
            if text is not None:
                yield ("variants", channel), text

    def text_for(self, channel: str | None = None, language: str | None = None) -> str:
        """The text a channel sends: the English translation, the channel's variant or the body."""
        if language == "en" and self.en:
            return self.en
        return (getattr(self.variants, channel) if channel else None) or self.body


class FollowUp(_Model):
    """An answer to a question the public keeps asking; `keywords` match reactions to it."""

    id: Slug
    theme: Text
    keywords: list[Text] = Field(min_length=1)
    body: TemplateText
    en: TemplateText | None = None
    placeholders: dict[PlaceholderName, Placeholder] = Field(default_factory=dict)

    def texts(self) -> Iterator[tuple[Loc, str]]:
        yield ("body",), self.body
        if self.en is not None:
            yield ("en",), self.en


class Reaction(_Model):
    """A simulated public reaction: `count` of them, spread over `spread_seconds`."""

    text: Text
    count: PositiveInt = 1
    spread_seconds: NonNegativeInt = 0
    category: ReactionCategory | None = None  # what the classifier should make of it


class Inject(_Model):
    """What the exercise leader plays into a drill at minute `at_minute`."""

    id: Slug
    at_minute: NonNegativeInt
    channel: InjectChannel
    note: Text | None = None
    authors: list[Text] = Field(default_factory=list)
    reactions: list[Reaction] = Field(min_length=1)


class Runbook(_Model):
    """One incident type's playbook: team, checklist, message templates and drill injects."""

    id: Slug
    title: Text
    summary: Text | None = None
    incident_types: list[Slug] = Field(min_length=1)
    language: Language = "nl"
    severity: Severity
    cap: Cap
    channels: list[Channel] = Field(min_length=1)
    areas: list[Slug] = Field(min_length=1)
    placeholders: dict[PlaceholderName, Placeholder] = Field(default_factory=dict)
    roles: list[Role] = Field(min_length=1)
    phases: list[Phase] = Field(min_length=3)
    checklist: list[Step] = Field(min_length=1)
    templates: list[Template] = Field(min_length=1)
    follow_ups: list[FollowUp] = Field(default_factory=list)
    injects: list[Inject] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = consistency_problems(self)
        if problems:
            raise ConsistencyError(problems)
        return self

    # Look-ups for the console and the drill runner.

    def template(self, template_id: str) -> Template:
        """The template with this id (KeyError if there is none)."""
        return _by_id(self.templates, template_id)

    def step(self, step_id: str) -> Step:
        return _by_id(self.checklist, step_id)

    def phases_in_order(self) -> list[Phase]:
        return sorted(self.phases, key=lambda phase: phase.order)

    def declared(self, item: Template | FollowUp | None = None) -> dict[str, Placeholder]:
        """The placeholders a template (or follow-up) may use: the runbook's plus its own."""
        return {**self.placeholders, **(item.placeholders if item else {})}

    def examples(self, item: Template | FollowUp | None = None) -> dict[str, str]:
        return {name: placeholder.example for name, placeholder in self.declared(item).items()}


class ConsistencyError(Exception):
    """A runbook whose fields are each fine but do not fit together; `problems` are (loc, message)."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, loc))}: {message}" for loc, message in problems))
        self.problems = problems


def _by_id(items: list[Any], item_id: str) -> Any:
    for item in items:
        if item.id == item_id:
            return item
    raise KeyError(item_id)


# --- whole-runbook checks -----------------------------------------------------------------------


def consistency_problems(runbook: Runbook) -> list[tuple[Loc, str]]:
    """Everything that is wrong with how the parts of `runbook` refer to each other."""
    problems: list[tuple[Loc, str]] = []
    for collection in ("roles", "phases", "checklist", "templates", "follow_ups", "injects"):
        problems += _duplicates(collection, [item.id for item in getattr(runbook, collection)], "id")
    problems += _duplicates("phases", [phase.order for phase in runbook.phases], "order")
    problems += _unique_values("channels", runbook.channels)
    problems += _unique_values("areas", runbook.areas)
    if ALL_AREAS in runbook.areas and len(runbook.areas) > 1:
        problems.append((("areas",), f"'{ALL_AREAS}' already covers every area: list it alone"))

    roles = [role.id for role in runbook.roles]
    phases = [phase.id for phase in runbook.phases]
    steps = [step.id for step in runbook.checklist]
    for index, step in enumerate(runbook.checklist):
        problems += _reference(("checklist", index, "role"), step.role, roles, "role")
        problems += _reference(("checklist", index, "phase"), step.phase, phases, "phase")
        for position, dependency in enumerate(step.depends_on):
            problems += _reference(("checklist", index, "depends_on", position), dependency, steps,
                                   "step")
    problems += _cycles(runbook.checklist)

    for index, template in enumerate(runbook.templates):
        problems += _reference(("templates", index, "phase"), template.phase, phases, "phase")
        problems += _undeclared(("templates", index), template, runbook.declared(template))
    for index, follow_up in enumerate(runbook.follow_ups):
        problems += _undeclared(("follow_ups", index), follow_up, runbook.declared(follow_up))

    kinds = {template.kind for template in runbook.templates}
    for kind in REQUIRED_KINDS:
        if kind not in kinds:
            problems.append((("templates",), f"no template of kind {kind}: every runbook needs an alert"
                             " (first message), an update and an all_clear template"))
    return problems


def _duplicates(collection: str, values: list[Any], field: str) -> list[tuple[Loc, str]]:
    first: dict[Any, int] = {}
    problems = []
    for index, value in enumerate(values):
        if value in first:
            problems.append(((collection, index, field),
                             f"duplicate {field} {value!r} (also {collection}.{first[value]})"))
        else:
            first[value] = index
    return problems


def _unique_values(field: str, values: list[str]) -> list[tuple[Loc, str]]:
    seen: set[str] = set()
    problems = []
    for index, value in enumerate(values):
        if value in seen:
            problems.append(((field, index), f"{value!r} is listed twice"))
        seen.add(value)
    return problems


def _reference(loc: Loc, value: str, known: list[str], what: str) -> list[tuple[Loc, str]]:
    if value in known:
        return []
    close = difflib.get_close_matches(value, known, n=1)
    if close:
        hint = f"did you mean {close[0]!r}?"
    elif len(known) <= 8:
        hint = f"declared: {', '.join(known) or 'none'}"
    else:
        hint = f"{len(known)} declared, none like it"
    return [(loc, f"unknown {what} {value!r} ({hint})")]


def _undeclared(prefix: Loc, item: Template | FollowUp, declared: Mapping[str, Placeholder]
                ) -> list[tuple[Loc, str]]:
    problems = []
    for loc, text in item.texts():
        for name in placeholders_in(text):
            if name not in declared:
                problems.append(((*prefix, *loc), f"placeholder {{{name}}} is not declared; add it to"
                                 " the template's or the runbook's placeholders"))
    return problems


def _cycles(steps: list[Step]) -> list[tuple[Loc, str]]:
    """One problem per dependency cycle, at the dependency that closes it."""
    index = {step.id: position for position, step in enumerate(steps)}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    problems: list[tuple[Loc, str]] = []

    for root in steps:
        if root.id in state:
            continue
        # Iterative depth-first search: (step id, next dependency position) frames.
        path: list[str] = [root.id]
        frames: list[tuple[str, int]] = [(root.id, 0)]
        state[root.id] = 1
        while frames:
            current, position = frames[-1]
            dependencies = steps[index[current]].depends_on
            if position >= len(dependencies):
                frames.pop()
                path.pop()
                state[current] = 2
                continue
            frames[-1] = (current, position + 1)
            dependency = dependencies[position]
            if dependency not in index:
                continue  # reported as an unknown step
            if state.get(dependency) == 1:
                cycle = path[path.index(dependency):] + [dependency]
                problems.append((("checklist", index[current], "depends_on", position),
                                 f"dependency cycle: {' -> '.join(cycle)}"))
            elif dependency not in state:
                state[dependency] = 1
                path.append(dependency)
                frames.append((dependency, 0))
    return problems


def field_names() -> set[str]:
    """Every field name the schema knows, for 'did you mean' hints on unknown fields."""
    models = (Cap, Placeholder, Role, Phase, Step, Variants, Template, FollowUp, Reaction, Inject,
              Runbook)
    return {name for model in models for name in model.model_fields}
