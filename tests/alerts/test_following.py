"""Residents choose what they follow: places (by pin or address), a live position, zones,
topics, quiet hours; and register their push credential."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.places import purge_stale_live_positions
from alerts.tables import Device, Place
from tests.alerts.factories import INSIDE, device
from tests.factories import Client
from tests.peers.ban import BanPeer
from tests.peers.webpush_service import WebPushService


async def test_a_place_can_be_given_by_address(client: Client) -> None:
    headers = await device(client)
    response = await client.post(
        "/api/v1/devices/me/places",
        json={"label": "Maison", "address": "12 rue des Saules Les Saules-sur-Loire"},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    place = response.json()
    assert place["address"].startswith("12 Rue des Saules")
    assert abs(place["lat"] - 47.85262) < 1e-4
    listing = await client.get("/api/v1/devices/me/places", headers=headers)
    assert [p["label"] for p in listing.json()] == ["Maison"]


async def test_an_unknown_address_and_a_geocoder_outage_are_explained(
    client: Client, ban_peer: BanPeer
) -> None:
    headers = await device(client)
    unknown = await client.post(
        "/api/v1/devices/me/places",
        json={"label": "Maison", "address": "42 avenue Imaginaire Nullepart"},
        headers=headers,
    )
    assert unknown.status_code == 422
    assert "introuvable" in unknown.json()["detail"]
    ban_peer.fail_with(500)
    down = await client.post(
        "/api/v1/devices/me/places",
        json={"label": "Maison", "address": "12 rue des Saules"},
        headers=headers,
    )
    assert down.status_code == 503
    assert "Placez le point sur la carte" in down.json()["detail"]
    # A pin still works while the geocoder is down.
    pinned = await client.post(
        "/api/v1/devices/me/places",
        json={"label": "Maison", "lat": 47.8526, "lon": 2.0615},
        headers=headers,
    )
    assert pinned.status_code == 201


async def test_places_outside_france_and_without_position_are_refused(client: Client) -> None:
    headers = await device(client)
    new_york = await client.post(
        "/api/v1/devices/me/places",
        json={"label": "NY", "lat": 40.71, "lon": -74.0},
        headers=headers,
    )
    assert new_york.status_code == 422
    assert "en dehors de la France" in new_york.json()["detail"]
    nothing = await client.post("/api/v1/devices/me/places", json={"label": "?"}, headers=headers)
    assert nothing.status_code == 422
    assert nothing.json()["errors"][0]["field"] == "address"
    bad_lat = await client.post(
        "/api/v1/devices/me/places", json={"label": "x", "lat": 123, "lon": 2}, headers=headers
    )
    assert bad_lat.status_code == 422
    assert bad_lat.json()["errors"][0]["field"] == "lat"


async def test_places_of_another_device_are_invisible(client: Client) -> None:
    mine = await device(client, places=[INSIDE])
    theirs = await device(client)
    place_id = (await client.get("/api/v1/devices/me/places", headers=mine)).json()[0]["id"]
    response = await client.delete(f"/api/v1/devices/me/places/{place_id}", headers=theirs)
    assert response.status_code == 404
    assert await Place.count() == 1
    deleted = await client.delete(f"/api/v1/devices/me/places/{place_id}", headers=mine)
    assert deleted.status_code == 204
    assert await Place.count() == 0


async def test_only_the_latest_live_position_is_kept_and_it_fades(client: Client) -> None:
    headers = await device(client)
    for lat in (48.11, 48.112, 48.114):
        response = await client.put(
            "/api/v1/devices/me/live-position", json={"lat": lat, "lon": -1.68}, headers=headers
        )
        assert response.status_code == 200
    live = [p for p in (await client.get("/api/v1/devices/me/places", headers=headers)).json()]
    assert [(p["kind"], p["lat"]) for p in live] == [("live", 48.114)]
    assert await purge_stale_live_positions(datetime.now(UTC) + timedelta(hours=49)) == 1
    assert await Place.count() == 0
    await client.put(
        "/api/v1/devices/me/live-position", json={"lat": 48.11, "lon": -1.68}, headers=headers
    )
    cleared = await client.delete("/api/v1/devices/me/live-position", headers=headers)
    assert cleared.status_code == 204
    assert await Place.count() == 0


async def test_topics_and_quiet_hours(client: Client) -> None:
    headers = await device(client)
    topics = await client.put(
        "/api/v1/devices/me/topics",
        json={"topics": ["travaux", "culture", "travaux"]},
        headers=headers,
    )
    assert topics.json() == {"topics": ["culture", "travaux"]}
    bad = await client.put("/api/v1/devices/me/topics", json={"topics": ["Été!"]}, headers=headers)
    assert bad.status_code == 422
    quiet = await client.patch(
        "/api/v1/devices/me", json={"quietStart": "22:30", "quietEnd": "07:00"}, headers=headers
    )
    assert quiet.status_code == 200
    half = await client.patch("/api/v1/devices/me", json={"quietStart": "22:30"}, headers=headers)
    assert half.status_code == 422
    wrong = await client.patch(
        "/api/v1/devices/me", json={"quietStart": "25:00", "quietEnd": "07:00"}, headers=headers
    )
    assert wrong.status_code == 422
    cleared = await client.patch(
        "/api/v1/devices/me", json={"quietStart": None, "quietEnd": None}, headers=headers
    )
    assert cleared.status_code == 200
    row = await Device.select(Device.quiet_start).first()
    assert row is not None and row["quiet_start"] is None


async def test_push_credentials_register_replace_and_move(
    client: Client, webpush_peer: WebPushService
) -> None:
    subscription = webpush_peer.create_subscription()
    phone = await device(client, webpush=subscription)
    status = await client.put(
        "/api/v1/devices/me/push",
        json={"kind": "fcm", "token": "fcm-token-replacement-00000"},
        headers=phone,
    )
    assert status.json()["kind"] == "fcm"
    # The same token presented by a reinstalled app moves to the new device.
    reinstalled = await device(client, fcm_token="fcm-token-replacement-00000")
    rows = await Device.select(Device.push_token).where(Device.push_token.is_not_null())
    assert len(rows) == 1
    assert reinstalled
    incomplete = await client.put(
        "/api/v1/devices/me/push",
        json={"kind": "webpush", "endpoint": "https://push.example/x"},
        headers=phone,
    )
    assert incomplete.status_code == 422
    cleared = await client.delete("/api/v1/devices/me/push", headers=phone)
    assert cleared.status_code == 204


async def test_the_pwa_gets_the_vapid_public_key(client: Client) -> None:
    response = await client.get("/api/v1/push/vapid-public-key")
    key = response.json()["publicKey"]
    assert len(key) == 87  # 65-byte uncompressed P-256 point, base64url without padding
    assert (await client.get("/api/v1/push/vapid-public-key")).json()["publicKey"] == key


async def test_zones_can_be_listed_followed_and_unfollowed(client: Client) -> None:
    headers = await device(client)
    assert (await client.get("/api/v1/zones")).json() == []
    unknown = await client.put(
        "/api/v1/devices/me/zones/6d0c3f8e-1f0a-4a5e-9a39-3a3f5d1e2b10", headers=headers
    )
    assert unknown.status_code == 404


async def test_the_inbox_pages_and_marks_read(client: Client) -> None:
    from alerts.outbox import Notification, notify
    from alerts.targeting import Recipient
    from backend.database import transaction

    headers = await device(client)
    device_id = (await client.get("/api/v1/devices/me", headers=headers)).json()["id"]
    from uuid import UUID

    async with transaction():
        for n in range(5):
            await notify(
                Notification(kind="news", subject=f"news:{n}", title=f"Nouvelle {n}", body="..."),
                [Recipient(UUID(device_id), None)],
            )
    first = (await client.get("/api/v1/inbox?limit=2", headers=headers)).json()
    assert [i["title"] for i in first["items"]] == ["Nouvelle 4", "Nouvelle 3"]
    assert first["unread"] == 5
    second = (
        await client.get(f"/api/v1/inbox?limit=2&cursor={first['nextCursor']}", headers=headers)
    ).json()
    assert [i["title"] for i in second["items"]] == ["Nouvelle 2", "Nouvelle 1"]
    read = await client.post(f"/api/v1/inbox/{first['items'][0]['id']}/read", headers=headers)
    assert read.status_code == 204
    assert (await client.get("/api/v1/inbox", headers=headers)).json()["unread"] == 4
    other = await device(client)
    foreign = await client.post(f"/api/v1/inbox/{first['items'][1]['id']}/read", headers=other)
    assert foreign.status_code == 404
    too_many = await client.get("/api/v1/inbox?limit=500", headers=headers)
    assert too_many.status_code == 400 or too_many.status_code == 422


async def test_a_forgotten_device_leaves_no_deliveries_places_or_follows(db: str) -> None:
    from alerts.devices import forget_device, register_device, set_topics
    from alerts.outbox import Notification, notify
    from alerts.tables import Delivery, TopicFollow
    from alerts.targeting import Recipient
    from backend.database import transaction

    gone = (await register_device("android", "fr", "1.0", None)).device["id"]
    kept = (await register_device("web", "fr", "1.0", None)).device["id"]
    for device_id in (gone, kept):
        await Place.insert(Place(device=device_id, label="Maison", lat=47.85, lon=2.06, cell=1))
        await set_topics(device_id, ["travaux"])
    async with transaction():
        await notify(
            Notification(kind="news", subject="news:1", title="Travaux", body="Rue barrée."),
            [Recipient(gone, None), Recipient(kept, "fcm")],
        )

    await forget_device(gone)

    assert await Device.count().where(Device.id == gone) == 0
    assert await Delivery.count().where(Delivery.device == gone) == 0
    assert await Place.count().where(Place.device == gone) == 0
    assert await TopicFollow.count().where(TopicFollow.device == gone) == 0
    assert [r["device"] for r in await Delivery.select(Delivery.device)] == [kept]
    assert await Place.count().where(Place.device == kept) == 1
