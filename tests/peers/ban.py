"""A loopback peer that answers like the Base Adresse Nationale API (api-adresse.data.gouv.fr).

It serves ``GET /search/?q=&limit=`` and ``GET /reverse/?lon=&lat=`` (with or
without the trailing slash) in BAN's GeoJSON shape, from a small built-in
gazetteer of one made-up commune, Les Saules-sur-Loire (INSEE 45999, 45150).
It can be told to fail (any HTTP status) or to answer slowly, to exercise the
outage paths. Standard library only: it runs in a background thread, so sync
and async tests and the benchmarks can all use it.

    with BanPeer() as ban:
        geocoder = make_geocoder("ban", ban.base_url, timeout=2)
        ban.fail_with(500)   # every answer is now a 500
        ban.slow_down(3.0)   # every answer now waits 3 s
        ban.recover()
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

COMMUNE = "Les Saules-sur-Loire"
CITYCODE = "45999"
POSTCODE = "45150"
CONTEXT = "45, Loiret, Centre-Val de Loire"


@dataclass(frozen=True, slots=True)
class BanEntry:
    """One gazetteer entry: an address (housenumber), a street, or the municipality."""

    kind: str  # "housenumber" | "street" | "municipality"
    lat: float
    lon: float
    street: str | None = None
    housenumber: str | None = None
    importance: float = 0.55
    ban_id: str = ""

    @property
    def name(self) -> str:
        """BAN's ``name``: "12 Rue des Saules", "Rue des Saules" or the commune."""
        if self.kind == "housenumber":
            return f"{self.housenumber} {self.street}"
        return self.street or COMMUNE

    @property
    def label(self) -> str:
        """BAN's ``label``: name, postcode and commune."""
        if self.kind == "municipality":
            return COMMUNE
        return f"{self.name} {POSTCODE} {COMMUNE}"


def _address(number: str, street: str, code: str, lat: float, lon: float) -> BanEntry:
    return BanEntry(
        "housenumber", lat, lon, street, number, ban_id=f"{CITYCODE}_{code}_{int(number):05d}"
    )


#: Around 47.852 N, 2.061 E (Loiret). Addresses are ~20 m apart along their street.
GAZETTEER: tuple[BanEntry, ...] = (
    _address("1", "Rue des Saules", "0420", 47.85210, 2.06080),
    _address("3", "Rue des Saules", "0420", 47.85228, 2.06102),
    _address("12", "Rue des Saules", "0420", 47.85262, 2.06151),
    _address("14", "Rue des Saules", "0420", 47.85280, 2.06174),
    _address("5", "Place de la Mairie", "0300", 47.85105, 2.05890),
    _address("8", "Chemin du Moulin", "0150", 47.85402, 2.06522),
    _address("2", "Impasse des Lavandières", "0210", 47.85012, 2.06310),
    BanEntry("street", 47.85245, 2.06127, "Rue des Saules", importance=0.6, ban_id="45999_0420"),
    BanEntry("street", 47.85105, 2.05890, "Place de la Mairie", ban_id="45999_0300"),
    BanEntry("municipality", 47.85150, 2.06000, importance=0.7, ban_id=CITYCODE),
)


def _fold(text: str) -> list[str]:
    """Lowercase words without accents or punctuation: "Lavandières," -> ["lavandieres"]."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "".join(c if c.isalnum() else " " for c in plain).split()


def lambert93(lat: float, lon: float) -> tuple[float, float]:
    """BAN's ``x``/``y``: Lambert-93 (EPSG:2154) metres, on the GRS80 ellipsoid."""
    a, e = 6_378_137.0, 0.0818191910428158
    phi1, phi2, phi0 = math.radians(44.0), math.radians(49.0), math.radians(46.5)
    lon0, x0, y0 = math.radians(3.0), 700_000.0, 6_600_000.0

    def m(phi: float) -> float:
        return math.cos(phi) / math.sqrt(1 - (e * math.sin(phi)) ** 2)

    def t(phi: float) -> float:
        s = e * math.sin(phi)
        return math.tan(math.pi / 4 - phi / 2) / ((1 - s) / (1 + s)) ** (e / 2)

    n = (math.log(m(phi1)) - math.log(m(phi2))) / (math.log(t(phi1)) - math.log(t(phi2)))
    f = m(phi1) / (n * t(phi1) ** n)
    rho0 = a * f * t(phi0) ** n
    rho = a * f * t(math.radians(lat)) ** n
    theta = n * (math.radians(lon) - lon0)
    return round(x0 + rho * math.sin(theta), 2), round(y0 + rho0 - rho * math.cos(theta), 2)


def _feature(entry: BanEntry, score: float, distance: float | None = None) -> dict[str, Any]:
    x, y = lambert93(entry.lat, entry.lon)
    properties: dict[str, Any] = {
        "label": entry.label,
        "score": round(score, 6),
        "id": entry.ban_id,
        "name": entry.name,
        "postcode": POSTCODE,
        "citycode": CITYCODE,
        "x": x,
        "y": y,
        "city": COMMUNE,
        "context": CONTEXT,
        "type": entry.kind,
        "importance": entry.importance,
    }
    if entry.kind == "housenumber":
        properties["housenumber"] = entry.housenumber
    if entry.kind in ("housenumber", "street"):
        properties["street"] = entry.street
    if distance is not None:
        properties["distance"] = round(distance)
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [entry.lon, entry.lat]},
        "properties": properties,
    }


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_008.8 * math.asin(min(1.0, math.sqrt(h)))


@dataclass
class _State:
    entries: list[BanEntry]
    failure_status: int | None = None
    delay_s: float = 0.0
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server_version = "BanPeer/1.0"
    state: ClassVar[_State]  # set on a per-peer subclass

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def _send(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"code": status, "message": message})

    def do_GET(self) -> None:
        state = self.state
        with state.lock:
            state.requests.append(self.path)
            failure, delay = state.failure_status, state.delay_s
        if delay:
            time.sleep(delay)
        if failure is not None:
            self._error(failure, HTTPStatus(failure).phrase)
            return
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        route = parts.path.rstrip("/")
        if route == "/search":
            self._search(query)
        elif route == "/reverse":
            self._reverse(query)
        else:
            self._error(404, "Not found")

    def _search(self, query: dict[str, str]) -> None:
        q = query.get("q", "").strip()
        if not 3 <= len(q) <= 200 or not q[0].isalnum():
            self._error(
                400, "q must contain between 3 and 200 chars and start with a number or a letter"
            )
            return
        try:
            limit = int(query.get("limit", "5"))
        except ValueError:
            self._error(400, "limit must be an integer")
            return
        words = _fold(q)
        scored: list[tuple[float, BanEntry]] = []
        for entry in self.state.entries:
            label_words = _fold(entry.label)
            found = sum(1 for w in words if w in label_words)
            if not found:
                continue
            # Share of the query found, slightly penalising long labels (as BAN does).
            score = 0.9 * found / len(words) + 0.1 * min(1.0, len(words) / len(label_words))
            if score >= 0.4:
                scored.append((score, entry))
        scored.sort(key=lambda item: (-item[0], -item[1].importance))
        self._send(
            200,
            {
                "type": "FeatureCollection",
                "version": "draft",
                "features": [_feature(e, s) for s, e in scored[: max(1, limit)]],
                "attribution": "BAN",
                "licence": "ETALAB-2.0",
                "query": q,
                "limit": limit,
            },
        )

    def _reverse(self, query: dict[str, str]) -> None:
        try:
            lat, lon = float(query["lat"]), float(query["lon"])
        except (KeyError, ValueError):
            self._error(400, "lat and lon must be floats")
            return
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            self._error(400, "lat/lon out of range")
            return
        candidates = [
            (_distance_m(lat, lon, e.lat, e.lon), e)
            for e in self.state.entries
            if e.kind == "housenumber"
        ]
        # Like BAN, nothing comes back far from any address (here: beyond 1 km).
        near = sorted((c for c in candidates if c[0] <= 1000), key=lambda c: c[0])[:1]
        self._send(
            200,
            {
                "type": "FeatureCollection",
                "version": "draft",
                "features": [_feature(e, 1.0 - d / 1000, distance=d) for d, e in near],
                "attribution": "BAN",
                "licence": "ETALAB-2.0",
                "limit": 1,
            },
        )


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True  # a slow answer never blocks stop()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up on a slow answer is expected here, not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class BanPeer:
    """The BAN-like server on 127.0.0.1 and an ephemeral port, in a daemon thread."""

    def __init__(self, entries: Iterable[BanEntry] = GAZETTEER) -> None:
        self._state = _State(entries=list(entries))
        handler = type("BanPeerHandler", (_Handler,), {"state": self._state})
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: give it to ``make_geocoder("ban", base_url)``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> Sequence[str]:
        """Paths (with query strings) received so far."""
        with self._state.lock:
            return list(self._state.requests)

    def fail_with(self, status: int = 500) -> None:
        """Answer every request with this HTTP error status until ``recover()``."""
        with self._state.lock:
            self._state.failure_status = status

    def slow_down(self, seconds: float) -> None:
        """Wait this long before every answer until ``recover()``."""
        with self._state.lock:
            self._state.delay_s = seconds

    def recover(self) -> None:
        """Answer normally and promptly again."""
        with self._state.lock:
            self._state.failure_status = None
            self._state.delay_s = 0.0

    def start(self) -> BanPeer:
        """Start serving in a background thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="ban-peer",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> BanPeer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":  # pragma: no cover - manual exploration
    with BanPeer() as peer:
        print(f"BAN peer on {peer.base_url} (Ctrl-C to stop)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
