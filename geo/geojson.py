"""GeoJSON (RFC 7946) in and out: point features for maps, named zones for imports.

Positions are always [longitude, latitude]. Importing a file of quartiers or
communes never fails as a whole because one feature is broken: each bad feature
becomes a problem naming it, the good ones are kept, and the CLI shows both.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from geo.areas import Area, area_from_geojson
from geo.errors import GeoError
from geo.points import BoundingBox, GeoPoint

#: Property keys tried, in order and ignoring case, for a zone's name and code.
#: IGN's ADMIN EXPRESS says NOM / INSEE_COM, OSM exports name, open-data portals
#: libelle / code / insee.
NAME_KEYS: Final = ("nom", "name", "libelle", "libellé")
CODE_KEYS: Final = ("code", "insee", "insee_com", "code_insee", "id")


def point_feature(
    point: GeoPoint,
    properties: Mapping[str, Any] | None = None,
    feature_id: str | int | None = None,
) -> dict[str, Any]:
    """A Point Feature at ``point`` (coordinates [lon, lat])."""
    feature: dict[str, Any] = {
        "type": "Feature",
        "geometry": point.to_geojson(),
        "properties": dict(properties or {}),
    }
    if feature_id is not None:
        feature["id"] = feature_id
    return feature


def feature_collection(
    features: Iterable[Mapping[str, Any]], bbox: BoundingBox | None = None
) -> dict[str, Any]:
    """A FeatureCollection of ``features`` (with the RFC 7946 ``bbox`` member if given)."""
    collection: dict[str, Any] = {"type": "FeatureCollection", "features": list(features)}
    if bbox is not None:
        collection["bbox"] = bbox.to_geojson_bbox()
    return collection


def point_from_geojson(data: Mapping[str, Any]) -> GeoPoint:
    """The GeoPoint of a Point geometry or of a Feature holding one."""
    geometry: Any = data.get("geometry") if data.get("type") == "Feature" else data
    if not isinstance(geometry, Mapping) or geometry.get("type") != "Point":
        raise GeoError("Un point GeoJSON est attendu (type « Point »).")
    coordinates = geometry.get("coordinates")
    if not isinstance(coordinates, list | tuple) or len(coordinates) < 2:
        raise GeoError("Un point doit avoir des coordonnées [longitude, latitude].")
    return GeoPoint(lat=coordinates[1], lon=coordinates[0])


@dataclass(frozen=True, slots=True)
class NamedZone:
    """One imported zone: a quartier, a commune, a sector."""

    name: str
    code: str | None
    area: Area
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ZoneProblem:
    """Why one feature of an imported file was left out (message in French)."""

    #: Position of the feature in the file, from 1 (as a person counts).
    index: int
    name: str | None
    message: str

    def __str__(self) -> str:
        label = f"entité {self.index}" + (f" ({self.name})" if self.name else "")
        return f"{label} : {self.message}"


@dataclass(frozen=True, slots=True)
class ZoneImport:
    """The zones read from a file, and the features left out with the reason."""

    zones: tuple[NamedZone, ...]
    problems: tuple[ZoneProblem, ...]

    @property
    def ok(self) -> bool:
        """True when every feature became a zone."""
        return not self.problems


def _lookup(properties: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    """The first non-empty property among ``keys``, ignoring the case of property names."""
    lowered = {str(k).lower(): v for k, v in properties.items()}
    for key in keys:
        value = lowered.get(key)
        if value is not None and str(value).strip():
            return value
    return None


def parse_named_zones(
    data: Mapping[str, Any] | str | bytes, *, within_france: bool = True
) -> ZoneImport:
    """Read a FeatureCollection of named zones, keeping the good features.

    Each feature needs a Polygon/MultiPolygon geometry (or a Point with a
    ``radius``) and a name (``nom``, ``name`` or ``libelle``); its code comes from
    ``code``, ``insee`` or ``id`` (or the feature's own ``id``). A broken or
    duplicate feature becomes a ZoneProblem; only a file that is not a
    FeatureCollection at all raises GeoError.
    """
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise GeoError(f"Le fichier n'est pas du JSON valide : {exc}.") from exc
    if not isinstance(data, Mapping) or data.get("type") != "FeatureCollection":
        raise GeoError("Le fichier doit être une FeatureCollection GeoJSON.")
    features = data.get("features")
    if not isinstance(features, list):
        raise GeoError("La FeatureCollection doit contenir une liste « features ».")
    zones: list[NamedZone] = []
    problems: list[ZoneProblem] = []
    seen_codes: dict[str, int] = {}
    for index, feature in enumerate(features, start=1):
        if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
            problems.append(ZoneProblem(index, None, "ce n'est pas une entité (Feature)."))
            continue
        raw_properties = feature.get("properties")
        properties = dict(raw_properties) if isinstance(raw_properties, Mapping) else {}
        raw_name = _lookup(properties, NAME_KEYS)
        name = str(raw_name).strip() if raw_name is not None else None
        raw_code = _lookup(properties, CODE_KEYS)
        if raw_code is None:
            raw_code = feature.get("id")
        code = str(raw_code).strip() if raw_code is not None else None
        if not name:
            problems.append(
                ZoneProblem(
                    index, None, "l'entité n'a pas de nom (propriété nom, name ou libelle)."
                )
            )
            continue
        try:
            area = area_from_geojson(feature, within_france=within_france)
        except GeoError as exc:
            problems.append(ZoneProblem(index, name, str(exc)))
            continue
        if code is not None:
            if code in seen_codes:
                problems.append(
                    ZoneProblem(
                        index,
                        name,
                        f"le code {code} est déjà celui de l'entité {seen_codes[code]}.",
                    )
                )
                continue
            seen_codes[code] = index
        zones.append(NamedZone(name=name, code=code, area=area, properties=properties))
    return ZoneImport(zones=tuple(zones), problems=tuple(problems))
