"""CSV for spreadsheets, with formula injection neutralised (OWASP "CSV Injection").

A cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage return, which some spreadsheets
skip before reading a formula) is run as a formula when the file is opened in Excel, LibreOffice
or Google Sheets: `=HYPERLINK(...)` or `=cmd|...` in a name or a reaction text would execute on
an admin's machine. Such a cell gets a leading `'`, which spreadsheets read as "this is text" and
do not display. Numbers written as numbers (int, float) are left alone: a negative count stays a
number; only text is guarded, including text that merely looks like a number (`+31612345678`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """Return `value` safe for a spreadsheet cell: text that could start a formula gets a `'`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    text = str(value)
    # Leading spaces do not stop every spreadsheet from evaluating "  =1+1", so look past them.
    if text.startswith(FORMULA_STARTS) or text.lstrip(" ").startswith(FORMULA_STARTS):
        return "'" + text
    return text


def to_csv(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """Render a header and rows as CSV text (every cell neutralised, CRLF line ends)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow([neutralise(cell) for cell in header])
    for row in rows:
        writer.writerow([neutralise(cell) for cell in row])
    return buffer.getvalue()
