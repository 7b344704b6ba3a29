"""Areas in the console: edit by form, import from GeoJSON with errors that say where."""

from __future__ import annotations

import io
import json

import pytest
import sqlalchemy as sa

from crisis.extensions import db
from crisis.models import Area, AuditEvent
from tests.conftest import csrf_token, login


def square(lon: float, lat: float, half: float = 0.01) -> list:
    return [[[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
             [lon - half, lat + half], [lon - half, lat - half]]]


def feature(name, code, coordinates=None, **properties):
    return {"type": "Feature", "properties": {"name": name, "code": code, **properties},
            "geometry": {"type": "Polygon", "coordinates": coordinates or square(6.26, 52.51)}}


def collection(*features):
    return {"type": "FeatureCollection", "features": list(features)}


def areas(app) -> dict[str, Area]:
    with app.app_context():
        found = {a.code: a for a in db.session.scalars(sa.select(Area))}
        for area in found.values():
            db.session.expunge(area)
        return found


def test_import_creates_and_updates(app, admin):
    client, headers = admin
    with app.app_context():
        db.session.add(Area(code="dalfsen", name="Dalfsen (oud)", postcodes=["7721"]))
        db.session.commit()
    response = client.post("/console/areas/import", headers=headers, json=collection(
        feature("Dalfsen", "dalfsen", postcodes=["7721", "7722"]),
        feature("De Meele", "de-meele", square(6.30, 52.52), postcodes="7722 AB, 7722AC"),
    ))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["created"] == 1 and response.get_json()["updated"] == 1
    stored = areas(app)
    assert stored["dalfsen"].name == "Dalfsen" and stored["dalfsen"].postcodes == ["7721", "7722"]
    assert stored["de-meele"].postcodes == ["7722AB", "7722AC"]
    assert stored["de-meele"].polygon == square(6.30, 52.52)
    with app.app_context():
        event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "area.imported"))
        assert event.data == {"created": 1, "updated": 1}


@pytest.mark.parametrize("document, expected", [
    ({"type": "Feature"}, "type: a GeoJSON FeatureCollection is required"),
    (collection(), "features: a non-empty list"),
    (collection(feature("Ankum", "ankum"), feature("Open", "open", [[[6.0, 52.0], [6.1, 52.0],
                                                                     [6.1, 52.1], [6.0, 52.1]]])),
     "features[1].geometry.coordinates[0]: the ring is not closed"),
    (collection(feature("Ver weg", "ver", [[[200.0, 52.0], [6.1, 52.0], [6.1, 52.1],
                                            [200.0, 52.0]]])),
     "features[0].geometry.coordinates[0][0]: longitude 200.0 is outside -180..180"),
    (collection(feature("Noordpool", "pool", [[[6.0, 95.0], [6.1, 52.0], [6.1, 52.1],
                                               [6.0, 95.0]]])),
     "features[0].geometry.coordinates[0][0]: latitude 95.0 is outside -90..90"),
    (collection(feature("Driehoek", "drie", [[[6.0, 52.0], [6.1, 52.0], [6.0, 52.0]]])),
     "features[0].geometry.coordinates[0]: a ring needs at least 4 positions"),
    (collection(feature("Tekst", "tekst", [[["6.0", 52.0], [6.1, 52.0], [6.1, 52.1],
                                            ["6.0", 52.0]]])),
     "features[0].geometry.coordinates[0][0]: a position is [longitude, latitude]"),
    (collection(feature("", "leeg")), "features[0].properties.name: required"),
    (collection(feature("Hoofdletters", "Hoofd Letters")), "features[0].properties.code: required"),
    (collection({"type": "Feature", "properties": {"name": "Punt", "code": "punt"},
                 "geometry": {"type": "Point", "coordinates": [6.0, 52.0]}}),
     "features[0].geometry.type: must be \"Polygon\" (found 'Point')"),
    (collection(feature("A", "dubbel"), feature("B", "dubbel")),
     "features[1].properties.code: 'dubbel' also used by features[0]"),
    (collection(feature("Postcode", "pc", postcodes=["77"])),
     "features[0].properties.postcodes[0]: '77' is not a postcode"),
])
def test_import_validation_names_feature_and_field(app, admin, document, expected):
    client, headers = admin
    response = client.post("/console/areas/import", headers=headers, json=document)
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert any(e.startswith(expected) for e in errors), errors
    assert areas(app) == {}  # nothing stored unless the whole file is valid


def test_import_reports_every_problem_at_once(app, admin):
    client, headers = admin
    response = client.post("/console/areas/import", headers=headers, json=collection(
        feature("Goed", "goed"),
        feature("Open", "open", [[[6.0, 52.0], [6.1, 52.0], [6.1, 52.1], [6.0, 52.1]]]),
        {"type": "Feature", "properties": {}, "geometry": None},
    ))
    errors = response.get_json()["errors"]
    assert [e.split(":")[0] for e in errors] == [
        "features[1].geometry.coordinates[0]", "features[2].properties.name",
        "features[2].properties.code", "features[2].geometry.type"]
    assert areas(app) == {}


def test_import_by_file_upload_from_the_console(app, admin):
    client, headers = admin
    good = json.dumps(collection(feature("Hessum", "hessum"))).encode()
    response = client.post("/console/areas/import", data={
        "csrf_token": headers["X-CSRFToken"], "file": (io.BytesIO(good), "kernen.geojson")},
        content_type="multipart/form-data")
    assert response.status_code == 303
    assert "hessum" in areas(app)
    bad = client.post("/console/areas/import", data={
        "csrf_token": headers["X-CSRFToken"], "file": (io.BytesIO(b"{not json"), "x.geojson")},
        content_type="multipart/form-data")
    assert bad.status_code == 422 and "file: not valid JSON" in bad.get_data(as_text=True)
    empty = client.post("/console/areas/import", data={"csrf_token": headers["X-CSRFToken"]})
    assert empty.status_code == 422
    forged = client.post("/console/areas/import", json=collection(feature("X", "x")))
    assert forged.status_code == 400  # no CSRF token


def test_create_and_edit_an_area(app, admin):
    client, headers = admin
    token = headers["X-CSRFToken"]
    page = client.get("/console/areas")
    assert page.status_code == 200
    created = client.post("/console/areas", data={
        "csrf_token": token, "name": "Lenthe", "code": "lenthe", "postcodes": "7722, 7721 AB",
        "polygon": json.dumps({"type": "Polygon", "coordinates": square(6.2, 52.5)})})
    assert created.status_code == 303
    lenthe = areas(app)["lenthe"]
    assert lenthe.postcodes == ["7722", "7721AB"] and lenthe.polygon == square(6.2, 52.5)

    duplicate = client.post("/console/areas", data={"csrf_token": token, "name": "Nog een",
                                                     "code": "lenthe"})
    assert duplicate.status_code == 422 and "already used" in duplicate.get_data(as_text=True)
    broken = client.post(f"/console/areas/{lenthe.id}", data={
        "csrf_token": token, "name": "Lenthe", "code": "lenthe",
        "polygon": json.dumps([[[6.0, 52.0], [6.1, 52.0], [6.1, 52.1], [6.0, 52.2]]])})
    assert broken.status_code == 422
    assert "polygon.coordinates[0]: the ring is not closed" in broken.get_data(as_text=True)
    assert areas(app)["lenthe"].polygon == square(6.2, 52.5)  # unchanged

    edited = client.post(f"/console/areas/{lenthe.id}", data={
        "csrf_token": token, "name": "Lenthe (buurtschap)", "code": "lenthe", "postcodes": "",
        "polygon": ""})
    assert edited.status_code == 303
    after = areas(app)["lenthe"]
    assert after.name == "Lenthe (buurtschap)" and after.postcodes == [] and after.polygon is None
    with app.app_context():
        actions = list(db.session.scalars(sa.select(AuditEvent.action)))
        assert "area.created" in actions and "area.updated" in actions


def test_areas_are_for_admins(app, make_user):
    approver = app.test_client()
    login(approver, make_user("approver"))
    assert approver.get("/console/areas").status_code == 403
    token = csrf_token(approver, "/console/")
    assert approver.post("/console/areas/import", json=collection(feature("X", "x")),
                         headers={"X-CSRFToken": token}).status_code == 403
