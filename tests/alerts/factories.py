"""Arrange helpers for alerts: devices with push credentials and places, alert bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.factories import Client
from tests.peers.webpush_service import Subscription, WebPushService

# A square of about 1.5 × 2.2 km in Rennes (lon, lat order as in GeoJSON).
SQUARE = {
    "type": "Polygon",
    "coordinates": [
        [[-1.70, 48.10], [-1.67, 48.10], [-1.67, 48.12], [-1.70, 48.12], [-1.70, 48.10]]
    ],
}
INSIDE = (48.11, -1.685)
ON_EDGE = (48.10, -1.685)  # on the southern side: the boundary counts as inside
OUTSIDE = (48.125, -1.685)  # 550 m north of the square


async def device(
    client: Client,
    *,
    places: list[tuple[float, float]] = (),  # type: ignore[assignment]
    webpush: Subscription | None = None,
    fcm_token: str | None = None,
    locale: str = "fr",
    quiet: tuple[str, str] | None = None,
) -> dict[str, str]:
    """Register a device through the API, with its credential and places; returns its headers."""
    registered = await client.post("/api/v1/devices", json={"platform": "web", "locale": locale})
    assert registered.status_code == 201, registered.text
    headers = {"X-Device-Token": registered.json()["deviceToken"]}
    if webpush is not None:
        body: dict[str, Any] = {
            "kind": "webpush",
            "endpoint": webpush.endpoint,
            "keys": {"p256dh": webpush.p256dh, "auth": webpush.auth},
        }
        response = await client.put("/api/v1/devices/me/push", json=body, headers=headers)
        assert response.status_code == 200, response.text
    if fcm_token is not None:
        response = await client.put(
            "/api/v1/devices/me/push", json={"kind": "fcm", "token": fcm_token}, headers=headers
        )
        assert response.status_code == 200, response.text
    for i, (lat, lon) in enumerate(places):
        response = await client.post(
            "/api/v1/devices/me/places",
            json={"label": f"Lieu {i}", "lat": lat, "lon": lon},
            headers=headers,
        )
        assert response.status_code == 201, response.text
    if quiet is not None:
        response = await client.patch(
            "/api/v1/devices/me",
            json={"quietStart": quiet[0], "quietEnd": quiet[1]},
            headers=headers,
        )
        assert response.status_code == 200, response.text
    return headers


def alert_body(area: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """A flood alert over the square, unless told otherwise."""
    body: dict[str, Any] = {
        "severity": "danger",
        "event": "Inondation",
        "headline": "Crue de la Vilaine",
        "description": "La Vilaine déborde : les rez-de-chaussée du quartier sont menacés.",
        "instruction": "Évacuez les rez-de-chaussée rue des Saules.",
        "area": area or {"kind": "polygon", "geometry": SQUARE},
        "expiresAt": (datetime.now(UTC) + timedelta(hours=6)).isoformat(),
    }
    body.update(overrides)
    return body


def webpush_subscription(
    peer: WebPushService, behaviour: str = "ok", **options: Any
) -> Subscription:
    """A new browser subscription on the loopback push service."""
    return peer.create_subscription(behaviour, **options)
