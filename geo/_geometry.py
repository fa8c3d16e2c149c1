"""Read GeoJSON Polygon and MultiPolygon coordinates into valid shapely geometries.

Everything a person can get wrong while drawing or exporting a zone is refused
here with a French message saying where and what to do: malformed positions,
open rings, swapped lon/lat, self-intersections, holes outside their shell, a
zone too large. Two choices, made for crisis alerts where a wrong zone is worse
than no zone:

- a self-intersecting ring (a "bow tie") is REFUSED, not repaired: make_valid
  would turn it into two triangles the author may not have meant;
- overlapping parts of a MultiPolygon are MERGED (their union): the meaning of
  "these zones together" is unambiguous, and exports of adjacent communes often
  share edges, which OGC validity forbids.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon

from geo._projection import spherical_area_km2
from geo.errors import GeoError
from geo.points import FRANCE_REGIONS

#: Largest area accepted (km²): a département is 5,000–10,000 km²; a region-wide
#: alert is a list of départements, not one shape.
MAX_AREA_KM2: Final = 50_000.0
#: Most vertices accepted in one area: an IGN commune outline has a few thousand.
MAX_VERTICES: Final = 100_000

Position = tuple[float, float]


def _fmt(lon: float, lat: float) -> str:
    return f"longitude {lon:.6f}, latitude {lat:.6f}"


def _thousands(value: float) -> str:
    """French digit grouping: 50 000 (narrow no-break space)."""
    return f"{value:,.0f}".replace(",", "\u202f")


def _read_position(raw: Any, where: str) -> Position:
    """One GeoJSON position [lon, lat] or [lon, lat, alt] (the altitude is ignored)."""
    if not isinstance(raw, list | tuple) or len(raw) < 2:
        raise GeoError(f"{where} : une position doit être une liste [longitude, latitude].")
    lon, lat = raw[0], raw[1]
    for value in (lon, lat):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise GeoError(f"{where} : la longitude et la latitude doivent être des nombres.")
        if not math.isfinite(value):
            raise GeoError(f"{where} : la longitude et la latitude doivent être des nombres finis.")
    if not -180.0 <= lon <= 180.0 or not -90.0 <= lat <= 90.0:
        raise GeoError(
            f"{where} : position [{lon}, {lat}] hors limites. En GeoJSON la longitude vient "
            "d'abord (entre -180 et 180), puis la latitude (entre -90 et 90)."
        )
    return float(lon), float(lat)


def _read_ring(raw: Any, where: str) -> list[Position]:
    """A closed linear ring of at least 4 positions (RFC 7946 §3.1.6)."""
    if not isinstance(raw, list | tuple):
        raise GeoError(f"{where} : un contour doit être une liste de positions.")
    ring = [_read_position(p, f"{where}, point {i + 1}") for i, p in enumerate(raw)]
    if len(ring) < 4 or ring[0] != ring[-1]:
        raise GeoError(
            f"{where} : le polygone doit être fermé et compter au moins 4 points "
            "(le dernier point répète le premier)."
        )
    return ring


def _read_polygon(raw: Any, where: str) -> Polygon:
    """Polygon coordinates: the exterior ring, then any holes."""
    if not isinstance(raw, list | tuple) or not raw:
        raise GeoError(f"{where} : un polygone doit être une liste non vide de contours.")
    shell = _read_ring(raw[0], f"{where}, contour extérieur")
    holes = [_read_ring(r, f"{where}, trou {i}") for i, r in enumerate(raw[1:], start=1)]
    polygon = Polygon(shell, holes)
    # Aligned points have no hull; a bow tie has a hull but a signed area of zero,
    # and deserves the "self-intersection" message rather than "degenerate".
    if shapely.area(shapely.convex_hull(polygon.exterior)) == 0.0:
        raise GeoError(f"{where} : le polygone est dégénéré (surface nulle, points alignés).")
    _check_valid(polygon, where)
    return polygon


_REASON = re.compile(r"^(?P<what>[^\[]*)(\[(?P<x>\S+) (?P<y>\S+)\])?")


def _check_valid(polygon: Polygon, where: str) -> None:
    """Refuse an invalid polygon with a message naming the problem and its place."""
    if polygon.is_valid:
        return
    match = _REASON.match(shapely.is_valid_reason(polygon))
    what = match.group("what").strip() if match else ""
    near = ""
    if match and match.group("x"):
        near = f" (vers {_fmt(float(match.group('x')), float(match.group('y')))})"
    if "Self-intersection" in what:
        message = (
            f"le contour du polygone se recoupe lui-même{near}. Redessinez la zone sans croisement."
        )
    elif what == "Hole lies outside shell":
        message = f"un trou du polygone sort de son contour extérieur{near}."
    elif what == "Holes are nested":
        message = f"des trous du polygone sont imbriqués l'un dans l'autre{near}."
    elif what == "Interior is disconnected":
        message = (
            f"les trous coupent le polygone en plusieurs morceaux{near}. "
            "Décrivez chaque morceau comme une partie d'un MultiPolygon."
        )
    elif what.startswith("Too few points"):
        message = "le polygone doit compter au moins trois sommets distincts."
    else:
        message = f"le polygone est invalide ({what or 'raison inconnue'}){near}."
    raise GeoError(f"{where} : {message}")


def _check_in_france(geometry: Polygon | MultiPolygon) -> None:
    """Every exterior vertex must fall in one of the generous boxes around France."""
    shells = [p.exterior for p in getattr(geometry, "geoms", [geometry])]
    coords = np.concatenate([np.asarray(s.coords) for s in shells])
    inside = np.zeros(len(coords), dtype=bool)
    for box in FRANCE_REGIONS.values():
        inside |= (
            (coords[:, 0] >= box.min_lon)
            & (coords[:, 0] <= box.max_lon)
            & (coords[:, 1] >= box.min_lat)
            & (coords[:, 1] <= box.max_lat)
        )
    if not inside.all():
        lon, lat = coords[int(np.argmin(inside))]
        raise GeoError(
            f"La zone sort de France ({_fmt(lon, lat)}). Vérifiez l'ordre des coordonnées : "
            "en GeoJSON la longitude vient d'abord, puis la latitude."
        )


def check_shape(geometry: object) -> None:
    """Raise GeoError unless ``geometry`` is a valid, non-empty Polygon or MultiPolygon."""
    if not isinstance(geometry, Polygon | MultiPolygon) or geometry.is_empty:
        raise GeoError("La zone doit être un polygone ou un multipolygone non vide.")
    for i, part in enumerate(getattr(geometry, "geoms", [geometry]), start=1):
        _check_valid(part, f"Polygone {i}")
    if not geometry.is_valid:
        raise GeoError("Les parties du multipolygone se chevauchent : fusionnez-les.")


def check_area_size(geometry: Polygon | MultiPolygon) -> float:
    """Return the area in km², refusing zones larger than MAX_AREA_KM2."""
    km2 = spherical_area_km2(geometry)
    if km2 > MAX_AREA_KM2:
        raise GeoError(
            f"La zone est trop étendue ({_thousands(km2)} km²) : "
            f"{_thousands(MAX_AREA_KM2)} km² au maximum. Découpez-la en plusieurs zones."
        )
    return km2


def read_polygonal(
    geometry_type: str, coordinates: Any, *, within_france: bool
) -> Polygon | MultiPolygon:
    """Validate GeoJSON Polygon/MultiPolygon coordinates and return the shapely geometry."""
    if geometry_type == "Polygon":
        geometry: Polygon | MultiPolygon = _read_polygon(coordinates, "Polygone")
    elif geometry_type == "MultiPolygon":
        if not isinstance(coordinates, list | tuple) or not coordinates:
            raise GeoError("MultiPolygon : il faut une liste non vide de polygones.")
        parts = [_read_polygon(p, f"Polygone {i + 1}") for i, p in enumerate(coordinates)]
        geometry = merge_parts(parts)
    else:
        raise GeoError(
            f"Type de géométrie non pris en charge : {geometry_type!r}. "
            "Attendu : Polygon, MultiPolygon, ou un cercle (Point avec un rayon)."
        )
    vertices = shapely.get_num_coordinates(geometry)
    if vertices > MAX_VERTICES:
        raise GeoError(
            f"La zone compte trop de sommets ({vertices}) : {MAX_VERTICES} au maximum. "
            "Simplifiez le tracé."
        )
    if within_france:
        _check_in_france(geometry)
    return geometry


def merge_parts(parts: Sequence[Polygon]) -> Polygon | MultiPolygon:
    """The parts as one valid geometry: kept apart when disjoint, merged when they overlap."""
    multi = MultiPolygon(list(parts))
    if multi.is_valid:
        return multi
    union = shapely.unary_union(list(parts))
    if isinstance(union, Polygon | MultiPolygon) and union.is_valid:
        return union
    raise GeoError("Les parties du MultiPolygon ne forment pas une zone valide.")
