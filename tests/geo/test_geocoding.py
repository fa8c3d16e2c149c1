"""Geocoding through geopy against the loopback BAN peer: answers, misses and outages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from geopy.location import Location

from geo import (
    BanGeocoder,
    GeocodedAddress,
    GeocodingUnavailable,
    NominatimGeocoder,
    make_geocoder,
)
from geo.geocoding import _from_nominatim
from tests.peers.ban import CITYCODE, BanPeer, lambert93


@pytest.fixture(scope="module")
def peer() -> Iterator[BanPeer]:
    with BanPeer() as running:
        yield running


@pytest.fixture
def ban(peer: BanPeer) -> Iterator[BanPeer]:
    """The shared peer, answering normally at the start and end of each test."""
    peer.recover()
    yield peer
    peer.recover()


async def test_an_address_is_found_with_its_insee_code(ban: BanPeer) -> None:
    geocoder = make_geocoder("ban", ban.base_url, timeout=2)
    found = await geocoder.geocode("12 rue des Saules, Les Saules-sur-Loire")
    assert found == GeocodedAddress(
        label="12 Rue des Saules 45150 Les Saules-sur-Loire",
        lat=47.85262,
        lon=2.06151,
        housenumber="12",
        street="Rue des Saules",
        postcode="45150",
        city="Les Saules-sur-Loire",
        citycode=CITYCODE,
        score=found.score if found else None,
        kind="housenumber",
    )
    assert found is not None and 0.9 < (found.score or 0) <= 1
    assert found.point.lat == 47.85262


async def test_accents_and_case_do_not_matter(ban: BanPeer) -> None:
    found = await make_geocoder("ban", ban.base_url).geocode("2 IMPASSE DES LAVANDIERES")
    assert found is not None and found.street == "Impasse des Lavandières"


async def test_a_street_result_has_a_street_and_no_number(ban: BanPeer) -> None:
    found = await make_geocoder("ban", ban.base_url).geocode("place de la mairie")
    assert found is not None
    assert (found.kind, found.street, found.housenumber) == ("street", "Place de la Mairie", None)


async def test_unknown_address_gives_none(ban: BanPeer) -> None:
    assert await make_geocoder("ban", ban.base_url).geocode("avenue de Nulle Part") is None


async def test_too_short_query_gives_none_without_asking(ban: BanPeer) -> None:
    before = len(ban.requests)
    assert await make_geocoder("ban", ban.base_url).geocode("  ab ") is None
    assert len(ban.requests) == before


async def test_query_refused_by_ban_gives_none(ban: BanPeer) -> None:
    # BAN answers 400 when q does not start with a letter or a digit.
    assert await make_geocoder("ban", ban.base_url).geocode("--- rue des Saules") is None


async def test_reverse_finds_the_nearest_address(ban: BanPeer) -> None:
    found = await make_geocoder("ban", ban.base_url).reverse(47.85264, 2.06149)
    assert found is not None
    assert found.label == "12 Rue des Saules 45150 Les Saules-sur-Loire"
    assert found.citycode == CITYCODE


async def test_reverse_far_from_any_address_gives_none(ban: BanPeer) -> None:
    assert await make_geocoder("ban", ban.base_url).reverse(45.0, 5.0) is None


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_server_errors_raise_unavailable(ban: BanPeer, status: int) -> None:
    ban.fail_with(status)
    geocoder = make_geocoder("ban", ban.base_url, timeout=2)
    with pytest.raises(GeocodingUnavailable):
        await geocoder.geocode("rue des Saules")
    with pytest.raises(GeocodingUnavailable):
        await geocoder.reverse(47.8526, 2.0615)


async def test_slow_server_raises_unavailable_within_the_timeout(ban: BanPeer) -> None:
    ban.slow_down(2.0)
    geocoder = make_geocoder("ban", ban.base_url, timeout=0.3)
    started = time.perf_counter()
    with pytest.raises(GeocodingUnavailable):
        await geocoder.geocode("rue des Saules")
    assert time.perf_counter() - started < 1.5


async def test_refused_connection_raises_unavailable() -> None:
    stopped = BanPeer()
    url = stopped.base_url
    stopped.stop()  # the port is released: nobody listens any more
    with pytest.raises(GeocodingUnavailable):
        await make_geocoder("ban", url, timeout=1).geocode("rue des Saules")


async def test_geocoding_does_not_block_the_event_loop(ban: BanPeer) -> None:
    ban.slow_down(0.3)
    geocoder = make_geocoder("ban", ban.base_url, timeout=2)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        for _ in range(10):
            await asyncio.sleep(0.02)
            ticks += 1

    results = await asyncio.gather(
        geocoder.geocode("12 rue des Saules"), geocoder.reverse(47.8526, 2.0615), tick()
    )
    assert ticks == 10
    assert results[0] is not None and results[1] is not None


def test_factory_picks_the_provider_and_checks_its_arguments() -> None:
    assert isinstance(make_geocoder(), BanGeocoder)
    assert isinstance(make_geocoder("BAN", "http://127.0.0.1:9"), BanGeocoder)
    assert isinstance(
        make_geocoder("nominatim", "https://osm.example.org/nominatim"), NominatimGeocoder
    )
    with pytest.raises(ValueError, match="unknown geocoding provider"):
        make_geocoder("google")
    with pytest.raises(ValueError, match="base URL"):
        make_geocoder("ban", "127.0.0.1:8080")
    with pytest.raises(ValueError, match="timeout"):
        make_geocoder("ban", timeout=0)


def test_nominatim_answers_are_read_into_the_same_shape() -> None:
    raw = {
        "lat": "47.8526",
        "lon": "2.0615",
        "display_name": "12, Rue des Saules, Les Saules-sur-Loire, Loiret, France",
        "importance": 0.31,
        "addresstype": "building",
        "address": {
            "house_number": "12",
            "road": "Rue des Saules",
            "village": "Les Saules-sur-Loire",
            "postcode": "45150",
            "country_code": "fr",
        },
    }
    found = _from_nominatim(Location(raw["display_name"], (47.8526, 2.0615), raw))
    assert found == GeocodedAddress(
        label="12, Rue des Saules, Les Saules-sur-Loire, Loiret, France",
        lat=47.8526,
        lon=2.0615,
        housenumber="12",
        street="Rue des Saules",
        postcode="45150",
        city="Les Saules-sur-Loire",
        citycode=None,
        score=0.31,
        kind="building",
    )


def test_peer_gives_lambert93_coordinates_like_ban() -> None:
    # Paris, Notre-Dame: the usual EPSG:2154 reference point.
    x, y = lambert93(48.8566, 2.3522)
    assert x == pytest.approx(652_469.02, abs=1) and y == pytest.approx(6_862_035.26, abs=1)
    assert lambert93(46.5, 3.0) == (700_000.0, 6_600_000.0)  # the projection's origin
