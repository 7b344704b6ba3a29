"""Areas as the team edits them: a form's fields, or a GeoJSON FeatureCollection to import.

Validation names the place of every problem (`features[2].geometry.coordinates[0][3]`), so an
admin can fix the file rather than guess. Nothing is stored unless the whole file is valid.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from crisis.extensions import db
from crisis.models import Area

CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
POSTCODE = re.compile(r"^\d{4}(\s?[A-Z]{2})?$")
MAX_FEATURES = 500
MAX_POSITIONS = 20_000  # per polygon: a municipality's kern, not a coastline at 1 m


class AreaError(ValueError):
    """Invalid area data; `errors` lists every problem as "where: what"."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass
class AreaData:
    code: str
    name: str
    postcodes: list[str] = field(default_factory=list)
    polygon: list | None = None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def polygon_errors(coordinates: Any, where: str) -> list[str]:
    """Problems of GeoJSON Polygon coordinates: rings of >= 4 [lon, lat] positions, closed."""
    if not isinstance(coordinates, list) or not coordinates:
        return [f"{where}: a Polygon needs a list of rings ([[[lon, lat], ...]])"]
    errors: list[str] = []
    total = 0
    for r, ring in enumerate(coordinates):
        here = f"{where}[{r}]"
        if not isinstance(ring, list) or len(ring) < 4:
            errors.append(f"{here}: a ring needs at least 4 positions (the first repeated last)")
            continue
        total += len(ring)
        for p, position in enumerate(ring):
            spot = f"{here}[{p}]"
            if not isinstance(position, list) or len(position) not in (2, 3) or not all(
                    _number(v) for v in position):
                errors.append(f"{spot}: a position is [longitude, latitude]")
                continue
            lon, lat = position[0], position[1]
            if not -180 <= lon <= 180:
                errors.append(f"{spot}: longitude {lon} is outside -180..180")
            if not -90 <= lat <= 90:
                errors.append(f"{spot}: latitude {lat} is outside -90..90")
        if isinstance(ring[0], list) and isinstance(ring[-1], list) and ring[0][:2] != ring[-1][:2]:
            errors.append(f"{here}: the ring is not closed (its first and last positions differ)")
    if total > MAX_POSITIONS:
        errors.append(f"{where}: more than {MAX_POSITIONS} positions; simplify the polygon")
    return errors


def parse_postcodes(value: Any, where: str) -> tuple[list[str], list[str]]:
    """Postcodes from a list or a comma/space separated text: PC4 (`7721`) or PC6 (`7721AB`)."""
    if value is None or value == "":
        return [], []
    if isinstance(value, str):
        items = [v for v in re.split(r"[,;\n]+", value) if v.strip()]
    elif isinstance(value, list):
        items = value
    else:
        return [], [f"{where}: a list of postcodes"]
    result, errors = [], []
    for i, item in enumerate(items):
        text = str(item).strip().upper().replace(" ", "")
        if not POSTCODE.match(text):
            errors.append(f"{where}[{i}]: {str(item)[:20]!r} is not a postcode (1234 or 1234AB)")
        elif text not in result:
            result.append(text)
    return result, errors


def check_fields(code: Any, name: Any, where: str) -> list[str]:
    errors = []
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 120:
        errors.append(f"{where}name: required text, at most 120 characters")
    if not isinstance(code, str) or not CODE.match(code.strip()):
        errors.append(f"{where}code: required, lower-case letters, digits, - and _ "
                      "(at most 64)")
    return errors


def from_form(form: dict[str, str]) -> AreaData:
    """An area from the console form: name, code, postcodes (text), polygon (GeoJSON text)."""
    code, name = (form.get("code") or "").strip(), (form.get("name") or "").strip()
    errors = check_fields(code, name, "")
    postcodes, problems = parse_postcodes(form.get("postcodes") or "", "postcodes")
    errors += problems
    polygon = None
    raw = (form.get("polygon") or "").strip()
    if raw:
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
            errors.append("polygon: not valid JSON")
        if isinstance(value, dict):  # a geometry or a feature pasted whole
            value = (value.get("geometry") or value) if value.get("type") == "Feature" else value
            if value.get("type") != "Polygon":
                errors.append("polygon: a GeoJSON Polygon (or its coordinates)")
                value = None
            else:
                value = value.get("coordinates")
        if value is not None:
            problems = polygon_errors(value, "polygon.coordinates")
            errors += problems
            polygon = value if not problems else None
    if errors:
        raise AreaError(errors)
    return AreaData(code=code, name=name, postcodes=postcodes, polygon=polygon)


def from_geojson(document: Any) -> list[AreaData]:
    """Areas from a FeatureCollection of Polygon features with `name` and `code` properties.

    Optional property `postcodes` (list or text). Raises AreaError with every problem found.
    """
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise AreaError(["type: a GeoJSON FeatureCollection is required"])
    features = document.get("features")
    if not isinstance(features, list) or not features:
        raise AreaError(["features: a non-empty list of features is required"])
    if len(features) > MAX_FEATURES:
        raise AreaError([f"features: at most {MAX_FEATURES} features"])
    errors: list[str] = []
    areas: list[AreaData] = []
    seen: dict[str, int] = {}
    for index, feature in enumerate(features):
        where = f"features[{index}]"
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            errors.append(f"{where}.type: must be \"Feature\"")
            continue
        properties = feature.get("properties")
        if not isinstance(properties, dict):
            errors.append(f"{where}.properties: an object with name and code is required")
            properties = {}
        code, name = properties.get("code"), properties.get("name")
        problems = check_fields(code, name, f"{where}.properties.")
        errors += problems
        postcodes, pc_problems = parse_postcodes(properties.get("postcodes"),
                                                 f"{where}.properties.postcodes")
        errors += pc_problems
        geometry = feature.get("geometry")
        if not isinstance(geometry, dict) or geometry.get("type") != "Polygon":
            kind = geometry.get("type") if isinstance(geometry, dict) else None
            errors.append(f"{where}.geometry.type: must be \"Polygon\" (found {kind!r})")
            continue
        coordinates = geometry.get("coordinates")
        poly_problems = polygon_errors(coordinates, f"{where}.geometry.coordinates")
        errors += poly_problems
        if problems:
            continue
        code = code.strip()
        if code in seen:
            errors.append(f"{where}.properties.code: {code!r} also used by features[{seen[code]}]")
            continue
        seen[code] = index
        if not pc_problems and not poly_problems:
            areas.append(AreaData(code=code, name=name.strip(), postcodes=postcodes,
                                  polygon=coordinates))
    if errors:
        raise AreaError(errors)
    return areas


def save(data: AreaData, area: Area | None = None) -> tuple[Area, bool]:
    """Create or update an area (by id when given, else by code); returns (area, created).

    A code taken by another area raises AreaError.
    """
    by_code = db.session.scalar(sa.select(Area).where(Area.code == data.code))
    if area is None:
        area = by_code
    elif by_code is not None and by_code.id != area.id:
        raise AreaError([f"code: {data.code!r} is already used by {by_code.name}"])
    created = area is None
    if created:
        area = Area(code=data.code, name=data.name)
        db.session.add(area)
    area.code, area.name, area.postcodes = data.code, data.name, data.postcodes
    area.polygon = data.polygon
    db.session.flush()
    return area, created
