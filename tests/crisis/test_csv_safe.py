"""Spreadsheet formulas in exported CSV are neutralised (OWASP CSV injection)."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa

from crisis.csv_safe import neutralise, to_csv
from crisis.extensions import db
from crisis.models import Area, AuditEvent, Subscriber, SubscriberStatus
from tests.conftest import login


@pytest.mark.parametrize("cell, expected", [
    ("=1+1", "'=1+1"),
    ("+31612345678", "'+31612345678"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
    ("\t=cmd|' /C calc'!A0", "'\t=cmd|' /C calc'!A0"),
    ("\r=1", "'\r=1"),
    ("  =HYPERLINK(\"http://x\")", "'  =HYPERLINK(\"http://x\")"),
    ("Dalfsen", "Dalfsen"),
    ("a=b", "a=b"),
    ("", ""),
    (None, ""),
    (42, 42),
    (-3, -3),
    (True, "true"),
])
def test_neutralise(cell, expected):
    assert neutralise(cell) == expected


def test_to_csv_quotes_and_neutralises_every_cell():
    text = to_csv(["name", "=evil header"], [["=HYPERLINK(\"http://x\",\"y\")", 'say "hi", ok'],
                                             ["plain", -1]])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["name", "'=evil header"], ["'=HYPERLINK(\"http://x\",\"y\")", 'say "hi", ok'],
                    ["plain", "-1"]]
    assert text.endswith("\r\n")


def test_console_csv_exports_are_neutralised_and_audited(app, make_user):
    with app.app_context():
        evil = Area(code="evil", name="=HYPERLINK(\"http://evil.example\",\"klik\")")
        plain = Area(code="ankum", name="Ankum")
        db.session.add_all([evil, plain])
        db.session.flush()
        db.session.add_all([
            Subscriber(phone="+31612345678", area_ids=[evil.id], status=SubscriberStatus.active,
                       consent={"how": "web", "when": "2026-01-01T00:00:00+00:00",
                                "text_version": "@1"}),
            Subscriber(phone="+31687654321", area_ids=[plain.id], status=SubscriberStatus.stopped),
        ])
        db.session.commit()
    client = app.test_client()
    login(client, make_user("admin"))

    counts = client.get("/console/subscribers.csv")
    assert counts.status_code == 200 and counts.mimetype == "text/csv"
    assert "attachment" in counts.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(counts.get_data(as_text=True))))
    assert rows[0] == ["area_code", "area_name", "pending", "active", "stopped"]
    assert ["ankum", "Ankum", "0", "0", "1"] in rows
    assert ["evil", "'=HYPERLINK(\"http://evil.example\",\"klik\")", "0", "1", "0"] in rows
    assert rows[-1] == ["", "total", "0", "1", "1"]
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)

    people = client.get("/console/subscribers.csv?kind=subscribers")
    rows = list(csv.reader(io.StringIO(people.get_data(as_text=True))))
    assert rows[1][1] == "'+31612345678" and rows[1][2] == "active"
    assert rows[1][-1] == "'@1"
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)

    assert client.get("/console/subscribers.csv?kind=other").status_code == 400
    with app.app_context():
        events = db.session.scalars(sa.select(AuditEvent).where(
            AuditEvent.action == "subscribers.csv_exported").order_by(AuditEvent.seq)).all()
        assert [(e.data["kind"], e.data["rows"]) for e in events] == [("counts", 3),
                                                                      ("subscribers", 2)]
