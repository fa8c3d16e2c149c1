"""Target areas: polygons, multipolygons and circles.

An area answers two questions. ``cover()`` says which stored cells may hold a
point inside it, as integer ranges for a ``BETWEEN`` query (cheap, a superset);
``contains(lat, lon)`` settles each candidate exactly, boundary included (a resident
on the line is inside: ST_Covers, not ST_Within). Together they never miss anyone.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import shapely
from geographiclib.geodesic import Geodesic
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from geo._covering import (
    EDGE_CELL_BUDGET,
    MAX_REACH_M,
    choose_final_resolution,
    circle_vertex_count,
    cover,
)
from geo._geometry import check_area_size, check_shape, read_polygonal
from geo._projection import AUTHALIC_RADIUS_M, LocalProjection
from geo.cells import Coverage
from geo.errors import GeoError
from geo.points import (
    EARTH_RADIUS_M,
    BoundingBox,
    GeoPoint,
    haversine_m,
    require_in_france,
)

#: Points this close to the boundary (degrees, ≈ 0.1 mm) count as on it: a point
#: computed on an edge is off it by float rounding, and must still be inside.
BOUNDARY_TOLERANCE_DEG: Final = 1e-9
#: Circle radius bounds (metres): a street corner to a large département.
MIN_RADIUS_M: Final = 10.0
MAX_RADIUS_M: Final = 100_000.0
#: haversine (sphere) differs from the WGS84 geodesic by under 0.56 %; outside this
#: relative band around the radius the cheap answer is already the exact one.
_SPHERE_ERROR: Final = 0.007
_WGS84: Final = Geodesic.WGS84

#: Latitudes or longitudes in bulk: a list, or a numpy array straight from a query.
Coordinates = Sequence[float] | npt.NDArray[np.float64]


class Area(ABC):
    """A target area: exact membership, a cell coverage, and GeoJSON out."""

    _coverage: Coverage | None = None

    @abstractmethod
    def contains(self, lat: float, lon: float) -> bool:
        """True when the position is inside the area or on its boundary."""

    def contains_point(self, point: GeoPoint) -> bool:
        """True when ``point`` is inside the area or on its boundary."""
        return self.contains(point.lat, point.lon)

    def contains_many(self, lats: Coordinates, lons: Coordinates) -> list[bool]:
        """``contains`` for many positions (vectorised where the shape allows)."""
        return [self.contains(lat, lon) for lat, lon in zip(lats, lons, strict=True)]

    def cover(self, edge_cells: int = EDGE_CELL_BUDGET) -> Coverage:
        """The storage-cell ranges holding every point of the area.

        ``edge_cells`` is the rough number of boundary cells aimed at; it picks the
        resolution of the edge cells from the perimeter. Fewer gives fewer, wider
        ranges and more candidates to check exactly. The default coverage is
        computed once and kept.
        """
        if edge_cells == EDGE_CELL_BUDGET and self._coverage is not None:
            return self._coverage
        coverage = self.cover_at(choose_final_resolution(self.perimeter_m(), edge_cells))
        if edge_cells == EDGE_CELL_BUDGET:
            self._coverage = coverage
        return coverage

    @abstractmethod
    def cover_at(self, resolution: int) -> Coverage:
        """The coverage with edge cells at exactly ``resolution`` (≤ STORAGE_RESOLUTION)."""

    @abstractmethod
    def perimeter_m(self) -> float:
        """Length of the boundary in metres (holes included)."""

    def contains_stored(self, lat: float, lon: float, cell: int) -> bool:
        """Exact membership of a stored row (lat, lon, cell) picked by ``cover().ranges``.

        Rows in inner cells are in without touching the geometry; only edge rows
        pay for the exact test.
        """
        kind = self.cover().classify(cell)
        if kind == "inner":
            return True
        return kind == "edge" and self.contains(lat, lon)

    @abstractmethod
    def bbox(self) -> BoundingBox:
        """The smallest lat/lon box holding the area."""

    @property
    @abstractmethod
    def area_km2(self) -> float:
        """Surface in km² (on the authalic sphere: within 0.5 % of the ellipsoid)."""

    @abstractmethod
    def to_geojson(self) -> dict[str, Any]:
        """An RFC 7946 geometry (lon, lat order, exterior rings counterclockwise)."""

    def to_feature(
        self, properties: Mapping[str, Any] | None = None, feature_id: str | int | None = None
    ) -> dict[str, Any]:
        """An RFC 7946 Feature holding the area's geometry."""
        feature: dict[str, Any] = {
            "type": "Feature",
            "geometry": self.to_geojson(),
            "properties": dict(properties or {}),
        }
        if feature_id is not None:
            feature["id"] = feature_id
        return feature


class PolygonArea(Area):
    """A Polygon or MultiPolygon (holes allowed) in lon/lat degrees."""

    def __init__(self, geometry: Polygon | MultiPolygon) -> None:
        """Wrap a valid lon/lat geometry (GeoError otherwise).

        ``area_from_geojson`` is the way in for GeoJSON: it also checks the
        coordinates, and that the area lies in France.
        """
        check_shape(geometry)
        self.geometry = geometry
        self._area_km2 = check_area_size(geometry)
        # Preparing builds GEOS's spatial index once; every contains() then costs ~µs.
        shapely.prepare(self.geometry)
        self._prepared_boundary: BaseGeometry | None = None

    def __repr__(self) -> str:
        return f"PolygonArea({self.geometry.geom_type}, {self._area_km2:.3f} km²)"

    def contains(self, lat: float, lon: float) -> bool:
        """Inside or on the boundary (a point ≈ 0.1 mm off the boundary counts as on it)."""
        if shapely.intersects_xy(self.geometry, lon, lat):
            return True
        return bool(shapely.dwithin(self.geometry, Point(lon, lat), BOUNDARY_TOLERANCE_DEG))

    def contains_many(self, lats: Coordinates, lons: Coordinates) -> list[bool]:
        """Vectorised ``contains``: one GEOS call for the whole batch."""
        x = np.asarray(lons, dtype=float)
        y = np.asarray(lats, dtype=float)
        if x.shape != y.shape:
            raise ValueError("lats and lons differ in length")
        inside = np.asarray(shapely.intersects_xy(self.geometry, x, y), dtype=bool)
        if not inside.all():
            doubtful = ~inside
            # Outside the polygon, its distance is its boundary's: a prepared boundary answers
            # from an index of segments, several times faster than the polygon.
            near = shapely.dwithin(
                self._boundary(), shapely.points(x[doubtful], y[doubtful]), BOUNDARY_TOLERANCE_DEG
            )
            inside[doubtful] = near
        return inside.tolist()

    def _boundary(self) -> BaseGeometry:
        if self._prepared_boundary is None:
            self._prepared_boundary = self.geometry.boundary
            shapely.prepare(self._prepared_boundary)
        return self._prepared_boundary

    def perimeter_m(self) -> float:
        """Length of the boundary in metres (holes included)."""
        return LocalProjection(self.geometry).length_m(self.geometry)

    def cover_at(self, resolution: int) -> Coverage:
        """The coverage with edge cells at exactly ``resolution``."""
        # Coarse cells' centres lie up to MAX_REACH_M outside the area: the
        # projection's worst scale must hold out there too.
        projection = LocalProjection(self.geometry, margin_m=MAX_REACH_M)
        shape = projection.to_metres(self.geometry)
        boundary = shape.boundary
        shapely.prepare(shape)
        shapely.prepare(boundary)  # a spatial index over the edges: ~1 µs per test
        # Projected distances overstate true ones by at most 1 / min_scale.
        stretch = 1.0 / projection.min_scale

        def classify(
            lats: npt.NDArray[np.float64], lons: npt.NDArray[np.float64], reach: float
        ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
            x, y = projection.project_xy(lons, lats)
            inside = shapely.intersects_xy(shape, x, y)
            # Outside the shape, distance to the shape is distance to its boundary:
            # one prepared distance test serves both answers.
            close = shapely.dwithin(boundary, shapely.points(x, y), reach * stretch)
            return inside | close, inside & ~close

        return cover(self.bbox(), classify, resolution)

    def bbox(self) -> BoundingBox:
        """The smallest lat/lon box holding the area."""
        min_lon, min_lat, max_lon, max_lat = self.geometry.bounds
        return BoundingBox(min_lat, min_lon, max_lat, max_lon)

    @property
    def area_km2(self) -> float:
        """Surface in km², holes removed."""
        return self._area_km2

    def to_geojson(self) -> dict[str, Any]:
        """RFC 7946 Polygon or MultiPolygon, exterior rings counterclockwise."""
        if isinstance(self.geometry, Polygon):
            oriented: Polygon | MultiPolygon = orient(self.geometry, sign=1.0)
        else:
            oriented = MultiPolygon([orient(p, sign=1.0) for p in self.geometry.geoms])
        geojson: dict[str, Any] = json.loads(shapely.to_geojson(oriented))
        return geojson


class CircleArea(Area):
    """Everything within ``radius_m`` metres (on the WGS84 ellipsoid) of ``center``."""

    def __init__(self, center: GeoPoint, radius_m: float) -> None:
        """Build a circle; use ``circle()`` for the checked constructor."""
        self.center = center
        self.radius_m = float(radius_m)

    def __repr__(self) -> str:
        return f"CircleArea({self.center.lat}, {self.center.lon}, {self.radius_m} m)"

    def distance_m(self, lat: float, lon: float) -> float:
        """Geodesic distance from the centre in metres (WGS84, Karney's algorithm)."""
        result = _WGS84.Inverse(self.center.lat, self.center.lon, lat, lon, Geodesic.DISTANCE)
        return float(result["s12"])

    def contains(self, lat: float, lon: float) -> bool:
        """Geodesic distance ≤ radius (+1 mm for rounding), decided by haversine when clear."""
        rough = haversine_m(self.center.lat, self.center.lon, lat, lon)
        if rough <= self.radius_m * (1 - _SPHERE_ERROR):
            return True
        if rough > self.radius_m * (1 + _SPHERE_ERROR) + 1.0:
            return False
        return self.distance_m(lat, lon) <= self.radius_m + 1e-3

    def contains_many(self, lats: Coordinates, lons: Coordinates) -> list[bool]:
        """Vectorised ``contains``: haversine for all, the ellipsoid for the doubtful few."""
        lat = np.asarray(lats, dtype=float)
        lon = np.asarray(lons, dtype=float)
        if lat.shape != lon.shape:
            raise ValueError("lats and lons differ in length")
        rough = _haversine_array(self.center.lat, self.center.lon, lat, lon)
        inside = rough <= self.radius_m * (1 - _SPHERE_ERROR)
        doubtful = ~inside & (rough <= self.radius_m * (1 + _SPHERE_ERROR) + 1.0)
        for i in np.flatnonzero(doubtful):
            inside[i] = self.distance_m(float(lat[i]), float(lon[i])) <= self.radius_m + 1e-3
        return [bool(v) for v in inside]

    def polygon(self, vertices: int | None = None) -> Polygon:
        """Polygon with its vertices on the circle (for drawing: chords cut inside)."""
        n = vertices or circle_vertex_count(self.radius_m)
        # Start due north and turn counterclockwise (west first): RFC 7946 winding.
        bearings = -2 * np.pi * np.arange(n) / n
        lat, lon = _destination(self.center.lat, self.center.lon, bearings, self.radius_m)
        ring = np.column_stack([lon, lat])
        return Polygon(np.vstack([ring, ring[:1]]))

    def perimeter_m(self) -> float:
        """Circumference in metres."""
        return 2 * math.pi * self.radius_m

    def cover_at(self, resolution: int) -> Coverage:
        """The coverage with edge cells at exactly ``resolution``."""
        lat0, lon0, radius = self.center.lat, self.center.lon, self.radius_m
        # Geodesic distance within radius + 1 mm means haversine within this bound.
        outer = (radius + 1e-3) * (1 + _SPHERE_ERROR)
        inner = radius * (1 - _SPHERE_ERROR)

        def classify(
            lats: npt.NDArray[np.float64], lons: npt.NDArray[np.float64], reach: float
        ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
            distance = _haversine_array(lat0, lon0, lats, lons)
            return distance <= outer + reach, distance + reach < inner

        return cover(self.bbox(), classify, resolution)

    def bbox(self) -> BoundingBox:
        """A box around the circle, generous by the sphere/ellipsoid error (< 1 %)."""
        reach = (self.radius_m + 1e-3) * (1 + _SPHERE_ERROR)
        dlat = math.degrees(reach / EARTH_RADIUS_M)
        far_lat = min(89.0, abs(self.center.lat) + dlat)
        dlon = min(180.0, dlat / math.cos(math.radians(far_lat)))
        return BoundingBox(
            max(-90.0, self.center.lat - dlat),
            max(-180.0, self.center.lon - dlon),
            min(90.0, self.center.lat + dlat),
            min(180.0, self.center.lon + dlon),
        )

    @property
    def area_km2(self) -> float:
        """Surface of the spherical cap, km²."""
        angle = self.radius_m / AUTHALIC_RADIUS_M
        return 2 * math.pi * AUTHALIC_RADIUS_M**2 * (1 - math.cos(angle)) / 1e6

    def to_geojson(self) -> dict[str, Any]:
        """A Polygon approximating the circle (GeoJSON has no circles).

        ``to_feature`` keeps the exact circle as a Point with a ``radius`` property.
        """
        return {
            "type": "Polygon",
            "coordinates": [[list(p) for p in self.polygon().exterior.coords]],
        }

    def to_feature(
        self, properties: Mapping[str, Any] | None = None, feature_id: str | int | None = None
    ) -> dict[str, Any]:
        """A Point Feature with ``radius`` in metres (the Leaflet.draw convention),
        which ``area_from_geojson`` reads back as this exact circle."""
        feature = super().to_feature(properties, feature_id)
        feature["geometry"] = self.center.to_geojson()
        feature["properties"]["radius"] = self.radius_m
        return feature


def _haversine_array(
    lat0: float, lon0: float, lats: npt.NDArray[np.float64], lons: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Vectorised ``haversine_m`` from one position to many, metres."""
    phi0 = math.radians(lat0)
    phi = np.radians(lats)
    h = (
        np.sin((phi - phi0) / 2) ** 2
        + math.cos(phi0) * np.cos(phi) * np.sin(np.radians(lons - lon0) / 2) ** 2
    )
    distance: npt.NDArray[np.float64] = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return distance


def _destination(
    lat: float, lon: float, bearings: npt.NDArray[np.float64], distance_m: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Points ``distance_m`` from (lat, lon) along ``bearings`` (radians), on the sphere."""
    phi1 = math.radians(lat)
    delta = distance_m / EARTH_RADIUS_M
    phi2 = np.arcsin(
        math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * np.cos(bearings)
    )
    lmb2 = math.radians(lon) + np.arctan2(
        np.sin(bearings) * math.sin(delta) * math.cos(phi1),
        math.cos(delta) - math.sin(phi1) * np.sin(phi2),
    )
    return np.degrees(phi2), np.degrees(lmb2)


def circle(lat: float, lon: float, radius_m: float, *, within_france: bool = True) -> CircleArea:
    """A checked circle: valid centre (in France unless told otherwise) and radius bounds."""
    center = GeoPoint(lat, lon)
    if within_france:
        require_in_france(center)
    if isinstance(radius_m, bool) or not isinstance(radius_m, int | float):
        raise GeoError("Le rayon doit être un nombre de mètres.")
    if not math.isfinite(radius_m) or not MIN_RADIUS_M <= radius_m <= MAX_RADIUS_M:
        raise GeoError(
            f"Le rayon doit être compris entre {MIN_RADIUS_M:.0f} m et "
            f"{MAX_RADIUS_M / 1000:.0f} km (reçu : {radius_m} m)."
        )
    return CircleArea(center, float(radius_m))


def _radius_of(properties: Any) -> Any:
    if isinstance(properties, Mapping):
        for key in ("radius", "radius_m", "rayon"):
            if key in properties:
                return properties[key]
    return None


def area_from_geojson(data: Mapping[str, Any] | str | bytes, *, within_france: bool = True) -> Area:
    """Parse a GeoJSON geometry or Feature into a checked Area.

    Accepts Polygon and MultiPolygon geometries (RFC 7946, lon/lat, holes allowed,
    either winding), and circles written as a Point Feature with a ``radius`` (or
    ``radius_m``) property in metres. Raises GeoError with a French message.
    """
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise GeoError(f"Le GeoJSON n'est pas du JSON valide : {exc}.") from exc
    if not isinstance(data, Mapping):
        raise GeoError("Le GeoJSON doit être un objet avec un membre « type ».")
    kind = data.get("type")
    properties: Any = None
    geometry: Any = data
    if kind == "Feature":
        geometry = data.get("geometry")
        properties = data.get("properties")
        if not isinstance(geometry, Mapping):
            raise GeoError("L'entité (Feature) n'a pas de géométrie.")
    elif kind == "FeatureCollection":
        raise GeoError("Une FeatureCollection contient plusieurs zones : importez-les une à une.")
    geometry_type = geometry.get("type")
    coordinates = geometry.get("coordinates")
    if geometry_type == "Point":
        radius = _radius_of(properties)
        if radius is None:
            raise GeoError("Un point seul n'est pas une zone : donnez un rayon (« radius », en m).")
        if not isinstance(coordinates, list | tuple) or len(coordinates) < 2:
            raise GeoError("Le centre du cercle doit être une position [longitude, latitude].")
        return circle(coordinates[1], coordinates[0], radius, within_france=within_france)
    if not isinstance(geometry_type, str):
        raise GeoError("La géométrie doit avoir un « type » (Polygon ou MultiPolygon).")
    shape = read_polygonal(geometry_type, coordinates, within_france=within_france)
    return PolygonArea(shape)
