"""Runbooks: the library validates, broken files are reported by file, line and field, the CLI
and create_app act on that, and texts too long for one SMS are warned about."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from channels.text import sms_info
from crisis import create_app
from crisis.cli import main
from crisis.config import Defaults
from crisis.runbooks import Library, RunbookError, fill, load_library, validate_path
from crisis.runbooks.loader import runbook_files

LIBRARY = Path(Defaults.RUNBOOK_DIR)
LIBRARY_FILES = runbook_files(LIBRARY)

# A small runbook that is valid; each broken case below changes one thing in it.
MINIMAL = """\
id: oefen-brand
title: Oefenbrand
incident_types: [brand]
severity: Severe
cap:
  category: Fire
  event: Brand
  urgency: Immediate
  certainty: Observed
channels: [x, sms, website]
areas: [dalfsen]
placeholders:
  kern:
    description: Kern
    example: Dalfsen
roles:
  - id: redacteur
    description: Schrijft de berichten.
phases:
  - {id: eerste-bericht, title: Eerste bericht, order: 1}
  - {id: updates, title: Updates, order: 2}
  - {id: afschaling, title: Afschaling, order: 3}
checklist:
  - id: eerste-bericht-versturen
    title: Eerste bericht versturen
    role: redacteur
    phase: eerste-bericht
    target_minutes: 15
  - id: update-versturen
    title: Update versturen
    role: redacteur
    phase: updates
    target_minutes: 60
    depends_on: [eerste-bericht-versturen]
templates:
  - id: alert
    phase: eerste-bericht
    kind: alert
    body: Brand in {kern}. Ga naar binnen. Houd ramen en deuren dicht.
  - id: update
    phase: updates
    kind: update
    body: De brand in {kern} is nog niet uit. Blijf binnen.
  - id: all-clear
    phase: afschaling
    kind: all_clear
    body: De brand in {kern} is uit. U kunt ramen en deuren weer openen.
"""


def write(directory: Path, text: str, name: str = "oefen-brand.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def changed(old: str, new: str) -> str:
    assert MINIMAL.count(old) == 1, old
    return MINIMAL.replace(old, new)


def line_no(text: str, needle: str | tuple[str, int]) -> int:
    """The 1-based line of the first line containing `needle` (or its n-th, given (needle, n))."""
    needle, nth = needle if isinstance(needle, tuple) else (needle, 1)
    return [n for n, line in enumerate(text.splitlines(), 1) if needle in line][nth - 1]


# --- the library --------------------------------------------------------------------------------


def test_the_library_has_the_dalfsen_runbooks():
    ids = {path.stem for path in LIBRARY_FILES}
    assert {"hoogwater-vecht", "grote-brand-rook", "asbest", "kookadvies", "stroomstoring", "storm",
            "gaslek", "vogelgriep", "tankwagen-n340", "evacuatie"} <= ids


@pytest.mark.parametrize("path", LIBRARY_FILES, ids=lambda p: p.name)
def test_every_library_runbook_validates(path):
    errors, warnings = validate_path(path)
    assert errors == [], "\n".join(map(str, errors))
    # The library is the example others copy: it should not need the warnings either.
    assert warnings == [], "\n".join(map(str, warnings))


@pytest.mark.parametrize("path", LIBRARY_FILES, ids=lambda p: p.name)
def test_library_runbooks_are_complete_enough_to_drill(path):
    runbook = load_library(LIBRARY)[path.stem]
    kinds = {template.kind for template in runbook.templates}
    assert {"alert", "update", "all_clear"} <= kinds
    assert len(runbook.phases) >= 3
    for template in runbook.templates:
        if template.kind in ("alert", "all_clear"):
            assert template.en, f"{template.id} needs an English translation"
        if "sms" in runbook.channels:
            sms = sms_info(fill(template.text_for("sms"), runbook.examples(template)))
            assert (sms.encoding, sms.segments) == ("GSM-7", 1), template.id
    assert len(runbook.follow_ups) >= 2
    assert len(runbook.injects) >= 3
    assert len({inject.at_minute for inject in runbook.injects}) >= 3
    assert len({inject.channel for inject in runbook.injects}) >= 2
    categories = {r.category for inject in runbook.injects for r in inject.reactions}
    assert {"question", "rumour", "help"} <= categories
    first = min(runbook.checklist, key=lambda step: step.target_minutes)
    assert first.target_minutes <= 15
    assert any(step.repeat_minutes for step in runbook.checklist), "no recurring update step"


def test_the_library_loads_once_and_indexes_by_id():
    library = load_library(LIBRARY)
    assert isinstance(library, Library) and len(library) == len(LIBRARY_FILES)
    assert load_library(LIBRARY) is library
    fire = library["grote-brand-rook"]
    assert library.source("grote-brand-rook").name == "grote-brand-rook.yaml"
    assert fire.template("eerste-bericht").kind == "alert"
    assert [phase.id for phase in fire.phases_in_order()][0] == "eerste-bericht"
    assert fire in library.for_incident_type("brand")


def test_the_minimal_runbook_is_valid(tmp_path):
    errors, warnings = validate_path(write(tmp_path, MINIMAL))
    assert errors == [] and warnings == []


# --- broken runbooks: file, line and field ------------------------------------------------------

BROKEN = {
    "wrong type": (
        changed("target_minutes: 15", "target_minutes: vijftien"),
        "target_minutes: vijftien", "checklist.0.target_minutes", "valid integer",
    ),
    "missing field": (
        changed("    title: Eerste bericht versturen\n    role: redacteur\n",
                "    title: Eerste bericht versturen\n"),
        "- id: eerste-bericht-versturen", "checklist.0.role", "required field is missing",
    ),
    "unknown field": (
        changed("severity: Severe\n", "severity: Severe\ncolour: red\n"),
        "colour: red", "colour", "unknown field",
    ),
    "misspelt field": (
        changed("target_minutes: 60", "target_minute: 60"),
        "target_minute: 60", "checklist.1.target_minute", "did you mean 'target_minutes'?",
    ),
    "undeclared placeholder": (
        changed("Blijf binnen.", "Blijf binnen. Meer op {url}."),
        "Meer op {url}", "templates.1.body", "placeholder {url} is not declared",
    ),
    "stray brace": (
        changed("Brand in {kern}.", "Brand in {kern."),
        "Brand in {kern.", "templates.0.body", "stray '{'",
    ),
    "unknown dependency": (
        changed("depends_on: [eerste-bericht-versturen]", "depends_on: [eerste-bericht-sturen]"),
        "depends_on: [eerste-bericht-sturen]", "checklist.1.depends_on.0",
        "unknown step 'eerste-bericht-sturen' (did you mean 'eerste-bericht-versturen'?)",
    ),
    "dependency cycle": (
        changed("    target_minutes: 15\n",
                "    target_minutes: 15\n    depends_on: [update-versturen]\n"),
        "depends_on: [eerste-bericht-versturen]", "checklist.1.depends_on.0",
        "dependency cycle: eerste-bericht-versturen -> update-versturen -> eerste-bericht-versturen",
    ),
    "unknown role": (
        changed("    role: redacteur\n    phase: updates", "    role: pers\n    phase: updates"),
        "role: pers", "checklist.1.role", "unknown role 'pers'",
    ),
    "unknown phase": (
        changed("phase: afschaling\n    kind: all_clear", "phase: nazorg\n    kind: all_clear"),
        "phase: nazorg", "templates.2.phase", "unknown phase 'nazorg'",
    ),
    "duplicate id": (
        changed("  - id: update\n", "  - id: alert\n"),
        ("- id: alert", 2), "templates.1.id", "duplicate id 'alert' (also templates.0)",
    ),
    "no all-clear template": (
        changed("kind: all_clear", "kind: update"),
        "templates:", "templates", "no template of kind all_clear",
    ),
    "too few phases": (
        changed("  - {id: afschaling, title: Afschaling, order: 3}\n", ""),
        "phases:", "phases", "at least 3 items",
    ),
    "CAP value": (
        changed("category: Fire", "category: Brand"),
        "category: Brand", "cap.category", "'Fire'",
    ),
    "unquoted time": (
        changed("    example: Dalfsen", "    example: 23:00"),
        "example: 23:00", "placeholders.kern.example", "put the value in quotes",
    ),
    "duplicate key": (
        changed("severity: Severe\n", "severity: Severe\nseverity: Minor\n"),
        "severity: Minor", "severity", "duplicate key (first on line 4)",
    ),
    "YAML syntax error": (
        changed("channels: [x, sms, website]", "channels: [x, sms, website"),
        "areas: [dalfsen]", "", "YAML syntax error",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_runbook_is_reported_with_file_line_and_field(tmp_path, case):
    text, needle, loc, message = BROKEN[case]
    path = write(tmp_path, text)
    errors, _ = validate_path(path)
    # A misspelt field is also a missing one; every other case is exactly one error.
    assert len(errors) == (2 if case == "misspelt field" else 1), "\n".join(map(str, errors))
    [error] = [error for error in errors if error.loc == loc]
    assert error.path == path
    assert error.line == line_no(text, needle)
    assert error.loc == loc
    assert message in error.message
    expected_start = f"{path}:{error.line}: {loc + ': ' if loc else ''}"
    assert str(error).startswith(expected_start), str(error)


def test_every_error_of_a_file_is_reported(tmp_path):
    text = MINIMAL.replace("target_minutes: 15", "target_minutes: vijftien").replace(
        "category: Fire", "category: Brand")
    errors, _ = validate_path(write(tmp_path, text))
    assert {error.loc for error in errors} == {"checklist.0.target_minutes", "cap.category"}


def test_a_runbook_id_may_be_used_once_in_a_library(tmp_path):
    write(tmp_path, MINIMAL, "a.yaml")
    second = write(tmp_path, MINIMAL, "b.yaml")
    errors, warnings = validate_path(tmp_path)
    assert [(e.path, e.line, e.loc) for e in errors] == [(second, 1, "id")]
    assert "duplicate runbook id 'oefen-brand' (also in" in errors[0].message
    assert "a.yaml" in errors[0].message
    with pytest.raises(RunbookError, match="b.yaml:1: id: duplicate runbook id"):
        load_library(tmp_path)
    # Neither file is named after its id: worth a warning, not an error.
    assert {w.path.name for w in warnings} == {"a.yaml", "b.yaml"}


def test_an_empty_file_and_a_missing_path_are_errors(tmp_path):
    errors, _ = validate_path(write(tmp_path, ""))
    assert [e.message for e in errors] == ["the file is empty"]
    errors, _ = validate_path(tmp_path / "nope.yaml")
    assert "no such file or directory" in errors[0].message


# --- warnings -----------------------------------------------------------------------------------

LONG_SMS = changed(
    "    body: De brand in {kern} is nog niet uit. Blijf binnen.\n",
    "    body: >-\n"
    "      De brand in {kern} is nog niet uit. De brandweer blijft de hele nacht. Er komt nog veel\n"
    "      rook vrij. Heeft u last van rook? Blijf binnen. Houd ramen en deuren dicht. Zet de\n"
    "      ventilatie uit. Wij melden het als het weer kan.\n",
)


def test_a_template_too_long_for_one_sms_is_a_warning_not_an_error(tmp_path):
    path = write(tmp_path, LONG_SMS)
    errors, warnings = validate_path(path)
    assert errors == []
    [warning] = warnings
    assert warning.level == "warning"
    assert (warning.line, warning.loc) == (line_no(LONG_SMS, "body: >-"), "templates.1.body")
    assert "SMS text needs 2 segments" in warning.message
    assert "add a shorter `sms` variant" in warning.message
    assert load_library(tmp_path)["oefen-brand"]  # warnings do not stop the app


def test_a_short_sms_variant_silences_the_warning(tmp_path):
    text = LONG_SMS.replace(
        "      ventilatie uit. Wij melden het als het weer kan.\n",
        "      ventilatie uit. Wij melden het als het weer kan.\n"
        "    variants:\n      sms: Brand {kern} nog niet uit. Last van rook? Blijf binnen.\n")
    assert validate_path(write(tmp_path, text)) == ([], [])


def test_characters_that_force_ucs2_are_a_warning(tmp_path):
    text = changed("Blijf binnen.", "Blijf binnen \u2013 ook \u2018s avonds.")
    [warning] = validate_path(write(tmp_path, text))[1]
    assert warning.loc == "templates.1.body"
    assert "forces UCS-2" in warning.message and "U+2013" in warning.message


def test_a_hard_dutch_text_is_a_readability_warning(tmp_path):
    text = changed(
        "Blijf binnen.",
        "Gemeentelijke communicatieadviseurs verstrekken aanvullende informatievoorziening.")
    warnings = validate_path(write(tmp_path, text))[1]
    [warning] = [w for w in warnings if "readability" in w.message]
    assert warning.loc == "templates.1.body"
    assert "Flesch-Douma" in warning.message and "below B1" in warning.message


# --- the CLI ------------------------------------------------------------------------------------


def run_cli(*args: str):
    return CliRunner().invoke(main, ["runbooks", "validate", *args])


def test_cli_validates_the_configured_library(monkeypatch):
    monkeypatch.delenv("CRISIS_RUNBOOK_DIR", raising=False)
    result = run_cli()
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == (
        f"ok: {len(LIBRARY_FILES)} runbook files in {LIBRARY}, 0 errors, 0 warnings")


def test_cli_exits_1_and_prints_every_error_with_file_and_line(tmp_path):
    for case in ("wrong type", "missing field", "unknown field", "undeclared placeholder",
                 "unknown dependency", "dependency cycle", "YAML syntax error"):
        write(tmp_path, BROKEN[case][0], f"{case.replace(' ', '-')}.yaml")
    result = run_cli(str(tmp_path))
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    for case in ("wrong type", "missing field", "unknown field", "undeclared placeholder",
                 "unknown dependency", "dependency cycle", "YAML syntax error"):
        text, needle, loc, message = BROKEN[case]
        path = tmp_path / f"{case.replace(' ', '-')}.yaml"
        prefix = f"{path}:{line_no(text, needle)}: error: {loc + ': ' if loc else ''}"
        assert any(line.startswith(prefix) and message in line for line in lines), (case, result.output)
    assert lines[-1].startswith("FAILED: 7 runbook files") and ", 7 errors, " in lines[-1]


def test_cli_prints_warnings_and_exits_0(tmp_path):
    path = write(tmp_path, LONG_SMS)
    result = run_cli(str(path))
    assert result.exit_code == 0, result.output
    assert f"{path}:{line_no(LONG_SMS, 'body: >-')}: warning: templates.1.body: SMS text" in result.output
    assert result.output.splitlines()[-1].endswith("0 errors, 1 warning")


def test_cli_uses_crisis_runbook_dir(tmp_path, monkeypatch):
    write(tmp_path, BROKEN["unknown field"][0])
    monkeypatch.setenv("CRISIS_RUNBOOK_DIR", str(tmp_path))
    result = run_cli()
    assert result.exit_code == 1 and "colour: unknown field" in result.output


# --- create_app ---------------------------------------------------------------------------------


def app_config(tmp_path: Path, runbooks: Path) -> dict:
    return {"INSTANCE_PATH": str(tmp_path / "instance"), "TESTING": True, "SECRET_KEY": "x",
            "AUDIT_KEY": "y", "REDIS_URL": None, "RUNBOOK_DIR": str(runbooks)}


def test_create_app_loads_the_library(tmp_path):
    app = create_app(app_config(tmp_path, LIBRARY))
    library = app.extensions["runbooks"]
    assert "grote-brand-rook" in library
    assert library is load_library(LIBRARY)  # loaded once per process


def test_create_app_refuses_a_broken_runbook(tmp_path):
    text = BROKEN["missing field"][0]
    path = write(tmp_path / "runbooks", text)
    with pytest.raises(RunbookError) as raised:
        create_app(app_config(tmp_path, path.parent))
    message = str(raised.value)
    assert f"{path}:{line_no(text, '- id: eerste-bericht-versturen')}: checklist.0.role: " \
           "required field is missing" in message
    assert [issue.path for issue in raised.value.issues] == [path]


def test_create_app_refuses_a_missing_runbook_dir(tmp_path):
    with pytest.raises(RunbookError, match="runbook directory not found"):
        create_app(app_config(tmp_path, tmp_path / "nope"))


def test_a_fixed_runbook_is_read_again(tmp_path):
    path = write(tmp_path, BROKEN["unknown field"][0])
    with pytest.raises(RunbookError):
        load_library(tmp_path)
    path.write_text(MINIMAL.replace("title: Oefenbrand", "title: Oefenbrand (hersteld)"))
    assert load_library(tmp_path)["oefen-brand"].title == "Oefenbrand (hersteld)"
