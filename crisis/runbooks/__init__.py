"""Runbooks: per incident type, the team's checklist, message templates and drill injects.

One YAML file per runbook in RUNBOOK_DIR, validated against `schema.Runbook` when the app starts
(`app.extensions["runbooks"]` is the `Library`) and by `crisis runbooks validate`.
"""

from crisis.runbooks.loader import Issue, Library, RunbookError, load_library, validate_path
from crisis.runbooks.schema import (
    FollowUp,
    Inject,
    Phase,
    Placeholder,
    Reaction,
    Role,
    Runbook,
    Step,
    Template,
    fill,
    placeholders_in,
)

__all__ = [
    "FollowUp",
    "Inject",
    "Issue",
    "Library",
    "Phase",
    "Placeholder",
    "Reaction",
    "Role",
    "Runbook",
    "RunbookError",
    "Step",
    "Template",
    "fill",
    "load_library",
    "placeholders_in",
    "validate_path",
]
