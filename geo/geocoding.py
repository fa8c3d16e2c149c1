"""Geocoding and reverse geocoding behind a small async interface.

BAN (Base Adresse Nationale, api-adresse.data.gouv.fr) is the default: it is the
French reference address base and gives the INSEE code of the commune, which is
how we route a report to its commune. Nominatim (OpenStreetMap) is an option.

geopy's adapters are synchronous, so calls run in a small thread pool of our own:
a slow geocoder can then hold at most a few threads, never the event loop's
default pool that password hashing and file I/O share. Every failure of the
service (timeout, refused connection, 5xx, rate limit, garbage) raises
``GeocodingUnavailable``: callers decide, and a report is never blocked by an
outage (it keeps the coordinates and gets its address later).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar, runtime_checkable
from urllib.parse import urlsplit

from geopy.adapters import RequestsAdapter
from geopy.exc import GeocoderQueryError, GeopyError
from geopy.geocoders import BANFrance, Nominatim
from geopy.location import Location
from urllib3.util import Retry

from geo.points import GeoPoint

logger = logging.getLogger(__name__)

DEFAULT_USER_AGENT: Final = "relais-geo/0.1"
DEFAULT_TIMEOUT_S: Final = 5.0
#: BAN answers 400 outside 3..200 characters: we answer None without asking.
_MIN_QUERY, _MAX_QUERY = 3, 200
#: Threads for geocoding calls, shared by all geocoders of the process.
_POOL_SIZE: Final = 4
#: Territories for Nominatim: metropolitan France and the five DROM.
_NOMINATIM_COUNTRIES: Final = ["fr", "gp", "mq", "gf", "re", "yt"]

T = TypeVar("T")


class GeocodingUnavailable(Exception):
    """The geocoding service did not answer usefully (timeout, refused, 5xx, 429, garbage)."""


@dataclass(frozen=True, slots=True)
class GeocodedAddress:
    """One address found by a geocoder."""

    #: Full one-line label, e.g. "12 Rue des Saules 45150 Les Saules-sur-Loire".
    label: str
    lat: float
    lon: float
    housenumber: str | None = None
    street: str | None = None
    postcode: str | None = None
    city: str | None = None
    #: INSEE code of the commune (BAN only; Nominatim does not know it).
    citycode: str | None = None
    #: Confidence in [0, 1] (BAN ``score``, Nominatim ``importance``).
    score: float | None = None
    #: What was found: housenumber, street, locality, municipality (BAN's ``type``).
    kind: str | None = None

    @property
    def point(self) -> GeoPoint:
        """The address position as a GeoPoint."""
        return GeoPoint(self.lat, self.lon)


@runtime_checkable
class Geocoder(Protocol):
    """What the rest of the app needs from a geocoder."""

    async def geocode(self, query: str) -> GeocodedAddress | None:
        """The best address for a free-text query, or None when nothing matches."""
        ...

    async def reverse(self, lat: float, lon: float) -> GeocodedAddress | None:
        """The nearest address to a position, or None when there is none."""
        ...


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_POOL_SIZE, thread_name_prefix="geocoding")
        return _pool


def _text(value: Any) -> str | None:
    """A non-empty string or None (services mix numbers, empty strings and nulls)."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


class _GeopyGeocoder:
    """Common machinery: run a geopy call in the pool, bound its time, map its errors."""

    name = "geocoder"

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    async def _run(self, call: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            # geopy bounds each HTTP exchange by ``timeout``; this also bounds the
            # wait for a free thread when the service hangs for everybody.
            async with asyncio.timeout(self.timeout * 2 + 1):
                return await loop.run_in_executor(_executor(), call)
        except TimeoutError as exc:
            raise GeocodingUnavailable(f"{self.name}: no answer in time") from exc
        except GeocoderQueryError:
            raise  # the caller turns a refused query into "no result"
        except GeopyError as exc:
            raise GeocodingUnavailable(f"{self.name}: {exc}") from exc

    async def _first(
        self, call: Callable[[], Location | None], parse: Callable[[Location], GeocodedAddress]
    ) -> GeocodedAddress | None:
        try:
            location = await self._run(call)
        except GeocoderQueryError as exc:
            logger.info("%s refused the query: %s", self.name, exc)
            return None
        if location is None:
            return None
        try:
            return parse(location)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise GeocodingUnavailable(f"{self.name}: unreadable answer ({exc!r})") from exc


def _split_base_url(base_url: str) -> tuple[str, str]:
    """(scheme, domain-with-optional-path) as geopy wants them."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base URL must be http(s)://host[:port][/path], got {base_url!r}")
    return parts.scheme, (parts.netloc + parts.path).rstrip("/")


def _adapter(**kwargs: Any) -> RequestsAdapter:
    # Retry a refused connection once, never a slow read: geopy's default (two
    # retries of anything) would turn a 5 s timeout into 15 s before we can say
    # "unavailable", and the caller is holding a citizen's request meanwhile.
    retry = Retry(total=1, connect=1, read=0, redirect=0, status=0, other=0)
    return RequestsAdapter(max_retries=retry, **kwargs)


class BanGeocoder(_GeopyGeocoder):
    """The Base Adresse Nationale (api-adresse.data.gouv.fr), through geopy's BANFrance."""

    name = "BAN"

    def __init__(
        self,
        base_url: str = "https://api-adresse.data.gouv.fr",
        timeout: float = DEFAULT_TIMEOUT_S,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> None:
        super().__init__(timeout)
        scheme, domain = _split_base_url(base_url)
        self._ban = BANFrance(
            domain=domain,
            scheme=scheme,
            timeout=timeout,
            user_agent=user_agent,
            adapter_factory=_adapter,
        )

    async def geocode(self, query: str) -> GeocodedAddress | None:
        """The best BAN match for ``query`` (None for no match or a query BAN refuses)."""
        query = query.strip()
        if not _MIN_QUERY <= len(query) <= _MAX_QUERY:
            return None
        call = functools.partial(self._ban.geocode, query, limit=1, exactly_one=True)
        return await self._first(call, _from_ban)

    async def reverse(self, lat: float, lon: float) -> GeocodedAddress | None:
        """The nearest BAN address to (lat, lon)."""
        call = functools.partial(self._ban.reverse, (lat, lon), exactly_one=True)
        return await self._first(call, _from_ban)


def _from_ban(location: Location) -> GeocodedAddress:
    """A BAN GeoJSON feature (geopy's ``raw``) as a GeocodedAddress."""
    feature: Mapping[str, Any] = location.raw
    lon, lat = feature["geometry"]["coordinates"][:2]
    props: Mapping[str, Any] = feature.get("properties") or {}
    kind = _text(props.get("type"))
    street = _text(props.get("street"))
    if street is None and kind == "street":
        street = _text(props.get("name"))
    score = props.get("score")
    return GeocodedAddress(
        label=_text(props.get("label")) or location.address or "",
        lat=float(lat),
        lon=float(lon),
        housenumber=_text(props.get("housenumber")),
        street=street,
        postcode=_text(props.get("postcode")),
        city=_text(props.get("city")),
        citycode=_text(props.get("citycode")),
        score=float(score) if score is not None else None,
        kind=kind,
    )


class NominatimGeocoder(_GeopyGeocoder):
    """OpenStreetMap's Nominatim (self-hosted or public, within its usage policy)."""

    name = "Nominatim"

    def __init__(
        self,
        base_url: str = "https://nominatim.openstreetmap.org",
        timeout: float = DEFAULT_TIMEOUT_S,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> None:
        super().__init__(timeout)
        scheme, domain = _split_base_url(base_url)
        self._osm = Nominatim(
            domain=domain,
            scheme=scheme,
            timeout=timeout,
            user_agent=user_agent,
            adapter_factory=_adapter,
        )

    async def geocode(self, query: str) -> GeocodedAddress | None:
        """The best Nominatim match for ``query`` within France."""
        query = query.strip()
        if not _MIN_QUERY <= len(query) <= _MAX_QUERY:
            return None
        call = functools.partial(
            self._osm.geocode,
            query,
            exactly_one=True,
            addressdetails=True,
            country_codes=_NOMINATIM_COUNTRIES,
        )
        return await self._first(call, _from_nominatim)

    async def reverse(self, lat: float, lon: float) -> GeocodedAddress | None:
        """The nearest Nominatim address to (lat, lon)."""
        call = functools.partial(
            self._osm.reverse, (lat, lon), exactly_one=True, addressdetails=True
        )
        return await self._first(call, _from_nominatim)


def _from_nominatim(location: Location) -> GeocodedAddress:
    """A Nominatim JSON result (geopy's ``raw``) as a GeocodedAddress."""
    raw: Mapping[str, Any] = location.raw
    address: Mapping[str, Any] = raw.get("address") or {}
    city = next(
        (address[k] for k in ("city", "town", "village", "municipality") if address.get(k)),
        None,
    )
    importance = raw.get("importance")
    return GeocodedAddress(
        label=_text(raw.get("display_name")) or location.address or "",
        lat=float(raw["lat"]),
        lon=float(raw["lon"]),
        housenumber=_text(address.get("house_number")),
        street=_text(address.get("road") or address.get("pedestrian")),
        postcode=_text(address.get("postcode")),
        city=_text(city),
        citycode=None,
        score=float(importance) if importance is not None else None,
        kind=_text(raw.get("addresstype") or raw.get("type")),
    )


def make_geocoder(
    provider: str = "ban",
    base_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    *,
    user_agent: str = DEFAULT_USER_AGENT,
) -> Geocoder:
    """Build the configured geocoder: ``ban`` (default) or ``nominatim``.

    ``base_url`` (scheme://host[:port][/path]) overrides the public service, for a
    self-hosted instance or a loopback test peer; ``timeout`` bounds each call (s).
    """
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    match provider.strip().lower():
        case "ban":
            if base_url is None:
                return BanGeocoder(timeout=timeout, user_agent=user_agent)
            return BanGeocoder(base_url, timeout=timeout, user_agent=user_agent)
        case "nominatim":
            if base_url is None:
                return NominatimGeocoder(timeout=timeout, user_agent=user_agent)
            return NominatimGeocoder(base_url, timeout=timeout, user_agent=user_agent)
        case _:
            raise ValueError(f"unknown geocoding provider {provider!r} (expected ban or nominatim)")
