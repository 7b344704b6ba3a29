"""Read runbook YAML files and report every problem as `file:LINE: field.path: message`.

The YAML is composed into a node tree first (which keeps each node's line), then constructed and
validated; a pydantic error's location is walked down that tree to the line of the offending field
or value (for a missing field: the line of the mapping it is missing from).

Errors stop a runbook from loading. Warnings do not: an SMS text that needs more than one segment or
forces UCS-2, an X text over the limit, a Dutch text below B1, and a few inconsistencies that may be
deliberate.
"""

from __future__ import annotations

import difflib
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from crisis.runbooks.schema import ConsistencyError, Loc, Runbook, field_names, fill, placeholders_in

log = logging.getLogger(__name__)

SUFFIXES = (".yaml", ".yml")
# What the X composer appends to a text: a space and the link to the update's page, which X
# counts as 23 whatever its length (t.co).
X_LINK_SAMPLE = " https://example.org/incidents/voorbeeld/updates/1"
READABLE_LEVELS = ("A2", "B1")
# libyaml keeps the same marks (lines) and is about ten times faster than the pure-Python parser,
# which matters because every app start reads the library.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Issue:
    """One error or warning, at a line of a runbook file (None when the file as a whole is wrong)."""

    path: Path
    line: int | None
    loc: str
    message: str
    level: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return self.format()

    def format(self, with_level: bool = False) -> str:
        where = f"{_display(self.path)}:{self.line}" if self.line else _display(self.path)
        label = f" {self.level}:" if with_level else ""
        what = f"{self.loc}: {self.message}" if self.loc else self.message
        return f"{where}:{label} {what}"


class RunbookError(Exception):
    """The runbook library cannot be loaded; `issues` says where and why."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        count = f"{len(issues)} error{'s' if len(issues) != 1 else ''}"
        lines = "\n".join(f"  {issue}" for issue in issues)
        super().__init__(f"invalid runbooks ({count}; check with `crisis runbooks validate`):\n{lines}")


class Library(Mapping[str, Runbook]):
    """The runbooks of one directory, by id."""

    def __init__(self, directory: Path, runbooks: dict[str, Runbook], sources: dict[str, Path]) -> None:
        self.directory = directory
        self._runbooks = runbooks
        self._sources = sources

    def __getitem__(self, runbook_id: str) -> Runbook:
        return self._runbooks[runbook_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._runbooks)

    def __len__(self) -> int:
        return len(self._runbooks)

    def __repr__(self) -> str:
        return f"<Library {self.directory} {sorted(self._runbooks)}>"

    def source(self, runbook_id: str) -> Path:
        """The file a runbook was read from."""
        return self._sources[runbook_id]

    def for_incident_type(self, incident_type: str) -> list[Runbook]:
        return [runbook for runbook in self.values() if incident_type in runbook.incident_types]

    def warnings(self) -> list[Issue]:
        """The validator's warnings for the library (read again from disk: not needed to run)."""
        return validate_path(self.directory)[1]


# --- public API ---------------------------------------------------------------------------------

_cache: dict[Path, tuple[tuple, Library]] = {}
_cache_lock = threading.Lock()


def load_library(directory: str | os.PathLike[str]) -> Library:
    """Load every runbook in `directory`; raise RunbookError listing every error there is.

    The result is cached per directory until a file in it changes, so building many apps in one
    process (tests, the CLI) reads and validates the files once.
    """
    directory = Path(directory).resolve()
    if not directory.is_dir():
        raise RunbookError([Issue(directory, None, "", "runbook directory not found (RUNBOOK_DIR)")])
    files = runbook_files(directory)
    signature = tuple((path.name, *_stat(path)) for path in files)
    with _cache_lock:
        cached = _cache.get(directory)
        if cached and cached[0] == signature:
            return cached[1]
        errors: list[Issue] = []
        runbooks: dict[str, Runbook] = {}
        sources: dict[str, Path] = {}
        for path in files:
            runbook, root, file_errors = _load(path)
            errors += file_errors
            if runbook is not None:
                errors += _claim(runbook, path, runbooks, sources, root)
        if errors:
            raise RunbookError(errors)
        library = Library(directory, runbooks, sources)
        _cache[directory] = (signature, library)
    log.info("loaded %d runbooks from %s", len(library), directory)
    return library


def validate_path(path: str | os.PathLike[str]) -> tuple[list[Issue], list[Issue]]:
    """Check a runbook file or every runbook in a directory; return (errors, warnings)."""
    path = Path(path)
    if not path.exists():
        return [Issue(path, None, "", "no such file or directory")], []
    files = runbook_files(path) if path.is_dir() else [path]
    errors: list[Issue] = []
    warnings: list[Issue] = []
    runbooks: dict[str, Runbook] = {}
    sources: dict[str, Path] = {}
    for file in files:
        runbook, root, file_errors = _load(file)
        errors += file_errors
        if runbook is not None and root is not None:
            errors += _claim(runbook, file, runbooks, sources, root)
            warnings += lint(runbook, root, file)
    return errors, warnings


def runbook_files(directory: Path) -> list[Path]:
    """The runbook files of a directory (not its subdirectories), in name order."""
    return sorted(p for p in directory.iterdir() if p.suffix in SUFFIXES and p.is_file())


# --- reading one file ---------------------------------------------------------------------------


def _load(path: Path) -> tuple[Runbook | None, Node | None, list[Issue]]:
    """Parse and validate one file: (runbook or None, its node tree, errors)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, None, [Issue(path, None, "", f"cannot read the file: {exc}")]
    root, data, errors = _parse(path, text)
    if errors or root is None:
        return None, root, errors
    try:
        return Runbook.model_validate(data), root, []
    except ValidationError as exc:
        return None, root, [_from_pydantic(path, root, error) for error in exc.errors()]
    except ConsistencyError as exc:
        return None, root, [
            Issue(path, line_of(root, loc), _dotted(loc), message) for loc, message in exc.problems
        ]


def _parse(path: Path, text: str) -> tuple[Node | None, Any, list[Issue]]:
    loader = _YamlLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None, [Issue(path, None, "", "the file is empty")]
        duplicates = list(_duplicate_keys(path, root))
        if duplicates:
            return root, None, duplicates
        return root, loader.construct_document(root), []
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "invalid YAML"
        if exc.context:
            started = exc.context_mark
            where = (f" on line {started.line + 1}" if started and mark and started.line != mark.line
                     else "")
            problem += f" ({exc.context}{where})"
        return None, None, [Issue(path, mark.line + 1 if mark else None, "",
                                  f"YAML syntax error: {problem}")]
    except yaml.YAMLError as exc:
        return None, None, [Issue(path, None, "", f"YAML error: {exc}")]
    finally:
        loader.dispose()


def _duplicate_keys(path: Path, root: Node) -> Iterator[Issue]:
    # PyYAML keeps the last of two equal keys without a word; in a runbook that is a lost text.
    seen_nodes: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    line = key.start_mark.line + 1
                    if key.value in first:
                        yield Issue(path, line, key.value,
                                    f"duplicate key (first on line {first[key.value]})")
                    first.setdefault(key.value, line)
                stack.append(value)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)


def line_of(root: Node, loc: Loc) -> int:
    """The line of the field or value at `loc`; for a missing one, the line of its parent."""
    node: Node = root
    line = root.start_mark.line + 1
    for part in loc:
        if isinstance(node, MappingNode) and isinstance(part, str):
            match = next(((k, v) for k, v in node.value
                          if isinstance(k, ScalarNode) and k.value == part), None)
            if match is None:
                return line
            node, line = match[1], match[0].start_mark.line + 1
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _from_pydantic(path: Path, root: Node, error: Mapping[str, Any]) -> Issue:
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "missing":
        message = "required field is missing"
    elif kind == "extra_forbidden":
        message = "unknown field"
        hint = difflib.get_close_matches(str(loc[-1]), sorted(field_names()), n=1)
        if hint:
            message += f" (did you mean {hint[0]!r}?)"
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
        value = error.get("input")
        if isinstance(value, str | int | float | bool) and kind != "value_error":
            shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
            message += f" (got {shown})"
        if kind == "string_type" and isinstance(value, int | float | bool):
            message += "; put the value in quotes (YAML reads 23:00, 1.5 or yes as a number or boolean)"
    return Issue(path, line_of(root, loc), _dotted(loc), message)


def _claim(runbook: Runbook, path: Path, runbooks: dict[str, Runbook], sources: dict[str, Path],
           root: Node | None) -> list[Issue]:
    """Add a runbook to a library being built; its id must be new."""
    if runbook.id in runbooks:
        line = line_of(root, ("id",)) if root is not None else None
        return [Issue(path, line, "id", f"duplicate runbook id {runbook.id!r} (also in "
                                        f"{_display(sources[runbook.id])})")]
    runbooks[runbook.id] = runbook
    sources[runbook.id] = path
    return []


# --- warnings -----------------------------------------------------------------------------------


def lint(runbook: Runbook, root: Node, path: Path) -> list[Issue]:
    """Warnings for a valid runbook: texts too long or too hard, and what may be a slip."""
    from channels.text import readability, sms_info, x_length

    found: list[tuple[Loc, str]] = []
    if path.stem != runbook.id:
        found.append((("id",), f"the file is named {path.name!r}, the id is {runbook.id!r}"))

    used: set[str] = set()
    for index, template in enumerate(runbook.templates):
        examples = runbook.examples(template)
        for _, text in template.texts():
            used.update(placeholders_in(text))
        if "sms" in runbook.channels:
            sms_loc = ("variants", "sms") if template.variants.sms else ("body",)
            texts = [(sms_loc, template.text_for("sms"))]
            if template.en:
                texts.append((("en",), template.en))
            for loc, text in texts:
                found += [((("templates", index, *loc)), problem)
                          for problem in _sms_problems(sms_info(fill(text, examples)), loc)]
        if "x" in runbook.channels:
            x_loc = ("variants", "x") if template.variants.x else ("body",)
            counted = x_length(fill(template.text_for("x"), examples) + X_LINK_SAMPLE)
            if not counted.valid:
                found.append((("templates", index, *x_loc),
                              f"X text is {counted.weighted_length} of {counted.limit} with the link "
                              "to the update page and examples filled in; add a shorter `x` variant"))
        for channel, text in template.variants:
            if text is not None and channel not in runbook.channels:
                found.append((("templates", index, "variants", channel),
                              f"a variant for {channel}, which this runbook does not use"))
        if runbook.language == "nl":
            found += _readability_problems(("templates", index, "body"), fill(template.body, examples),
                                           readability)

    for index, follow_up in enumerate(runbook.follow_ups):
        for _, text in follow_up.texts():
            used.update(placeholders_in(text))
        if runbook.language == "nl":
            found += _readability_problems(("follow_ups", index, "body"),
                                           fill(follow_up.body, runbook.examples(follow_up)), readability)

    for name in runbook.placeholders:
        if name not in used:
            found.append((("placeholders", name), "declared but no text uses it"))

    due = {step.id: step.target_minutes for step in runbook.checklist}
    for index, step in enumerate(runbook.checklist):
        for position, dependency in enumerate(step.depends_on):
            if due[dependency] > step.target_minutes:
                found.append((("checklist", index, "depends_on", position),
                              f"depends on {dependency!r}, which is due later (minute "
                              f"{due[dependency]}, this step minute {step.target_minutes})"))

    return [Issue(path, line_of(root, loc), _dotted(loc), message, "warning") for loc, message in found]


def _sms_problems(info: Any, loc: Loc) -> list[str]:
    problems = []
    if info.encoding == "UCS-2":
        chars = ", ".join(dict.fromkeys(f"{c['char']!r} ({c['codepoint']})" for c in info.ucs2_chars))
        problems.append(f"SMS text forces UCS-2 (70 characters per SMS instead of 160) because of {chars}")
    if info.segments > 1:
        fix = "shorten it" if loc != ("body",) else "add a shorter `sms` variant"
        problems.append(f"SMS text needs {info.segments} segments ({info.units} {info.encoding} units "
                        f"with examples filled in); {fix}")
    return problems


def _readability_problems(loc: Loc, text: str, readability: Any) -> list[tuple[Loc, str]]:
    scored = readability(text)
    if scored.level is None or scored.level in READABLE_LEVELS:
        return []
    hints = []
    if scored.long_words:
        hints.append("long words: " + ", ".join(dict.fromkeys(w["word"] for w in scored.long_words)))
    if scored.long_sentences:
        hints.append(f"{len(scored.long_sentences)} sentence(s) over 15 words")
    detail = f" ({'; '.join(hints)})" if hints else ""
    return [(loc, f"readability below B1: Flesch-Douma {scored.flesch_douma} ({scored.level}), "
                  f"B1 needs 60 or more{detail}")]


# --- helpers ------------------------------------------------------------------------------------


def _dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc)


def _display(path: Path) -> str:
    # Relative to the working directory where that is shorter, as compilers print paths.
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _stat(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size
