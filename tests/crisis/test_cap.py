"""CAP 1.2: /cap/<id>.xml validates against the OASIS schema; references, identifiers, times and
polygons follow the spec's rules; drills are `Exercise` and never listed publicly."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from crisis.extensions import db
from tests.conformance import conformance_file
from tests.crisis.test_public_pages import (
    fresh_pages,
    make_area,
    make_incident,
    publish,
    reset_public_cache,
)

NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
SENT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


@pytest.fixture
def fresh(app, monkeypatch):
    yield from fresh_pages(app, monkeypatch)


@pytest.fixture(scope="module")
def schema():
    return etree.XMLSchema(etree.parse(str(conformance_file("cap/CAP-v1.2.xsd"))))


@pytest.mark.parametrize("folder,valid", [("valid", True), ("invalid", False)])
def test_the_schema_accepts_the_spec_examples_and_rejects_the_mutations(schema, folder, valid):
    files = sorted(conformance_file(f"cap/{folder}").glob("*.xml"))
    assert files
    for path in files:
        assert schema.validate(etree.parse(str(path))) is valid, (path.name, schema.error_log)


@pytest.fixture
def alerts(fresh):
    """An alert in two areas (with an English translation), an update, a cancel of the update."""
    base = datetime(2026, 1, 15, 12, 0, 7, 654321, tzinfo=UTC)  # winter: +01:00
    with fresh.app_context():
        north = make_area("noord", "Noord", ["7711", "7712"], (52.58, 6.28))
        south = make_area("zuid", "Zuid", ["8151"], (52.44, 6.33))
        incident = make_incident("Brand Industrieweg", areas=[north, south], severity="Severe",
                                 event="Grote brand")
        incident.cap_category, incident.cap_urgency, incident.cap_certainty = (
            "Fire", "Immediate", "Observed")
        db.session.commit()
        alert = publish(incident, "Grote brand. Veel rook.", kind="alert", headline="Grote brand",
                        instruction="Ga naar binnen. Sluit ramen en deuren.",
                        translations={"en": "Large fire. Lots of smoke."}, at=base)
        update = publish(incident, "De rook trekt naar het oosten.", headline="Rook naar oost",
                         area_ids=[north.id], at=base + timedelta(minutes=10))
        cancel = publish(incident, "INGETROKKEN: de rook trekt niet naar het oosten.", kind="cancel",
                         supersedes=update, area_ids=[north.id], at=base + timedelta(minutes=20))
        all_clear = publish(incident, "Het gevaar is voorbij.", kind="all_clear",
                            at=base + timedelta(minutes=30))
        return {"alert": alert.id, "update": update.id, "cancel": cancel.id,
                "all_clear": all_clear.id, "north": north.polygon, "south": south.polygon,
                "slug": incident.slug}


def _cap(client, message_id):
    response = client.get(f"/cap/{message_id}.xml")
    assert response.status_code == 200, response.data
    assert response.mimetype == "application/cap+xml"
    return etree.fromstring(response.data)


def _text(doc, path):
    return doc.findtext(path, namespaces=NS)


def test_alert_update_and_cancel_validate_against_cap_1_2(client, alerts, schema):
    for name in ("alert", "update", "cancel", "all_clear"):
        doc = _cap(client, alerts[name])
        assert schema.validate(doc), (name, schema.error_log)


def test_message_types_and_statuses(client, alerts):
    alert, update = _cap(client, alerts["alert"]), _cap(client, alerts["update"])
    cancel, all_clear = _cap(client, alerts["cancel"]), _cap(client, alerts["all_clear"])
    assert _text(alert, "cap:msgType") == "Alert"
    assert _text(update, "cap:msgType") == "Update"
    assert _text(cancel, "cap:msgType") == "Cancel"
    assert _text(all_clear, "cap:msgType") == "Update"
    assert _text(all_clear, "cap:info/cap:responseType") == "AllClear"
    for doc in (alert, update, cancel, all_clear):
        assert _text(doc, "cap:status") == "Actual"
        assert _text(doc, "cap:scope") == "Public"
    assert alert.find("cap:references", NS) is None


def test_sent_is_whole_seconds_with_the_amsterdam_offset(client, alerts):
    sent = _text(_cap(client, alerts["alert"]), "cap:sent")
    assert SENT.match(sent) and not sent.endswith("Z")
    assert sent == "2026-01-15T13:00:07+01:00"


def test_identifier_and_sender_use_only_allowed_characters(client, alerts):
    doc = _cap(client, alerts["alert"])
    for name in ("cap:identifier", "cap:sender"):
        value = _text(doc, name)
        assert value and not re.search(r"[\s,<&]", value), value
    assert _text(doc, "cap:sender") == "crisis@127.0.0.1"
    assert _text(doc, "cap:identifier").endswith(f"-{alerts['alert']}")


def test_configured_sender(client, alerts, fresh, monkeypatch):
    monkeypatch.setitem(fresh.config, "CAP_SENDER", "crisis@dalfsen.nl")
    reset_public_cache(fresh)
    assert _text(_cap(client, alerts["alert"]), "cap:sender") == "crisis@dalfsen.nl"


def test_references_name_sender_identifier_and_sent(client, alerts):
    alert, update = _cap(client, alerts["alert"]), _cap(client, alerts["update"])
    cancel = _cap(client, alerts["cancel"])

    def ref(doc):
        return ",".join(_text(doc, f"cap:{n}") for n in ("sender", "identifier", "sent"))

    # The cancel references exactly what it cancels.
    assert _text(cancel, "cap:references") == ref(update)
    # An update without a superseded message references the incident's earlier messages.
    assert _text(update, "cap:references") == ref(alert)
    all_clear = _text(_cap(client, alerts["all_clear"]), "cap:references").split(" ")
    assert ref(alert) in all_clear and ref(cancel) in all_clear
    for entry in all_clear:
        sender, identifier, sent = entry.split(",")
        assert SENT.match(sent)


def test_info_per_language_with_the_incident_classification(client, alerts):
    doc = _cap(client, alerts["alert"])
    infos = doc.findall("cap:info", NS)
    assert [_text(i, "cap:language") for i in infos] == ["nl-NL", "en-GB"]
    dutch, english = infos
    assert _text(dutch, "cap:category") == "Fire"
    assert _text(dutch, "cap:event") == "Grote brand"
    assert _text(dutch, "cap:urgency") == "Immediate"
    assert _text(dutch, "cap:severity") == "Severe"
    assert _text(dutch, "cap:certainty") == "Observed"
    assert _text(dutch, "cap:headline") == "Grote brand"
    assert _text(dutch, "cap:description") == "Grote brand. Veel rook."
    assert _text(dutch, "cap:instruction") == "Ga naar binnen. Sluit ramen en deuren."
    assert _text(english, "cap:description") == "Large fire. Lots of smoke."
    assert _text(dutch, "cap:web") == (
        f"http://127.0.0.1:5000/incidents/{alerts['slug']}/updates/{alerts['alert']}")


def _pairs(polygon: str) -> list[tuple[float, float]]:
    return [tuple(float(v) for v in pair.split(",")) for pair in polygon.split(" ")]


def test_polygons_are_lat_lon_and_closed(client, alerts):
    doc = _cap(client, alerts["alert"])
    areas = doc.findall("cap:info[1]/cap:area", NS)
    assert [_text(a, "cap:areaDesc") for a in areas] == ["Noord", "Zuid"]
    for area, geojson in zip(areas, (alerts["north"], alerts["south"]), strict=True):
        pairs = _pairs(_text(area, "cap:polygon"))
        ring = geojson[0]
        assert len(pairs) == len(ring) >= 4
        assert pairs[0] == pairs[-1]  # closed
        for (lat, lon), (geo_lon, geo_lat) in zip(pairs, ring, strict=True):
            assert lat == pytest.approx(geo_lat) and lon == pytest.approx(geo_lon)
        assert 50 < pairs[0][0] < 54 and 3 < pairs[0][1] < 8  # the Netherlands, lat first
    north = areas[0]
    codes = [(_text(g, "cap:valueName"), _text(g, "cap:value")) for g in north.findall("cap:geocode", NS)]
    assert codes == [("postcode", "7711"), ("postcode", "7712")]


def test_an_open_ring_is_closed(app):
    from crisis.public.cap import cap_polygon

    ring = [[6.0, 52.0], [6.1, 52.0], [6.1, 52.1], [6.0, 52.1]]
    assert cap_polygon([ring]) == "52,6 52,6.1 52.1,6.1 52.1,6 52,6"
    assert cap_polygon([[[6.0, 52.0], [6.1, 52.0]]]) is None  # not an area
    assert cap_polygon(None) is None


def test_a_message_limited_to_one_area_lists_only_that_area(client, alerts):
    areas = _cap(client, alerts["update"]).findall("cap:info/cap:area", NS)
    assert [_text(a, "cap:areaDesc") for a in areas] == ["Noord"]


def test_drill_is_an_exercise_and_never_listed(client, fresh, schema):
    with fresh.app_context():
        drill = make_incident("Oefening hoogwater", mode="drill")
        message_id = publish(drill, "OEFENING: de Vecht stijgt.", kind="alert").id
    doc = _cap(client, message_id)
    assert schema.validate(doc), schema.error_log
    assert _text(doc, "cap:status") == "Exercise"
    listing = client.get("/cap.atom").get_data(as_text=True)
    assert f"/cap/{message_id}.xml" not in listing


def test_cap_atom_lists_each_live_cap_document(client, alerts):
    response = client.get("/cap.atom")
    assert response.mimetype == "application/atom+xml"
    feed = etree.fromstring(response.data)
    links = feed.xpath("//atom:entry/atom:link[@rel='alternate']/@href",
                       namespaces={"atom": "http://www.w3.org/2005/Atom"})
    assert sorted(links) == sorted(f"http://127.0.0.1:5000/cap/{alerts[k]}.xml"
                                   for k in ("alert", "update", "cancel", "all_clear"))


def test_unknown_and_withdrawn_messages_have_no_cap(client, alerts, fresh):
    from crisis.public.store import DatabasePostStore

    assert client.get("/cap/999999.xml").status_code == 404
    with fresh.app_context():
        DatabasePostStore().withdraw(str(alerts["update"]))
        db.session.commit()
    assert client.get(f"/cap/{alerts['update']}.xml").status_code == 404
