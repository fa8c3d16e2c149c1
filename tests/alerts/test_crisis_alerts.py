"""A flood is coming: staff draw the area, send, update and lift an alert; phones inside ring.

Delivery goes through the real transports to loopback push services (VAPID-checked, decrypted
Web Push; FCM HTTP v1 that firebase-admin posts to).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar import Litestar

from alerts.delivery import DeliveryWorker
from alerts.tables import Delivery, Device
from tests.alerts.factories import INSIDE, ON_EDGE, OUTSIDE, SQUARE, alert_body, device
from tests.factories import Client, bearer, log_in, make_commune, sign_up
from tests.peers.fcm_service import FcmService
from tests.peers.webpush_service import WebPushService


async def _admin(client: Client, app: Litestar) -> dict[str, str]:
    commune = await make_commune(app)
    return bearer(await log_in(client, commune.admin["email"]))


async def _create(client: Client, staff: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post("/staff/v1/alerts", json=alert_body(**body), headers=staff)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _send(client: Client, staff: dict[str, str], alert_id: str) -> dict[str, Any]:
    response = await client.post(f"/staff/v1/alerts/{alert_id}/send", headers=staff)
    assert response.status_code == 200, response.text
    sent: dict[str, Any] = response.json()
    return sent


async def test_an_alert_reaches_exactly_the_devices_inside(
    client: Client,
    app: Litestar,
    worker: DeliveryWorker,
    webpush_peer: WebPushService,
    fcm_peer: FcmService,
) -> None:
    staff = await _admin(client, app)
    inside_sub, edge_sub, outside_sub, twice_sub = (
        webpush_peer.create_subscription() for _ in range(4)
    )
    inside = await device(client, places=[INSIDE], webpush=inside_sub)
    await device(client, places=[ON_EDGE], webpush=edge_sub)
    outside = await device(client, places=[OUTSIDE], webpush=outside_sub)
    await device(client, places=[INSIDE, (48.115, -1.69)], webpush=twice_sub)
    await device(client, places=[INSIDE], fcm_token="fcm-token-inside-0123456789")
    inbox_only = await device(client, places=[INSIDE])

    alert = await _create(client, staff)
    assert alert["state"] == "draft"
    preview = await client.get(f"/staff/v1/alerts/{alert['id']}/preview", headers=staff)
    assert preview.json() == {"devices": 5, "places": 6}
    assert not webpush_peer.records()  # a draft sends nothing

    sent = await _send(client, staff, alert["id"])
    assert sent["targetedDevices"] == 5
    await worker.drain()

    received = {r.subscription_id: r for r in await webpush_peer.wait_for(3)}
    assert set(received) == {inside_sub.id, edge_sub.id, twice_sub.id}
    push = received[inside_sub.id]
    assert push.payload["title"] == "Danger : Crue de la Vilaine"
    assert push.payload["body"] == "Évacuez les rez-de-chaussée rue des Saules."
    assert push.payload["data"]["alertId"] == alert["id"]
    assert push.urgency == "high"
    assert push.topic
    assert 0 < push.ttl <= 6 * 3600
    [fcm] = await fcm_peer.wait_for(1)
    assert fcm.message["token"] == "fcm-token-inside-0123456789"
    assert fcm.message["android"]["priority"] == "high"

    mine = await client.get("/api/v1/alerts/mine", headers=inside)
    assert [a["headline"] for a in mine.json()] == ["Crue de la Vilaine"]
    assert (await client.get("/api/v1/alerts/mine", headers=outside)).json() == []
    inbox = (await client.get("/api/v1/inbox", headers=inbox_only)).json()
    assert [i["title"] for i in inbox["items"]] == ["Danger : Crue de la Vilaine"]
    assert inbox["unread"] == 1

    report = (await client.get(f"/staff/v1/alerts/{alert['id']}/report", headers=staff)).json()
    assert report["targeted"] == 5
    assert report["sent"] == 4
    assert report["inboxOnly"] == 1
    assert report["read"] == 0
    read = await client.post(f"/api/v1/alerts/{alert['id']}/read", headers=inside)
    assert read.status_code == 204
    report = (await client.get(f"/staff/v1/alerts/{alert['id']}/report", headers=staff)).json()
    assert report["read"] == 1


async def test_sending_twice_sends_once(
    client: Client, app: Litestar, worker: DeliveryWorker, webpush_peer: WebPushService
) -> None:
    staff = await _admin(client, app)
    await device(client, places=[INSIDE], webpush=webpush_peer.create_subscription())
    alert = await _create(client, staff)
    responses = await asyncio.gather(
        *(client.post(f"/staff/v1/alerts/{alert['id']}/send", headers=staff) for _ in range(3))
    )
    assert sorted(r.status_code for r in responses) == [200, 409, 409]
    await worker.drain()
    assert len(await webpush_peer.wait_for(1)) == 1
    assert await Delivery.count() == 1


async def test_dead_credentials_are_pruned_and_only_those(
    client: Client,
    app: Litestar,
    worker: DeliveryWorker,
    webpush_peer: WebPushService,
    fcm_peer: FcmService,
) -> None:
    staff = await _admin(client, app)
    gone = webpush_peer.create_subscription("gone")
    missing = webpush_peer.create_subscription("not_found")
    fine = webpush_peer.create_subscription()
    refused = webpush_peer.create_subscription("error", status=400)
    fcm_peer.set_behaviour("fcm-token-unregistered-000000", "unregistered")
    for credential in (gone, missing, fine, refused):
        await device(client, places=[INSIDE], webpush=credential)
    await device(client, places=[INSIDE], fcm_token="fcm-token-unregistered-000000")
    alert = await _create(client, staff)
    await _send(client, staff, alert["id"])
    await worker.drain()

    remaining = {r["push_token"] for r in await Device.select(Device.push_token) if r["push_token"]}
    assert remaining == {fine.endpoint, refused.endpoint}  # a 400 is not a dead subscription
    report = (await client.get(f"/staff/v1/alerts/{alert['id']}/report", headers=staff)).json()
    assert report["pruned"] == 3
    assert report["failed"] == 1
    assert report["sent"] == 1


async def test_throttling_and_server_errors_are_retried_and_nothing_is_lost(
    client: Client,
    app: Litestar,
    worker: DeliveryWorker,
    webpush_peer: WebPushService,
    fcm_peer: FcmService,
) -> None:
    staff = await _admin(client, app)
    throttled = webpush_peer.create_subscription("throttle", retry_after="1", first=1)
    flaky = webpush_peer.create_subscription("error", status=503, first=2)
    for credential in (throttled, flaky):
        await device(client, places=[INSIDE], webpush=credential)
    fcm_peer.set_behaviour("fcm-token-quota-0000000000", "quota", retry_after="1", first=1)
    fcm_peer.set_behaviour("fcm-token-down-00000000000", "unavailable", first=1)
    await device(client, places=[INSIDE], fcm_token="fcm-token-quota-0000000000")
    await device(client, places=[INSIDE], fcm_token="fcm-token-down-00000000000")
    alert = await _create(client, staff)
    await _send(client, staff, alert["id"])

    for _ in range(60):  # the 429s ask for a second; 503s back off by ~50 ms
        await worker.drain()
        if await Delivery.count().where(Delivery.status != "sent") == 0:
            break
        await asyncio.sleep(0.1)
    assert {r["status"] for r in await Delivery.select(Delivery.status)} == {"sent"}
    pushes = await webpush_peer.wait_for(2)
    assert sorted(p.subscription_id for p in pushes) == sorted([throttled.id, flaky.id])
    assert len(await fcm_peer.wait_for(2)) == 2
    assert webpush_peer.stats()["requests"] >= 5  # 1 throttled + 2 errors + 2 delivered


async def test_update_replaces_the_alert_and_cancel_lifts_it(
    client: Client, app: Litestar, worker: DeliveryWorker, webpush_peer: WebPushService
) -> None:
    staff = await _admin(client, app)
    first_sub, later_sub = webpush_peer.create_subscription(), webpush_peer.create_subscription()
    first = await device(client, places=[INSIDE], webpush=first_sub)
    await device(client, places=[OUTSIDE], webpush=later_sub)
    alert = await _create(client, staff)
    await _send(client, staff, alert["id"])
    await worker.drain()
    [original] = await webpush_peer.wait_for(1)

    bigger = {
        "type": "Polygon",
        "coordinates": [
            [[-1.70, 48.10], [-1.67, 48.10], [-1.67, 48.13], [-1.70, 48.13], [-1.70, 48.10]]
        ],
    }
    updated = await client.post(
        f"/staff/v1/alerts/{alert['id']}/update",
        json={
            "severity": "urgence_extreme",
            "headline": "Crue majeure de la Vilaine",
            "area": {"kind": "polygon", "geometry": bigger},
        },
        headers=staff,
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["msgType"] == "Update"
    assert updated.json()["id"] == alert["id"]
    await worker.drain()
    pushes = await webpush_peer.wait_for(3)
    update_pushes = [p for p in pushes if p.payload["data"]["msgType"] == "Update"]
    assert {p.subscription_id for p in update_pushes} == {first_sub.id, later_sub.id}
    assert all(p.topic == original.topic for p in update_pushes)  # replaces it on the phone
    assert update_pushes[0].payload["title"].startswith("Mise à jour – Urgence extrême")

    cancelled = await client.post(
        f"/staff/v1/alerts/{alert['id']}/cancel",
        json={"note": "La décrue est amorcée, vous pouvez regagner vos logements."},
        headers=staff,
    )
    assert cancelled.json()["msgType"] == "Cancel"
    await worker.drain()
    pushes = await webpush_peer.wait_for(5)
    ends = [p for p in pushes if p.payload["data"]["msgType"] == "Cancel"]
    assert {p.subscription_id for p in ends} == {first_sub.id, later_sub.id}
    assert ends[0].payload["title"] == "Fin d'alerte : Crue majeure de la Vilaine"
    assert (await client.get("/api/v1/alerts/mine", headers=first)).json() == []
    again = await client.post(f"/staff/v1/alerts/{alert['id']}/cancel", json={}, headers=staff)
    assert again.status_code == 409

    trail = (await client.get(f"/staff/v1/alerts/{alert['id']}/audit", headers=staff)).json()
    assert [e["action"] for e in trail] == [
        "alert.create",
        "alert.send",
        "alert.update",
        "alert.cancel",
    ]


async def test_quiet_hours_hold_information_but_not_danger(
    client: Client, app: Litestar, worker: DeliveryWorker, webpush_peer: WebPushService
) -> None:
    staff = await _admin(client, app)
    now = datetime.now(UTC).astimezone()
    # Quiet hours covering now, whatever the time of the test run.
    start = f"{(now.hour - 1) % 24:02d}:00"
    end = f"{(now.hour + 2) % 24:02d}:00"
    sleeper = webpush_peer.create_subscription()
    await device(client, places=[INSIDE], webpush=sleeper, quiet=(start, end))
    info = await _create(client, staff, severity="information", headline="Travaux de nuit")
    await _send(client, staff, info["id"])
    await worker.drain()
    assert webpush_peer.records() == []
    [held] = await Delivery.select(Delivery.status, Delivery.next_attempt_at)
    assert held["status"] == "pending"
    assert held["next_attempt_at"] > datetime.now(UTC)

    danger = await _create(client, staff, severity="danger")
    await _send(client, staff, danger["id"])
    await worker.drain()
    [received] = await webpush_peer.wait_for(1)
    assert received.payload["title"].startswith("Danger")


async def test_information_respects_the_daily_cap(
    client: Client, app: Litestar, worker: DeliveryWorker, webpush_peer: WebPushService
) -> None:
    staff = await _admin(client, app)
    headers = await device(client, places=[INSIDE], webpush=webpush_peer.create_subscription())
    for n in range(4):
        alert = await _create(client, staff, severity="information", headline=f"Info {n}")
        await _send(client, staff, alert["id"])
    await worker.drain()
    assert len(await webpush_peer.wait_for(3)) == 3
    await asyncio.sleep(0.2)
    assert len(webpush_peer.records()) == 3  # the fourth is not pushed ...
    inbox = (await client.get("/api/v1/inbox", headers=headers)).json()
    assert len(inbox["items"]) == 4  # ... but it is in the inbox


async def test_followers_of_a_zone_are_reached_without_any_place(
    client: Client, app: Litestar, worker: DeliveryWorker, webpush_peer: WebPushService
) -> None:
    staff = await _admin(client, app)
    zone = await client.post(
        "/staff/v1/zones",
        json={"name": "Quartier des Saules", "code": "saules", "geometry": SQUARE},
        headers=staff,
    )
    assert zone.status_code == 201, zone.text
    zone_id = zone.json()["id"]
    follower_sub = webpush_peer.create_subscription()
    follower = await device(client, webpush=follower_sub)
    followed = await client.put(f"/api/v1/devices/me/zones/{zone_id}", headers=follower)
    assert [z["name"] for z in followed.json()] == ["Quartier des Saules"]
    resident_sub = webpush_peer.create_subscription()
    await device(client, places=[INSIDE], webpush=resident_sub)
    await device(client, places=[OUTSIDE], webpush=webpush_peer.create_subscription())

    preview = await client.post(
        "/staff/v1/alerts/preview",
        json={"area": {"kind": "zones", "zoneIds": [zone_id]}},
        headers=staff,
    )
    assert preview.json() == {"devices": 2, "places": 1}
    alert = await _create(client, staff, area={"kind": "zones", "zoneIds": [zone_id]})
    assert alert["areaDescription"] == "Quartier des Saules"
    await _send(client, staff, alert["id"])
    await worker.drain()
    pushes = await webpush_peer.wait_for(2)
    assert {p.subscription_id for p in pushes} == {follower_sub.id, resident_sub.id}


async def test_a_circle_targets_by_distance(
    client: Client, app: Litestar, worker: DeliveryWorker, webpush_peer: WebPushService
) -> None:
    staff = await _admin(client, app)
    near = webpush_peer.create_subscription()
    await device(client, places=[(48.1105, -1.685)], webpush=near)  # ~55 m from the centre
    await device(client, places=[(48.1150, -1.685)], webpush=webpush_peer.create_subscription())
    area = {"kind": "circle", "center": {"lat": 48.11, "lon": -1.685}, "radiusM": 300}
    preview = await client.post("/staff/v1/alerts/preview", json={"area": area}, headers=staff)
    assert preview.json() == {"devices": 1, "places": 1}


async def test_english_speaking_devices_get_the_translation(
    client: Client, app: Litestar, worker: DeliveryWorker, webpush_peer: WebPushService
) -> None:
    staff = await _admin(client, app)
    tourist = webpush_peer.create_subscription()
    await device(client, places=[INSIDE], webpush=tourist, locale="en")
    alert = await _create(
        client,
        staff,
        translations={
            "en": {"headline": "Vilaine river flood", "instruction": "Leave ground floors."}
        },
    )
    await _send(client, staff, alert["id"])
    await worker.drain()
    [push] = await webpush_peer.wait_for(1)
    assert push.payload["title"] == "Danger : Vilaine river flood"
    assert push.payload["body"] == "Leave ground floors."


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {
                "area": {
                    "kind": "polygon",
                    "geometry": {"type": "Polygon", "coordinates": [[[0, 0]]]},
                }
            },
            "area",
        ),
        ({"expiresAt": "2020-01-01T00:00:00+01:00"}, "expiresAt"),
        (
            {"area": {"kind": "zones", "zoneIds": ["6d0c3f8e-1f0a-4a5e-9a39-3a3f5d1e2b10"]}},
            "area.zoneIds",
        ),
        (
            {"area": {"kind": "circle", "center": {"lat": 40.7, "lon": -74.0}, "radiusM": 500}},
            "area",
        ),
        ({"severity": "apocalypse"}, "severity"),
    ],
)
async def test_bad_alerts_are_refused_clearly(
    client: Client, app: Litestar, change: dict[str, Any], field: str
) -> None:
    staff = await _admin(client, app)
    response = await client.post("/staff/v1/alerts", json=alert_body(**change), headers=staff)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert (await client.get("/staff/v1/alerts", headers=staff)).json() == []


async def test_only_alert_staff_may_prepare_alerts(client: Client, app: Litestar) -> None:
    commune = await make_commune(app)
    citizen = bearer(await sign_up(client))
    agent = bearer(await log_in(client, commune.agent["email"]))
    assert (
        await client.post("/staff/v1/alerts", json=alert_body(), headers=citizen)
    ).status_code == 403
    assert (
        await client.post("/staff/v1/alerts", json=alert_body(), headers=agent)
    ).status_code == 403
    admin = bearer(await log_in(client, commune.admin["email"]))
    granted = await client.patch(
        f"/staff/v1/staff/{commune.agent['id']}", json={"canSendAlerts": True}, headers=admin
    )
    assert granted.json()["canSendAlerts"] is True
    agent = bearer(await log_in(client, commune.agent["email"]))
    assert (
        await client.post("/staff/v1/alerts", json=alert_body(), headers=agent)
    ).status_code == 201
