"""The communications officer publishes the Christmas market; residents get it once, at the right
time, in their feed, agenda and calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
from icalendar import Calendar
from litestar import Litestar

from alerts.delivery import DeliveryWorker
from alerts.tables import Delivery
from backend.news.service import publish_due
from tests.alerts.factories import SQUARE, device
from tests.demandes.factories import jpeg
from tests.factories import Client, bearer, log_in, make_commune, sign_up
from tests.peers.webpush_service import WebPushService

MARKET_START = datetime(2026, 12, 12, 10, 0, tzinfo=UTC)


async def _staff(client: Client, app: Litestar) -> tuple[Any, dict[str, str], str]:
    commune = await make_commune(app)
    admin = bearer(await log_in(client, commune.admin["email"]))
    zone = await client.post(
        "/staff/v1/zones",
        json={"name": "Centre-ville", "code": "centre", "geometry": SQUARE},
        headers=admin,
    )
    comms = bearer(await log_in(client, commune.communication["email"]))
    return commune, comms, zone.json()["id"]


async def _market(
    client: Client, comms: dict[str, str], zone_id: str, **extra: Any
) -> dict[str, Any]:
    body = {
        "kind": "event",
        "title": "Marché de Noël",
        "summary": "Place de la Mairie, du 12 au 14 décembre.",
        "bodyMarkdown": "Chalets, **vin chaud** et [programme](https://rennes.fr/noel).",
        "topics": ["culture"],
        "zoneIds": [zone_id],
        "push": True,
        "startsAt": MARKET_START.isoformat(),
        "endsAt": (MARKET_START + timedelta(days=2, hours=9)).isoformat(),
        "placeName": "Place de la Mairie",
        "lat": 48.111,
        "lon": -1.68,
        "free": True,
        "accessibility": "Accès PMR par la rue de l'Horloge.",
        **extra,
    }
    response = await client.post("/staff/v1/news", json=body, headers=comms)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_a_scheduled_event_is_published_on_time_and_pushed_once(
    client: Client, app: Litestar, worker: DeliveryWorker, webpush_peer: WebPushService
) -> None:
    commune, comms, zone_id = await _staff(client, app)
    zone_sub, topic_sub, both_sub, other_sub = (
        webpush_peer.create_subscription() for _ in range(4)
    )
    zone_follower = await device(client, webpush=zone_sub)
    await client.put(f"/api/v1/devices/me/zones/{zone_id}", headers=zone_follower)
    topic_follower = await device(client, webpush=topic_sub)
    await client.put(
        "/api/v1/devices/me/topics", json={"topics": ["culture"]}, headers=topic_follower
    )
    both = await device(client, webpush=both_sub)
    await client.put(f"/api/v1/devices/me/zones/{zone_id}", headers=both)
    await client.put("/api/v1/devices/me/topics", json={"topics": ["culture"]}, headers=both)
    other = await device(client, webpush=other_sub)
    await client.put("/api/v1/devices/me/topics", json={"topics": ["travaux"]}, headers=other)

    event = await _market(client, comms, zone_id)
    publish_at = datetime.now(UTC) + timedelta(hours=1)
    scheduled = await client.post(
        f"/staff/v1/news/{event['id']}/schedule",
        json={"publishAt": publish_at.isoformat()},
        headers=comms,
    )
    assert scheduled.json()["state"] == "scheduled"
    feed = await client.get("/api/v1/events", params={"communeId": str(commune.id)})
    assert feed.json() == []  # not yet published: never leaks
    assert (await client.get(f"/api/v1/news/{event['id']}")).status_code == 404

    assert await publish_due(3, now=publish_at - timedelta(minutes=1)) == 0
    assert await publish_due(3, now=publish_at) == 1
    await Delivery.update({Delivery.next_attempt_at: datetime.now(UTC)}).where(
        Delivery.status == "pending"
    )  # the clock of the test jumped an hour ahead: the pushes are due now
    await worker.drain()
    pushes = await webpush_peer.wait_for(3)
    assert sorted(p.subscription_id for p in pushes) == sorted(
        [zone_sub.id, topic_sub.id, both_sub.id]
    )
    assert pushes[0].payload["title"] == "Marché de Noël"
    assert pushes[0].urgency == "normal"

    agenda = (await client.get("/api/v1/events", params={"communeId": str(commune.id)})).json()
    assert [e["title"] for e in agenda] == ["Marché de Noël"]
    # The agenda lists summaries; the body is in the single-item view.
    assert "bodyHtml" not in agenda[0] and agenda[0]["summary"] == event["summary"]
    stats = (await client.get(f"/staff/v1/news/{event['id']}/stats", headers=comms)).json()
    assert stats == {"targeted": 3, "delivered": 3, "opens": 0, "views": 0}
    one = (await client.get(f"/api/v1/news/{event['id']}")).json()
    assert one["bodyHtml"].startswith("<p>Chalets, <strong>vin chaud</strong>")
    inbox = (await client.get("/api/v1/inbox", headers=both)).json()
    await client.post(f"/api/v1/inbox/{inbox['items'][0]['id']}/read", headers=both)
    stats = (await client.get(f"/staff/v1/news/{event['id']}/stats", headers=comms)).json()
    assert stats["views"] == 1 and stats["opens"] == 1


async def test_quiet_hours_and_the_daily_cap_hold_news_pushes(
    client: Client, app: Litestar, worker: DeliveryWorker, webpush_peer: WebPushService
) -> None:
    commune, comms, _zone_id = await _staff(client, app)
    now = datetime.now(UTC).astimezone()
    sleeper_sub, busy_sub = webpush_peer.create_subscription(), webpush_peer.create_subscription()
    sleeper = await device(
        client,
        webpush=sleeper_sub,
        quiet=(f"{(now.hour - 1) % 24:02d}:00", f"{(now.hour + 2) % 24:02d}:00"),
    )
    busy = await device(client, webpush=busy_sub)
    for headers in (sleeper, busy):
        await client.put("/api/v1/devices/me/topics", json={"topics": ["culture"]}, headers=headers)
    for n in range(4):
        item = await client.post(
            "/staff/v1/news",
            json={"kind": "news", "title": f"Nouvelle n° {n}", "topics": ["culture"], "push": True},
            headers=comms,
        )
        published = await client.post(f"/staff/v1/news/{item.json()['id']}/publish", headers=comms)
        assert published.status_code == 200
    await worker.drain()
    received = await webpush_peer.wait_for(3)
    assert {p.subscription_id for p in received} == {busy_sub.id}  # the sleeper waits until morning
    inbox = (await client.get("/api/v1/inbox", headers=busy)).json()
    assert len(inbox["items"]) == 4  # the fourth is in the inbox, not pushed
    assert commune


async def test_markdown_is_sanitised(client: Client, app: Litestar) -> None:
    _, comms, _ = await _staff(client, app)
    created = await client.post(
        "/staff/v1/news",
        json={
            "kind": "news",
            "title": "Piège",
            "bodyMarkdown": (
                "<script>alert(1)</script> <img src=x onerror=alert(1)> "
                "[clic](javascript:alert(1)) [ok](https://exemple.fr) <a href='javascript:x'>a</a>"
            ),
        },
        headers=comms,
    )
    html = created.json()["bodyHtml"]
    assert "<script" not in html and "<img" not in html and 'href="javascript' not in html
    assert '<a href="https://exemple.fr" rel="noopener noreferrer">ok</a>' in html


async def test_feeds_answer_304_until_something_changes(client: Client, app: Litestar) -> None:
    commune, comms, _ = await _staff(client, app)
    for title in ("Travaux rue de Brest", "Fermeture de la piscine"):
        item = await client.post(
            "/staff/v1/news", json={"kind": "news", "title": title}, headers=comms
        )
        await client.post(f"/staff/v1/news/{item.json()['id']}/publish", headers=comms)
    params = {"communeId": str(commune.id)}
    first = await client.get("/api/v1/news", params=params)
    assert [i["title"] for i in first.json()["items"]] == [
        "Fermeture de la piscine",
        "Travaux rue de Brest",
    ]
    etag = first.headers["etag"]
    again = await client.get("/api/v1/news", params=params, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    atom = await client.get("/feeds/rennes/news.atom")
    parsed = feedparser.parse(atom.content)
    assert not parsed.bozo
    assert [e.title for e in parsed.entries] == ["Fermeture de la piscine", "Travaux rue de Brest"]
    assert (
        await client.get("/feeds/rennes/news.atom", headers={"If-None-Match": atom.headers["etag"]})
    ).status_code == 304

    pinned = await client.post(
        "/staff/v1/news",
        json={"kind": "news", "title": "Élections : bureaux de vote", "pinned": True},
        headers=comms,
    )
    await client.post(f"/staff/v1/news/{pinned.json()['id']}/publish", headers=comms)
    changed = await client.get("/api/v1/news", params=params, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["items"][0]["title"] == "Élections : bureaux de vote"
    page = (await client.get("/api/v1/news", params={**params, "limit": 1})).json()
    assert [i["title"] for i in page["items"]] == [
        "Élections : bureaux de vote",
        "Fermeture de la piscine",
    ]
    rest = (
        await client.get(
            "/api/v1/news", params={**params, "limit": 1, "cursor": page["nextCursor"]}
        )
    ).json()
    assert [i["title"] for i in rest["items"]] == ["Travaux rue de Brest"]


async def test_a_cancelled_event_is_cancelled_in_calendars_and_followers_are_told(
    client: Client, app: Litestar, worker: DeliveryWorker, webpush_peer: WebPushService
) -> None:
    commune, comms, zone_id = await _staff(client, app)
    follower_sub = webpush_peer.create_subscription()
    follower = await device(client, webpush=follower_sub)
    await client.put(f"/api/v1/devices/me/zones/{zone_id}", headers=follower)
    event = await _market(client, comms, zone_id)
    await client.post(f"/staff/v1/news/{event['id']}/publish", headers=comms)
    feed = await client.get("/feeds/rennes/events.ics")
    calendar = Calendar.from_ical(feed.content)
    [vevent] = calendar.walk("VEVENT")
    assert str(vevent["UID"]) == f"{event['id']}@relais"
    assert int(vevent["SEQUENCE"]) == 0
    assert vevent.decoded("DTSTART").tzinfo is not None
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == ["Europe/Paris"]

    cancelled = await client.post(
        f"/staff/v1/news/{event['id']}/event-status",
        json={"status": "cancelled", "message": "Annulé en raison de la tempête."},
        headers=comms,
    )
    assert cancelled.json()["eventStatus"] == "cancelled"
    again = await client.get(
        "/feeds/rennes/events.ics", headers={"If-None-Match": feed.headers["etag"]}
    )
    assert again.status_code == 200
    [vevent] = Calendar.from_ical(again.content).walk("VEVENT")
    assert str(vevent["STATUS"]) == "CANCELLED"
    assert int(vevent["SEQUENCE"]) == 1
    assert str(vevent["UID"]) == f"{event['id']}@relais"
    single = await client.get(f"/api/v1/events/{event['id']}/calendar.ics")
    assert single.headers["content-type"].startswith("text/calendar")
    assert str(Calendar.from_ical(single.content).walk("VEVENT")[0]["STATUS"]) == "CANCELLED"
    await worker.drain()
    titles = sorted(p.payload["title"] for p in await webpush_peer.wait_for(2))
    assert titles == ["Annulé : Marché de Noël", "Marché de Noël"]
    assert commune


async def test_the_agenda_filters_by_dates_topic_and_distance(
    client: Client, app: Litestar
) -> None:
    commune, comms, zone_id = await _staff(client, app)
    market = await _market(client, comms, zone_id, push=False)
    concert = await _market(
        client,
        comms,
        zone_id,
        title="Concert à Brest",
        topics=["musique"],
        lat=48.39,
        lon=-4.49,
        push=False,
        startsAt=(MARKET_START + timedelta(days=30)).isoformat(),
        endsAt=(MARKET_START + timedelta(days=30, hours=2)).isoformat(),
    )
    for item in (market, concert):
        await client.post(f"/staff/v1/news/{item['id']}/publish", headers=comms)
    base = {
        "communeId": str(commune.id),
        "from": "2026-12-01T00:00:00+01:00",
        "to": "2027-02-01T00:00:00+01:00",
    }
    everything = (await client.get("/api/v1/events", params=base)).json()
    assert [e["title"] for e in everything] == ["Marché de Noël", "Concert à Brest"]
    december = (
        await client.get("/api/v1/events", params={**base, "to": "2026-12-31T00:00:00+01:00"})
    ).json()
    assert [e["title"] for e in december] == ["Marché de Noël"]
    music = (await client.get("/api/v1/events", params={**base, "topics": "musique"})).json()
    assert [e["title"] for e in music] == ["Concert à Brest"]
    near = (
        await client.get(
            "/api/v1/events", params={**base, "lat": 48.11, "lon": -1.68, "radiusM": 2000}
        )
    ).json()
    assert [e["title"] for e in near] == ["Marché de Noël"]


async def test_images_go_through_the_media_pipeline(client: Client, app: Litestar) -> None:
    _, comms, zone_id = await _staff(client, app)
    event = await _market(client, comms, zone_id)
    response = await client.post(
        f"/staff/v1/news/{event['id']}/images",
        files=[
            ("image", ("affiche.jpg", jpeg(gps=(48.11, -1.68)), "image/jpeg")),
            ("alt", (None, "Affiche du marché")),
        ],
        headers=comms,
    )
    assert response.status_code == 201, response.text
    image = response.json()["images"][0]
    assert image["alt"] == "Affiche du marché"
    served = await client.get(image["url"].removeprefix("http://127.0.0.1:8000"))
    assert served.status_code == 200 and b"GPS" not in served.content[:2000]
    refused = await client.post(
        f"/staff/v1/news/{event['id']}/images",
        files=[("image", ("script.jpg", b"<script>alert(1)</script>", "image/jpeg"))],
        headers=comms,
    )
    assert refused.status_code == 422


async def test_only_communication_staff_publish(client: Client, app: Litestar) -> None:
    commune, comms, _ = await _staff(client, app)
    citizen = bearer(await sign_up(client))
    agent = bearer(await log_in(client, commune.agent["email"]))
    body = {"kind": "news", "title": "Annonce"}
    assert (await client.post("/staff/v1/news", json=body, headers=citizen)).status_code == 403
    assert (await client.post("/staff/v1/news", json=body, headers=agent)).status_code == 403
    assert (await client.post("/staff/v1/news", json=body, headers=comms)).status_code == 201
    event_without_date = await client.post(
        "/staff/v1/news", json={"kind": "event", "title": "Sans date"}, headers=comms
    )
    assert event_without_date.status_code == 422


async def test_unpublication_takes_items_out_of_feeds(client: Client, app: Litestar) -> None:
    commune, comms, _ = await _staff(client, app)
    item = await client.post(
        "/staff/v1/news", json={"kind": "news", "title": "Éphémère"}, headers=comms
    )
    now = datetime.now(UTC)
    await client.post(
        f"/staff/v1/news/{item.json()['id']}/schedule",
        json={"publishAt": now.isoformat(), "unpublishAt": (now + timedelta(days=1)).isoformat()},
        headers=comms,
    )
    await publish_due(3, now=now + timedelta(seconds=1))
    params = {"communeId": str(commune.id)}
    assert len((await client.get("/api/v1/news", params=params)).json()["items"]) == 1
    await publish_due(3, now=now + timedelta(days=1, seconds=1))
    assert (await client.get("/api/v1/news", params=params)).json()["items"] == []


async def test_repeated_questions_are_answered_alike_and_changes_show_at_once(
    client: Client, app: Litestar
) -> None:
    commune, comms, zone_id = await _staff(client, app)
    item = await client.post(
        "/staff/v1/news", json={"kind": "news", "title": "Travaux rue de Brest"}, headers=comms
    )
    news_id = item.json()["id"]
    await client.post(f"/staff/v1/news/{news_id}/publish", headers=comms)
    event = await _market(client, comms, zone_id, push=False)
    await client.post(f"/staff/v1/news/{event['id']}/publish", headers=comms)
    feed = {"communeId": str(commune.id), "limit": "5"}
    agenda = {"communeId": str(commune.id), "from": "2026-12-01T00:00:00+00:00"}
    kept = ("etag", "cache-control", "content-type", "content-length")
    for path, params in (("/api/v1/news", feed), ("/api/v1/events", agenda)):
        first, second = [await client.get(path, params=params) for _ in range(2)]
        assert second.status_code == 200 and second.content == first.content
        assert {k: second.headers.get(k) for k in kept} == {k: first.headers.get(k) for k in kept}
        assert second.headers["x-request-id"] != first.headers["x-request-id"]
        again = await client.get(
            path, params=params, headers={"If-None-Match": first.headers["etag"]}
        )
        assert again.status_code == 304 and again.headers["etag"] == first.headers["etag"]
    # A bad credential is refused as before, not answered from what was kept.
    refused = await client.get("/api/v1/news", params=feed, headers={"X-Device-Token": "nope"})
    assert refused.status_code == 401

    await client.patch(
        f"/staff/v1/news/{news_id}", json={"title": "Travaux rue de Nantes"}, headers=comms
    )
    assert [
        i["title"] for i in (await client.get("/api/v1/news", params=feed)).json()["items"]
    ] == ["Travaux rue de Nantes"]
    await client.post(
        f"/staff/v1/news/{event['id']}/event-status", json={"status": "cancelled"}, headers=comms
    )
    [listed] = (await client.get("/api/v1/events", params=agenda)).json()
    assert listed["eventStatus"] == "cancelled"
    await client.post(f"/staff/v1/news/{news_id}/archive", headers=comms)
    await client.post(f"/staff/v1/news/{event['id']}/archive", headers=comms)
    assert (await client.get("/api/v1/news", params=feed)).json()["items"] == []
    assert (await client.get("/api/v1/events", params=agenda)).json() == []
