"""Points, distances and bounding boxes on the WGS84 lat/lon grid.

Distances use the haversine formula on the mean Earth sphere: it is within
0.5 % of the ellipsoidal distance, plenty for "how far is this report", and a
hundred times faster than a geodesic solver. Where a distance decides who is
inside a circle, ``geo.areas`` settles the doubtful band on the ellipsoid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from geo.errors import GeoError

#: Mean Earth radius (IUGG R1), metres.
EARTH_RADIUS_M: Final = 6_371_008.8


def _check_lat_lon(lat: float, lon: float) -> None:
    """Raise GeoError unless lat/lon are finite numbers in the WGS84 ranges."""
    # bool is an int: True would silently become latitude 1.
    for value in (lat, lon):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise GeoError("Les coordonnées doivent être des nombres (latitude, longitude).")
        if not math.isfinite(value):
            raise GeoError("Les coordonnées doivent être des nombres finis.")
    if not -90.0 <= lat <= 90.0:
        raise GeoError(f"La latitude {lat} doit être comprise entre -90 et 90.")
    if not -180.0 <= lon <= 180.0:
        raise GeoError(f"La longitude {lon} doit être comprise entre -180 et 180.")


@dataclass(frozen=True, slots=True)
class GeoPoint:
    """A WGS84 position. Built lat first, as people say it; GeoJSON output is lon, lat."""

    lat: float
    lon: float

    def __post_init__(self) -> None:
        _check_lat_lon(self.lat, self.lon)
        # Normalise ints (and numpy floats) so equality and hashing behave.
        object.__setattr__(self, "lat", float(self.lat))
        object.__setattr__(self, "lon", float(self.lon))

    def distance_m(self, other: GeoPoint) -> float:
        """Great-circle distance to ``other`` in metres (haversine)."""
        return haversine_m(self.lat, self.lon, other.lat, other.lon)

    def to_geojson(self) -> dict[str, object]:
        """The RFC 7946 Point geometry (coordinates in lon, lat order)."""
        return {"type": "Point", "coordinates": [self.lon, self.lat]}


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two lat/lon positions (degrees)."""
    phi1 = math.radians(lat1)
    phi2 = math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    # min() guards asin against 1.0000000000000002 from rounding at antipodes.
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True, slots=True)
class BoundingBox:
    """A lat/lon rectangle, edges included. Never crosses the antimeridian (France does not)."""

    min_lat: float
    min_lon: float
    max_lat: float
    max_lon: float

    def __post_init__(self) -> None:
        _check_lat_lon(self.min_lat, self.min_lon)
        _check_lat_lon(self.max_lat, self.max_lon)
        if self.min_lat > self.max_lat or self.min_lon > self.max_lon:
            raise GeoError(
                "Le rectangle est inversé : le coin sud-ouest doit précéder le nord-est."
            )

    def contains(self, lat: float, lon: float) -> bool:
        """True when the position lies in the box or on its edge."""
        return self.min_lat <= lat <= self.max_lat and self.min_lon <= lon <= self.max_lon

    def contains_point(self, point: GeoPoint) -> bool:
        """True when ``point`` lies in the box or on its edge."""
        return self.contains(point.lat, point.lon)

    def to_geojson_bbox(self) -> list[float]:
        """The RFC 7946 ``bbox`` member: [west, south, east, north]."""
        return [self.min_lon, self.min_lat, self.max_lon, self.max_lat]


#: Generous boxes around the territories the app serves. Generous on purpose: they
#: exist to catch swapped coordinates and points on the wrong continent, not to
#: draw borders (a commune's zone may spill over a border or into the sea).
FRANCE_REGIONS: Final[dict[str, BoundingBox]] = {
    # North edge 51.2: Bray-Dunes is at 51.09, London at 51.51.
    "France métropolitaine et Corse": BoundingBox(41.0, -5.8, 51.2, 10.0),
    "Guadeloupe": BoundingBox(15.6, -62.0, 16.8, -60.8),
    "Martinique": BoundingBox(14.2, -61.4, 15.0, -60.6),
    "Guyane": BoundingBox(1.9, -54.9, 6.1, -51.3),
    "La Réunion": BoundingBox(-21.6, 55.0, -20.6, 56.0),
    "Mayotte": BoundingBox(-13.2, 44.8, -12.4, 45.5),
}


def france_region(point: GeoPoint) -> str | None:
    """Name of the territory whose box holds ``point``, or None outside France."""
    for name, box in FRANCE_REGIONS.items():
        if box.contains_point(point):
            return name
    return None


def in_metropolitan_or_overseas_france(point: GeoPoint) -> bool:
    """True when ``point`` lies in metropolitan France, Corsica or one of the five DROM."""
    return france_region(point) is not None


def require_in_france(point: GeoPoint) -> GeoPoint:
    """Return ``point`` or raise GeoError when it lies outside France."""
    if not in_metropolitan_or_overseas_france(point):
        raise GeoError(
            f"Le point (latitude {point.lat}, longitude {point.lon}) est en dehors de la France. "
            "Vérifiez les coordonnées (en GeoJSON : longitude d'abord, puis latitude)."
        )
    return point
