"""Targeting through the database agrees with a brute-force point-in-polygon check: everyone
inside (boundary included) exactly once, nobody outside — on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, Polygon

from alerts.tables import Device, Place
from alerts.targeting import (
    TargetArea,
    reach_of,
    recipients_in,
    recipients_of_selection,
    select_in,
)
from geo import area_from_geojson, cell_of_lat_lon


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """A star-shaped commune-sized polygon somewhere in metropolitan France, and residents:
    random ones around it, its vertices, and points on its edges."""
    lat0 = draw(st.floats(43.0, 50.5))
    lon0 = draw(st.floats(-4.0, 7.5))
    sides = draw(st.integers(5, 24))
    radii = draw(st.lists(st.floats(400, 3000), min_size=sides, max_size=sides))
    ring = []
    for i, r in enumerate(radii):
        angle = 2 * math.pi * i / sides
        ring.append(
            (
                lat0 + r * math.cos(angle) / 111_320,
                lon0 + r * math.sin(angle) / (111_320 * math.cos(math.radians(lat0))),
            )
        )
    span = 3500 / 111_320
    residents = draw(
        st.lists(
            st.tuples(st.floats(-span, span), st.floats(-span, span)), min_size=50, max_size=250
        )
    )
    points = [(lat0 + a, lon0 + b * 1.5) for a, b in residents]
    points += ring  # vertices lie on the boundary
    points += [
        ((ring[i][0] + ring[i - 1][0]) / 2, (ring[i][1] + ring[i - 1][1]) / 2)
        for i in range(0, sides, 3)
    ]
    return ring, points


def _brute_force(ring: list[tuple[float, float]], point: tuple[float, float]) -> bool:
    polygon = Polygon([(lon, lat) for lat, lon in ring])
    # Within a hair (1e-9°, 0.1 mm) of the edge counts as on it: edge midpoints computed in
    # floating point do not fall exactly on the line.
    return polygon.buffer(1e-9).covers(Point(point[1], point[0]))


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
async def test_targeting_matches_brute_force(
    db: str, scenario: tuple[list[tuple[float, float]], list[tuple[float, float]]]
) -> None:
    ring, points = scenario
    await Place.delete(force=True)
    await Device.delete(force=True)
    devices = [
        Device(id=uuid.uuid4(), token_hash=uuid.uuid4().hex * 2, platform="web") for _ in points
    ]
    await Device.insert(*devices)
    # Every other resident follows a second place far away: still one notification each.
    places = [
        Place(device=d.id, label="Maison", lat=lat, lon=lon, cell=cell_of_lat_lon(lat, lon))
        for d, (lat, lon) in zip(devices, points, strict=True)
    ] + [
        Place(device=d.id, label="Travail", lat=48.85, lon=2.35, cell=cell_of_lat_lon(48.85, 2.35))
        for d in devices[::2]
    ]
    # Every third resident also follows the same spot again: inside twice, notified once.
    places += [
        Place(device=p.device, label="Bis", lat=p.lat, lon=p.lon, cell=p.cell)
        for p in places[: len(devices) : 3]
    ]
    await Place.insert(*places)
    geometry = {"type": "Polygon", "coordinates": [[[lon, lat] for lat, lon in [*ring, ring[0]]]]}
    target = TargetArea(area_from_geojson(geometry), (), "test")

    inside = [p for p in places if _brute_force(ring, (p.lat, p.lon))]
    expected = {p.device for p in inside}
    recipients, place_count = await recipients_in(target)
    got = [r.device_id for r in recipients]
    assert len(got) == len(set(got))  # each device once
    assert set(got) == expected  # nobody inside missed, nobody outside woken
    assert place_count == len(inside)
    reach = await reach_of(target)
    assert (reach.devices, reach.places) == (len(expected), len(inside))
    # What sending uses: the selection the outbox inserts from, read back here.
    selection = await select_in(target)
    chosen = [r.device_id for r in await recipients_of_selection(selection)]
    assert len(chosen) == len(set(chosen))
    assert set(chosen) == expected
    assert selection.places == len(inside)
