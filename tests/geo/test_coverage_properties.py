"""Property tests: the coverage never misses a point inside, and inner cells are truly in.

For random commune-sized polygons (with holes), multipolygons and circles across
metropolitan France and the DROM, and random points (plus vertices, points on the
edges and points just around them):

- ``contains`` agrees with an independent brute-force check (unprepared shapely
  ``covers`` for polygons, geopy's geodesic distance for circles);
- every point inside has its storage cell in ``inner`` or ``edge``;
- every point whose cell is in ``inner`` is inside.

Coverages are drawn at the default budget and at small budgets, which force
coarse edge cells and so exercise the spill of H3 children out of their parent.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable

import shapely
from geographiclib.geodesic import Geodesic
from geopy.distance import geodesic
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from geo import Area, CircleArea, Coverage, PolygonArea, area_from_geojson, cell_of_lat_lon, circle

#: Boxes well inside the France boxes, so that a commune-sized shape fits.
REGIONS = [
    (42.5, 50.5, -4.0, 7.5),  # metropolitan France
    (41.5, 42.8, 8.7, 9.3),  # Corsica
    (15.95, 16.45, -61.7, -61.1),  # Guadeloupe
    (14.45, 14.85, -61.15, -60.85),  # Martinique
    (3.0, 5.5, -54.0, -52.0),  # Guyane
    (-21.3, -20.95, 55.25, 55.75),  # La Réunion
    (-12.95, -12.65, 44.95, 45.25),  # Mayotte
]
M_PER_DEG = 111_195.0
#: Points closer than this to the boundary (degrees) are not compared with the brute
#: force: there, "inside" is decided by the 0.1 mm boundary tolerance, by design.
AMBIGUOUS_DEG = 1e-7

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
budgets = st.sampled_from([None, 12, 40])


@st.composite
def centres(draw: st.DrawFn) -> tuple[float, float]:
    south, north, west, east = draw(st.sampled_from(REGIONS))
    return draw(st.floats(south, north)), draw(st.floats(west, east))


def star(
    lat: float, lon: float, radius_m: float, angles: list[float], radii: list[float]
) -> list[tuple[float, float]]:
    """A closed (lon, lat) ring around (lat, lon): vertices at angle, radius_m × radius."""
    kx = M_PER_DEG * math.cos(math.radians(lat))
    ring = [
        (lon + radius_m * r * math.sin(a) / kx, lat + radius_m * r * math.cos(a) / M_PER_DEG)
        for a, r in zip(angles, radii, strict=True)
    ]
    return [*ring, ring[0]]


@st.composite
def star_rings(
    draw: st.DrawFn, lat: float, lon: float, radius_m: float
) -> list[tuple[float, float]]:
    n = draw(st.integers(3, 14))
    fractions = draw(st.lists(st.floats(0, 1), min_size=n, max_size=n, unique=True))
    radii = draw(st.lists(st.floats(0.3, 1.0), min_size=n, max_size=n))
    angles = [2 * math.pi * f for f in sorted(fractions)]
    return star(lat, lon, radius_m, angles, radii)


@st.composite
def commune_polygons(draw: st.DrawFn) -> Polygon:
    """A star-shaped polygon of about 0.05–40 km², maybe with a hole around its centre."""
    lat, lon = draw(centres())
    km2 = draw(st.floats(0.05, 40))
    radius_m = math.sqrt(km2 / math.pi) * 1000 * 1.5
    shell = draw(star_rings(lat, lon, radius_m))
    holes = []
    if draw(st.booleans()):
        holes.append(draw(star_rings(lat, lon, radius_m * 0.2)))
    polygon = Polygon(shell, holes)
    assume(polygon.is_valid and polygon.area > 0)
    assume(all(Polygon(shell).contains(Polygon(h)) for h in holes))
    return polygon


@st.composite
def commune_multipolygons(draw: st.DrawFn) -> MultiPolygon:
    """Two or three small star polygons side by side (a commune and its hamlets)."""
    lat, lon = draw(centres())
    radius_m = draw(st.floats(200, 2000))
    parts = []
    for i in range(draw(st.integers(2, 3))):
        dlat = 3 * radius_m * i / M_PER_DEG
        parts.append(Polygon(draw(star_rings(lat + dlat, lon, radius_m))))
    multi = MultiPolygon(parts)
    assume(multi.is_valid)
    return multi


def to_geojson(geometry: BaseGeometry) -> dict[str, object]:
    return shapely.geometry.mapping(geometry)


def boundary_points(
    geometry: BaseGeometry, fractions: Iterable[float]
) -> list[tuple[float, float]]:
    """Vertices of every ring, and points at the given fractions along each ring."""
    points: list[tuple[float, float]] = []
    rings = [
        ring
        for polygon in getattr(geometry, "geoms", [geometry])
        for ring in [polygon.exterior, *polygon.interiors]
    ]
    for ring in rings:
        points.extend((lat, lon) for lon, lat in ring.coords)
        for f in fractions:
            p = ring.interpolate(f, normalized=True)
            points.append((p.y, p.x))
    return points


def check_coverage(area: Area, coverage: Coverage, lat: float, lon: float, inside: bool) -> None:
    kind = coverage.classify(cell_of_lat_lon(lat, lon))
    if inside:
        assert kind is not None, f"missed ({lat}, {lon}) at edge res {coverage.edge_resolution}"
    if kind == "inner":
        assert inside, f"inner cell holds an outside point ({lat}, {lon})"


def check_polygonal(
    geometry: BaseGeometry,
    budget: int | None,
    samples: list[tuple[float, float]],
    edge: list[float],
) -> None:
    area = area_from_geojson(to_geojson(geometry))
    assert isinstance(area, PolygonArea)
    coverage = area.cover() if budget is None else area.cover(budget)
    reference = shapely.from_wkb(shapely.to_wkb(geometry))  # a fresh, unprepared copy
    min_lon, min_lat, max_lon, max_lat = reference.bounds
    dlat, dlon = (max_lat - min_lat), (max_lon - min_lon)
    for u, v in samples:
        lat, lon = min_lat + v * dlat, min_lon + u * dlon
        inside = area.contains(lat, lon)
        if reference.boundary.distance(Point(lon, lat)) > AMBIGUOUS_DEG:
            assert inside == reference.covers(Point(lon, lat)), (lat, lon)
        check_coverage(area, coverage, lat, lon, inside)
    for lat, lon in boundary_points(reference, edge):
        assert area.contains(lat, lon), f"boundary point ({lat}, {lon}) not inside"
        check_coverage(area, coverage, lat, lon, True)
        # Around the boundary, at the scale of a storage cell.
        for dy, dx in ((1, 0), (0, 1), (-1, 0), (0, -1)):
            near_lat, near_lon = lat + dy * 3e-4, lon + dx * 4e-4
            check_coverage(area, coverage, near_lat, near_lon, area.contains(near_lat, near_lon))


samples = st.lists(st.tuples(st.floats(-0.2, 1.2), st.floats(-0.2, 1.2)), min_size=10, max_size=40)
edge_fractions = st.lists(st.floats(0, 1), min_size=1, max_size=6)


@SETTINGS
@given(commune_polygons(), budgets, samples, edge_fractions)
def test_polygon_coverage_never_misses_and_inner_is_inside(
    polygon: Polygon, budget: int | None, points: list[tuple[float, float]], edge: list[float]
) -> None:
    check_polygonal(polygon, budget, points, edge)


@settings(SETTINGS, max_examples=30)
@given(commune_multipolygons(), budgets, samples, edge_fractions)
def test_multipolygon_coverage_never_misses_and_inner_is_inside(
    multi: MultiPolygon, budget: int | None, points: list[tuple[float, float]], edge: list[float]
) -> None:
    check_polygonal(multi, budget, points, edge)


@settings(SETTINGS, max_examples=50)
@given(
    centres(),
    st.floats(10, 5000),
    budgets,
    st.lists(st.tuples(st.floats(0, 1.3), st.floats(0, 2 * math.pi)), min_size=10, max_size=40),
    st.lists(st.floats(0, 360), min_size=1, max_size=8),
)
def test_circle_coverage_never_misses_and_inner_is_inside(
    centre: tuple[float, float],
    radius: float,
    budget: int | None,
    polar: list[tuple[float, float]],
    azimuths: list[float],
) -> None:
    lat0, lon0 = centre
    zone = circle(lat0, lon0, radius)
    coverage = zone.cover() if budget is None else zone.cover(budget)
    for share, bearing in polar:
        at = Geodesic.WGS84.Direct(lat0, lon0, math.degrees(bearing), radius * math.sqrt(share))
        lat, lon = at["lat2"], at["lon2"]
        inside = zone.contains(lat, lon)
        distance = geodesic((lat0, lon0), (lat, lon)).m
        if abs(distance - radius) > 1e-3:
            assert inside == (distance <= radius), (lat, lon, distance)
        check_coverage(zone, coverage, lat, lon, inside)
    for azimuth in azimuths:  # on the circle itself: inside
        at = Geodesic.WGS84.Direct(lat0, lon0, azimuth, radius)
        assert zone.contains(at["lat2"], at["lon2"])
        check_coverage(zone, coverage, at["lat2"], at["lon2"], True)


def commune_outline(lat: float, lon: float, km2: float, seed: int) -> Polygon:
    """A smooth, irregular outline with 1,500 vertices, like an IGN commune boundary."""
    rng = random.Random(seed)
    radius_m = math.sqrt(km2 / math.pi) * 1000
    terms = [(k, rng.uniform(0, 0.35) / k**1.2, rng.uniform(0, 2 * math.pi)) for k in range(2, 40)]
    angles = [2 * math.pi * i / 1500 for i in range(1500)]
    radii = [max(0.2, 1 + sum(a * math.sin(k * t + p) for k, a, p in terms)) for t in angles]
    return Polygon(star(lat, lon, radius_m, angles, radii))


def test_dense_sample_around_a_real_sized_commune_is_never_missed() -> None:
    """20,000 points over a 25 km² outline with a hole, at three edge resolutions."""
    outline = commune_outline(47.85, 2.06, 25, seed=4)
    hole = commune_outline(47.85, 2.06, 0.5, seed=5)
    area = PolygonArea(Polygon(outline.exterior.coords, [hole.exterior.coords]))
    rng = random.Random(6)
    min_lon, min_lat, max_lon, max_lat = outline.bounds
    lats = [rng.uniform(min_lat - 0.01, max_lat + 0.01) for _ in range(20_000)]
    lons = [rng.uniform(min_lon - 0.01, max_lon + 0.01) for _ in range(20_000)]
    inside = area.contains_many(lats, lons)
    assert 0.3 < sum(inside) / len(inside) < 0.9
    for coverage in (area.cover(), area.cover(40), area.cover(8)):
        for lat, lon, is_in in zip(lats, lons, inside, strict=True):
            check_coverage(area, coverage, lat, lon, is_in)


def test_circle_made_from_a_feature_covers_like_the_constructor() -> None:
    zone = circle(-20.95, 55.5, 800)
    again = area_from_geojson(zone.to_feature())
    assert isinstance(again, CircleArea)
    assert again.cover() == zone.cover()
