"""Agents run the day (planning, check-in, no-show, blocks, phone bookings); the national ANTS
search lists our slots through the editor API."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from litestar import Litestar

from tests.alerts.factories import device
from tests.appointments.factories import first_slots, make_site
from tests.appointments.test_booking import ALICE, BOB, _confirm, _hold
from tests.factories import Client, bearer, log_in, sign_up
from tests.peers.ants import AntsPeer

HUB = {"X-HUB-RDV-AUTH-TOKEN": "hub-token-de-test"}


async def test_the_day_planning_check_in_no_show_and_phone_bookings(
    client: Client, app: Litestar, ants_peer: AntsPeer
) -> None:
    setup = await make_site(client, app)
    ants_peer.set_status(ALICE, "validated")
    ants_peer.set_status(BOB, "validated")
    phone = await device(client)
    slots = await first_slots(client, setup.site_id)
    held = (await _hold(client, phone, setup.site_id, slots[0])).json()
    await _confirm(client, phone, held["id"], [ALICE])
    agent = setup.admin
    by_phone = await client.post(
        f"/staff/v1/appointments/sites/{setup.site_id}/bookings",
        json={
            "start": slots[1]["start"],
            "reason": "CNI",
            "antsIds": [BOB],
            "name": "Jean Durand",
            "phone": "02 99 00 00 00",
        },
        headers=agent,
    )
    assert by_phone.status_code == 201, by_phone.text
    day = datetime.fromisoformat(slots[0]["start"]).astimezone(ZoneInfo("Europe/Paris")).date()
    planning = await client.get(
        f"/staff/v1/appointments/sites/{setup.site_id}/planning",
        params={"date": day.isoformat()},
        headers=agent,
    )
    assert [p["appointment"]["antsIds"] for p in planning.json()][:2] == [[ALICE], [BOB]]
    checked = await client.post(
        f"/staff/v1/appointments/bookings/{held['id']}/check-in", headers=agent
    )
    assert checked.json()["status"] == "checked_in"
    absent = await client.post(
        f"/staff/v1/appointments/bookings/{by_phone.json()['appointment']['id']}/no-show",
        headers=agent,
    )
    assert absent.json()["status"] == "no_show"


async def test_blocks_refuse_booked_periods_and_remove_slots(client: Client, app: Litestar) -> None:
    setup = await make_site(client, app)
    slots = await first_slots(client, setup.site_id)
    blocked = await client.post(
        f"/staff/v1/appointments/sites/{setup.site_id}/blocks",
        json={"counterId": setup.counters[0], "start": slots[2]["start"], "minutes": 30},
        headers=setup.admin,
    )
    assert blocked.status_code == 201, blocked.text
    free = [s["start"] for s in await first_slots(client, setup.site_id)]
    assert slots[2]["start"] not in free and slots[0]["start"] in free
    held = (await _hold(client, await device(client), setup.site_id, slots[0])).json()
    conflict = await client.post(
        f"/staff/v1/appointments/sites/{setup.site_id}/blocks",
        json={"counterId": setup.counters[0], "start": held["start"], "minutes": 15},
        headers=setup.admin,
    )
    assert conflict.status_code == 409


async def test_residents_cannot_use_staff_routes(client: Client, app: Litestar) -> None:
    setup = await make_site(client, app)
    citizen = bearer(await sign_up(client))
    response = await client.post(
        f"/staff/v1/appointments/sites/{setup.site_id}/counters",
        json={"name": "X"},
        headers=citizen,
    )
    assert response.status_code == 403
    comms = bearer(await log_in(client, setup.commune.communication["email"]))
    assert (
        await client.post(
            "/staff/v1/appointments/sites",
            json={"name": "X", "lat": 48.1, "lon": -1.6},
            headers=comms,
        )
    ).status_code == 403


async def test_the_national_search_reads_our_slots_with_paris_wall_clock_times(
    client: Client, app: Litestar, ants_peer: AntsPeer
) -> None:
    setup = await make_site(client, app)
    assert (await client.get("/api/ants/getManagedMeetingPoints")).status_code == 401
    points = (await client.get("/api/ants/getManagedMeetingPoints", headers=HUB)).json()
    assert points[0]["id"] == setup.site_id
    assert {
        "name",
        "longitude",
        "latitude",
        "public_entry_address",
        "zip_code",
        "city_name",
    } <= set(points[0])
    slots = await first_slots(client, setup.site_id)
    first_day = datetime.fromisoformat(slots[0]["start"]).date()
    answer = await client.get(
        "/api/ants/availableTimeSlots",
        params=[
            ("meeting_point_ids", setup.site_id),
            ("start_date", first_day.isoformat()),
            ("end_date", first_day.isoformat()),
            ("reason", "CNI"),
            ("documents_number", "1"),
        ],
        headers=HUB,
    )
    assert answer.status_code == 200, answer.text
    [first, *_] = answer.json()[setup.site_id]
    local = datetime.fromisoformat(slots[0]["start"]).astimezone(ZoneInfo("Europe/Paris"))
    assert first["datetime"] == local.strftime("%Y-%m-%dT%H:%MZ")  # wall clock, literal Z
    assert first["callback_url"].startswith("http")
    inverted = await client.get(
        "/api/ants/availableTimeSlots",
        params=[
            ("meeting_point_ids", setup.site_id),
            ("start_date", "2026-12-10"),
            ("end_date", "2026-12-01"),
        ],
        headers=HUB,
    )
    assert inverted.status_code == 400 and inverted.json()["error"]["code"] == 400

    ants_peer.set_status(ALICE, "validated")
    phone = await device(client)
    held = (await _hold(client, phone, setup.site_id, slots[0])).json()
    await _confirm(client, phone, held["id"], [ALICE])
    found = await client.get(
        "/api/ants/searchApplicationIds",
        params=[("application_ids", ALICE), ("application_ids", BOB)],
        headers=HUB,
    )
    body = found.json()
    assert body[BOB] == []
    assert body[ALICE][0]["datetime"] == local.strftime("%Y-%m-%dT%H:%MZ")
    assert body[ALICE][0]["meeting_point"] == "Mairie de Rennes – Hôtel de ville"
