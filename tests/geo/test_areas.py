"""Areas: parsing and validation of GeoJSON, exact membership, GeoJSON out, coverage."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import h3.api.basic_int as h3
import pytest
from geographiclib.geodesic import Geodesic
from shapely.geometry import Polygon, shape

from geo import (
    STORAGE_RESOLUTION,
    CircleArea,
    GeoError,
    PolygonArea,
    area_from_geojson,
    cell_of_lat_lon,
    circle,
)

# A 0.02° × 0.015° block of Les Saules-sur-Loire (≈ 1.5 km × 1.7 km), with a pond.
LON0, LAT0 = 2.05, 47.845
SHELL = [[LON0, LAT0], [LON0 + 0.02, LAT0], [LON0 + 0.02, LAT0 + 0.015], [LON0, LAT0 + 0.015]]
POND = [[2.058, 47.85], [2.062, 47.85], [2.062, 47.853], [2.058, 47.853]]


def ring(points: list[list[float]], *, clockwise: bool = False) -> list[list[float]]:
    """Close a list of positions (optionally reversed)."""
    pts = list(reversed(points)) if clockwise else list(points)
    return [*pts, pts[0]]


def polygon(*rings: list[list[float]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [ring(r) for r in rings]}


def square(lon: float, lat: float, side: float) -> list[list[float]]:
    return [[lon, lat], [lon + side, lat], [lon + side, lat + side], [lon, lat + side]]


# Parsing and validation ---------------------------------------------------------------


def test_polygon_with_hole_is_read() -> None:
    area = area_from_geojson(polygon(SHELL, POND))
    assert isinstance(area, PolygonArea)
    assert area.contains(47.846, 2.051)
    assert not area.contains(47.8515, 2.060)  # in the pond
    assert 2.0 < area.area_km2 < 2.5


@pytest.mark.parametrize(
    "coordinates",
    [
        [[[2.05, 47.845], [2.07, 47.845], [2.07, 47.86], [2.05, 47.86]]],  # not closed
        [[[2.05, 47.845], [2.07, 47.845], [2.05, 47.845]]],  # 3 points
        [[]],
    ],
)
def test_open_or_short_ring_is_refused(coordinates: Any) -> None:
    with pytest.raises(GeoError, match="doit être fermé et compter au moins 4 points"):
        area_from_geojson({"type": "Polygon", "coordinates": coordinates})


def test_self_intersecting_polygon_is_refused_not_repaired() -> None:
    bow_tie = [[2.05, 47.845], [2.07, 47.86], [2.07, 47.845], [2.05, 47.86]]
    with pytest.raises(GeoError, match=r"se recoupe lui-même .*Redessinez la zone"):
        area_from_geojson(polygon(bow_tie))


def test_hole_outside_its_shell_is_refused() -> None:
    outside = square(2.10, 47.90, 0.001)
    with pytest.raises(GeoError, match="trou du polygone sort de son contour"):
        area_from_geojson(polygon(SHELL, outside))


def test_swapped_lat_lon_is_refused_with_a_hint() -> None:
    swapped = [[lat, lon] for lon, lat in SHELL]
    with pytest.raises(GeoError, match=r"sort de France.*longitude vient d'abord"):
        area_from_geojson(polygon(swapped))


def test_area_outside_france_is_accepted_when_told_so() -> None:
    berlin = square(13.40, 52.52, 0.01)
    area = area_from_geojson(polygon(berlin), within_france=False)
    assert area.contains(52.525, 13.405)


@pytest.mark.parametrize(
    ("position", "message"),
    [
        ([200.0, 47.0], "hors limites"),
        (["2.05", 47.0], "doivent être des nombres"),
        ([2.05], "une position doit être une liste"),
        ([float("nan"), 47.0], "nombres finis"),
    ],
)
def test_bad_positions_are_refused_with_their_place(position: Any, message: str) -> None:
    coords = ring(SHELL)
    coords[2] = position
    with pytest.raises(GeoError, match=message) as caught:
        area_from_geojson({"type": "Polygon", "coordinates": [coords]})
    assert "point 3" in str(caught.value)


def test_degenerate_polygon_is_refused() -> None:
    line = [[2.05, 47.845], [2.06, 47.845], [2.07, 47.845]]
    with pytest.raises(GeoError, match="dégénéré"):
        area_from_geojson(polygon(line))


def test_too_large_area_is_refused() -> None:
    # About 3° × 3° in the Massif central: ≈ 75,000 km².
    huge = square(1.5, 44.5, 3.0)
    with pytest.raises(GeoError, match=r"trop étendue .*50\u202f000 km² au maximum"):
        area_from_geojson(polygon(huge))


def test_unsupported_geometries_are_refused() -> None:
    with pytest.raises(GeoError, match="non pris en charge : 'LineString'"):
        area_from_geojson({"type": "LineString", "coordinates": SHELL})
    with pytest.raises(GeoError, match="FeatureCollection"):
        area_from_geojson({"type": "FeatureCollection", "features": []})
    with pytest.raises(GeoError, match="donnez un rayon"):
        area_from_geojson({"type": "Point", "coordinates": [2.05, 47.85]})
    with pytest.raises(GeoError, match="pas de géométrie"):
        area_from_geojson({"type": "Feature", "geometry": None, "properties": {}})
    with pytest.raises(GeoError, match="JSON valide"):
        area_from_geojson("{not json")


def test_feature_and_json_text_are_accepted() -> None:
    feature = {"type": "Feature", "geometry": polygon(SHELL), "properties": {"nom": "Centre"}}
    assert area_from_geojson(feature).contains(47.85, 2.06)
    assert area_from_geojson(json.dumps(feature)).contains(47.85, 2.06)


def test_clockwise_input_is_accepted_and_written_counterclockwise() -> None:
    area = area_from_geojson({"type": "Polygon", "coordinates": [ring(SHELL, clockwise=True)]})
    out = area.to_geojson()
    assert out["type"] == "Polygon"
    assert Polygon(out["coordinates"][0]).exterior.is_ccw
    assert shape(out).equals(Polygon(ring(SHELL)))


def test_multipolygon_parts_are_kept_and_overlaps_merged() -> None:
    a = square(2.05, 47.845, 0.01)
    b = square(2.10, 47.845, 0.01)
    apart = area_from_geojson({"type": "MultiPolygon", "coordinates": [[ring(a)], [ring(b)]]})
    assert apart.contains(47.85, 2.055) and apart.contains(47.85, 2.105)
    assert not apart.contains(47.85, 2.08)
    assert apart.to_geojson()["type"] == "MultiPolygon"
    overlapping = square(2.055, 47.845, 0.01)
    merged = area_from_geojson(
        {"type": "MultiPolygon", "coordinates": [[ring(a)], [ring(overlapping)]]}
    )
    assert merged.area_km2 == pytest.approx(apart.area_km2 * 0.75, rel=1e-6)


def test_multipolygon_reports_which_part_is_broken() -> None:
    bow_tie = [[2.10, 47.845], [2.11, 47.855], [2.11, 47.845], [2.10, 47.855]]
    with pytest.raises(GeoError, match=r"^Polygone 2 : le contour du polygone se recoupe"):
        area_from_geojson({"type": "MultiPolygon", "coordinates": [[ring(SHELL)], [ring(bow_tie)]]})


# Circles --------------------------------------------------------------------------------


@pytest.mark.parametrize("radius", [5, 100_001, float("nan"), True, "300"])
def test_radius_out_of_bounds_is_refused(radius: Any) -> None:
    with pytest.raises(GeoError, match="rayon"):
        circle(47.85, 2.06, radius)


def test_circle_outside_france_is_refused() -> None:
    with pytest.raises(GeoError, match="en dehors de la France"):
        circle(51.5074, -0.1278, 500)


def test_circle_includes_its_edge_by_geodesic_distance() -> None:
    zone = circle(47.85, 2.06, 1000)
    assert zone.contains(47.85, 2.06)
    # Points on the circle, computed on the WGS84 ellipsoid in eight directions.
    for azimuth in range(0, 360, 45):
        at = Geodesic.WGS84.Direct(47.85, 2.06, azimuth, 1000.0)
        assert zone.contains(at["lat2"], at["lon2"])
        beyond = Geodesic.WGS84.Direct(47.85, 2.06, azimuth, 1000.05)
        assert not zone.contains(beyond["lat2"], beyond["lon2"])


def test_circle_round_trips_through_a_point_feature() -> None:
    zone = circle(47.85, 2.06, 750)
    feature = zone.to_feature({"nom": "Autour de l'école"}, feature_id="z1")
    assert feature["geometry"] == {"type": "Point", "coordinates": [2.06, 47.85]}
    assert feature["properties"] == {"nom": "Autour de l'école", "radius": 750.0}
    assert feature["id"] == "z1"
    again = area_from_geojson(feature)
    assert isinstance(again, CircleArea)
    assert (again.center, again.radius_m) == (zone.center, zone.radius_m)


def test_circle_geojson_is_a_closed_polygon_on_the_circle() -> None:
    zone = circle(47.85, 2.06, 2000)
    geometry = zone.to_geojson()
    coords = geometry["coordinates"][0]
    assert geometry["type"] == "Polygon" and coords[0] == coords[-1]
    assert Polygon(coords).exterior.is_ccw
    for lon, lat in coords:
        assert zone.distance_m(lat, lon) == pytest.approx(2000, rel=0.006)
    assert zone.area_km2 == pytest.approx(math.pi * 4, rel=1e-3)


def test_circle_bbox_holds_the_circle() -> None:
    zone = circle(-20.88, 55.45, 5000)
    box = zone.bbox()
    for lon, lat in zone.polygon(256).exterior.coords:
        assert box.contains(lat, lon)


# Exact membership, boundary included ----------------------------------------------------


def test_vertices_and_edge_points_are_inside() -> None:
    area = area_from_geojson(polygon(SHELL, POND))
    for lon, lat in SHELL + POND:
        assert area.contains(lat, lon), (lat, lon)
    # Midpoints of edges, and a point a third of the way along an edge (not exact in binary).
    assert area.contains(LAT0, LON0 + 0.01)
    assert area.contains(LAT0 + 0.015 / 3, LON0 + 0.02)
    assert area.contains(47.85, 2.06)  # on the pond's edge


def test_contains_many_agrees_with_contains() -> None:
    area = area_from_geojson(polygon(SHELL, POND))
    lats = [47.846, 47.8515, 47.845, 47.9, 47.85]
    lons = [2.051, 2.060, 2.06, 2.06, 2.058]
    assert area.contains_many(lats, lons) == [
        area.contains(a, o) for a, o in zip(lats, lons, strict=True)
    ]
    assert area.contains_many(lats, lons) == [True, False, True, False, True]


def test_polygon_area_refuses_an_invalid_shapely_geometry() -> None:
    bow_tie = Polygon([(2.05, 47.845), (2.07, 47.86), (2.07, 47.845), (2.05, 47.86)])
    with pytest.raises(GeoError, match="se recoupe"):
        PolygonArea(bow_tie)
    with pytest.raises(GeoError, match="non vide"):
        PolygonArea(Polygon())


def test_bbox_of_a_polygon() -> None:
    box = area_from_geojson(polygon(SHELL)).bbox()
    assert (box.min_lat, box.min_lon, box.max_lat, box.max_lon) == pytest.approx(
        (LAT0, LON0, LAT0 + 0.015, LON0 + 0.02)
    )


# Coverage -------------------------------------------------------------------------------


def test_coverage_ranges_are_sorted_disjoint_and_few() -> None:
    area = area_from_geojson(polygon(SHELL, POND))
    coverage = area.cover()
    assert coverage is area.cover()  # computed once
    for ranges in (coverage.inner, coverage.edge, coverage.ranges):
        assert all(r.first <= r.last for r in ranges)
        assert all(a.last < b.first for a, b in itertools.pairwise(ranges))
    assert coverage.inner and coverage.edge
    assert len(coverage.ranges) < 300


def test_contains_stored_skips_the_geometry_for_inner_cells() -> None:
    area = area_from_geojson(polygon(SHELL))
    lat, lon = 47.8525, 2.06  # the centre of the block
    cell = cell_of_lat_lon(lat, lon)
    assert area.cover().classify(cell) == "inner"
    assert area.contains_stored(lat, lon, cell)
    far = cell_of_lat_lon(43.6, 1.44)
    assert not area.contains_stored(43.6, 1.44, far)


def test_point_whose_coarse_ancestor_misses_the_area_is_still_covered() -> None:
    """H3 children spill out of their parent: plain 'overlap' at res 8 misses this point."""
    ancestor = h3.latlng_to_cell(48.8566, 2.3522, 8)
    parent_hexagon = Polygon([(lon, lat) for lat, lon in h3.cell_to_boundary(ancestor)])
    # Find a spot inside a descendant storage cell, well outside the ancestor's hexagon.
    best: tuple[float, float, float] | None = None
    for child in h3.cell_to_children(ancestor, STORAGE_RESOLUTION):
        clat, clon = h3.cell_to_latlng(child)
        for vlat, vlon in h3.cell_to_boundary(child):
            lat, lon = vlat + (clat - vlat) * 0.1, vlon + (clon - vlon) * 0.1
            gap = parent_hexagon.distance(Polygon.from_bounds(lon, lat, lon, lat).centroid)
            if cell_of_lat_lon(lat, lon) == child and (best is None or gap > best[0]):
                best = (gap, lat, lon)
    assert best is not None
    gap, lat, lon = best
    assert gap * 73_000 > 30  # more than 30 m outside the ancestor's hexagon
    zone = circle(lat, lon, 10)
    naive = h3.polygon_to_cells_experimental(
        h3.LatLngPoly([(y, x) for x, y in zone.polygon().exterior.coords[:-1]]), 8, "overlap"
    )
    assert ancestor not in naive  # the pitfall
    coverage = zone.cover_at(8)
    assert zone.contains(lat, lon)
    assert coverage.classify(cell_of_lat_lon(lat, lon)) is not None  # our answer


def test_cover_at_refuses_resolutions_out_of_range() -> None:
    with pytest.raises(ValueError, match="edge resolution"):
        circle(47.85, 2.06, 100).cover_at(STORAGE_RESOLUTION + 1)


def test_circle_contains_many_agrees_with_contains() -> None:
    zone = circle(47.85, 2.06, 1000)
    lats, lons = [], []
    for azimuth in range(0, 360, 15):
        for distance in (0.0, 500.0, 995.0, 1000.0, 1000.05, 1005.0, 3000.0):
            at = Geodesic.WGS84.Direct(47.85, 2.06, azimuth, distance)
            lats.append(at["lat2"])
            lons.append(at["lon2"])
    expected = [zone.contains(a, o) for a, o in zip(lats, lons, strict=True)]
    assert zone.contains_many(lats, lons) == expected
    assert sum(expected) == 24 * 4
