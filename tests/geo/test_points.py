"""Points: validation, distances, bounding boxes, the France check."""

from __future__ import annotations

import math

import pytest
from geopy.distance import great_circle

from geo import (
    BoundingBox,
    GeoError,
    GeoPoint,
    france_region,
    haversine_m,
    in_metropolitan_or_overseas_france,
    require_in_france,
)

PARIS = GeoPoint(48.8566, 2.3522)
LYON = GeoPoint(45.7640, 4.8357)


def test_point_keeps_lat_and_lon_as_floats() -> None:
    point = GeoPoint(48, 2)
    assert (point.lat, point.lon) == (48.0, 2.0)
    assert isinstance(point.lat, float)
    assert point == GeoPoint(48.0, 2.0)


@pytest.mark.parametrize(
    ("lat", "lon", "message"),
    [
        (91.0, 2.0, "latitude 91.0 doit être comprise entre -90 et 90"),
        (48.0, 181.0, "longitude 181.0 doit être comprise entre -180 et 180"),
        (math.nan, 2.0, "nombres finis"),
        (48.0, math.inf, "nombres finis"),
        (True, 2.0, "doivent être des nombres"),
        ("48.8", 2.0, "doivent être des nombres"),
    ],
)
def test_invalid_coordinates_are_refused_in_french(lat: object, lon: object, message: str) -> None:
    with pytest.raises(GeoError, match=message):
        GeoPoint(lat, lon)  # type: ignore[arg-type]


def test_point_is_immutable() -> None:
    with pytest.raises(AttributeError):
        PARIS.lat = 0.0  # type: ignore[misc]


def test_haversine_matches_geopy_great_circle() -> None:
    expected = great_circle((PARIS.lat, PARIS.lon), (LYON.lat, LYON.lon)).m
    assert PARIS.distance_m(LYON) == pytest.approx(expected, rel=1e-4)
    assert 390_000 < PARIS.distance_m(LYON) < 393_000


def test_haversine_of_a_point_to_itself_is_zero() -> None:
    assert haversine_m(45.0, 5.0, 45.0, 5.0) == 0.0


def test_point_geojson_is_lon_lat() -> None:
    assert PARIS.to_geojson() == {"type": "Point", "coordinates": [2.3522, 48.8566]}


def test_bounding_box_includes_its_edges() -> None:
    box = BoundingBox(48.0, 2.0, 49.0, 3.0)
    assert box.contains(48.0, 2.0)
    assert box.contains(49.0, 3.0)
    assert box.contains_point(PARIS)
    assert not box.contains(49.0001, 2.5)
    assert box.to_geojson_bbox() == [2.0, 48.0, 3.0, 49.0]


def test_inverted_bounding_box_is_refused() -> None:
    with pytest.raises(GeoError, match="inversé"):
        BoundingBox(49.0, 2.0, 48.0, 3.0)


@pytest.mark.parametrize(
    ("lat", "lon", "region"),
    [
        (48.8566, 2.3522, "France métropolitaine et Corse"),
        (41.9192, 8.7386, "France métropolitaine et Corse"),  # Ajaccio
        (51.0500, 2.3770, "France métropolitaine et Corse"),  # Dunkerque
        (16.2411, -61.5331, "Guadeloupe"),  # Pointe-à-Pitre
        (14.6161, -61.0588, "Martinique"),  # Fort-de-France
        (4.9224, -52.3135, "Guyane"),  # Cayenne
        (-20.8823, 55.4504, "La Réunion"),  # Saint-Denis
        (-12.7806, 45.2279, "Mayotte"),  # Mamoudzou
    ],
)
def test_places_in_france_are_recognised(lat: float, lon: float, region: str) -> None:
    point = GeoPoint(lat, lon)
    assert in_metropolitan_or_overseas_france(point)
    assert france_region(point) == region
    assert require_in_france(point) is point


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        (51.5074, -0.1278),  # London
        (40.4168, -3.7038),  # Madrid
        (2.3522, 48.8566),  # Paris with lat/lon swapped
        (55.4504, -20.8823),  # Saint-Denis (Réunion) swapped
        (0.0, 0.0),
    ],
)
def test_places_outside_france_are_refused(lat: float, lon: float) -> None:
    point = GeoPoint(lat, lon)
    assert not in_metropolitan_or_overseas_france(point)
    with pytest.raises(GeoError, match="en dehors de la France"):
        require_in_france(point)
