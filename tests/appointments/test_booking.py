"""A resident books a passport appointment: hold, confirm with ANTS numbers, cancel or move —
no seat ever booked twice, holds expire, bots cannot hoard."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from icalendar import Calendar
from litestar import Litestar

from backend.appointments.ants import AntsClient
from backend.appointments.jobs import expire_holds, offer_waitlist, send_reminders, sync_ants
from backend.appointments.tables import AntsSync, Booking, BookingUnit
from backend.mail.tables import EmailMessage
from tests.alerts.factories import device
from tests.appointments.factories import first_slots, make_site
from tests.factories import Client, bearer, sign_up
from tests.peers.ants import AntsPeer

ALICE, BOB, CLAIRE = "AB12345678", "CD23456789", "EF34567890"


async def _hold(
    client: Client, headers: dict[str, str], site_id: str, slot: dict[str, Any], **extra: Any
):  # type: ignore[no-untyped-def]
    return await client.post(
        "/api/v1/appointments/holds",
        json={"siteId": site_id, "start": slot["start"], "reason": "CNI", **extra},
        headers=headers,
    )


async def _confirm(
    client: Client, headers: dict[str, str], booking_id: str, ids: list[str], **extra: Any
):  # type: ignore[no-untyped-def]
    body = {"antsIds": ids, "name": "Camille Martin", "email": "camille@exemple.fr", **extra}
    return await client.post(
        f"/api/v1/appointments/{booking_id}/confirm", json=body, headers=headers
    )


async def test_search_hold_confirm_then_cancel_by_the_e_mail_link(
    client: Client, app: Litestar, ants_peer: AntsPeer
) -> None:
    setup = await make_site(client, app)
    ants_peer.set_status(ALICE, "validated")
    phone = await device(client)
    slots = await first_slots(client, setup.site_id)
    assert slots and all(s["siteId"] == setup.site_id for s in slots)
    held = await _hold(client, phone, setup.site_id, slots[0])
    assert held.status_code == 201, held.text
    assert held.json()["status"] == "held" and held.json()["holdExpiresAt"]
    # A held slot is no longer offered to others.
    assert slots[0]["start"] not in [s["start"] for s in await first_slots(client, setup.site_id)]

    confirmed = await _confirm(client, phone, held.json()["id"], [" ab12345678 "])
    assert confirmed.status_code == 200, confirmed.text
    appointment = confirmed.json()["appointment"]
    assert appointment["status"] == "confirmed" and appointment["antsIds"] == [ALICE]
    token = confirmed.json()["manageToken"]

    [mail] = await EmailMessage.select().where(EmailMessage.subject.like("Rendez-vous confirmé%"))
    assert token in mail["body_text"]
    assert mail["attachment_type"] == "text/calendar"
    calendar = Calendar.from_ical(mail["attachment"])
    assert str(calendar["METHOD"]) == "REQUEST"
    [event] = calendar.walk("VEVENT")
    assert str(event["UID"]) == f"{appointment['id']}@relais"
    assert int(event["SEQUENCE"]) == 0
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == ["Europe/Paris"]

    # Declared to ANTS after commit, by the worker's sync job.
    assert ants_peer.appointments_of(ALICE) == []
    client_ants = AntsClient(ants_peer.base_url, ants_peer.token)
    assert await sync_ants(client_ants) == 1
    [declared] = ants_peer.appointments_of(ALICE)
    assert declared["meeting_point_id"] == setup.site_id

    # Cancel from the e-mail link, without any login.
    seen = await client.get(f"/api/v1/appointments/by-token/{token}")
    assert seen.json()["id"] == appointment["id"]
    cancelled = await client.post(f"/api/v1/appointments/by-token/{token}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    assert (await client.get(f"/api/v1/appointments/by-token/{token}")).status_code == 404
    cancel_mail = await EmailMessage.select().where(EmailMessage.subject.like("%annulé")).first()
    assert cancel_mail is not None
    cancel_calendar = Calendar.from_ical(cancel_mail["attachment"])
    assert str(cancel_calendar["METHOD"]) == "CANCEL"
    assert int(cancel_calendar.walk("VEVENT")[0]["SEQUENCE"]) == 1
    assert slots[0]["start"] in [s["start"] for s in await first_slots(client, setup.site_id)]
    await sync_ants(client_ants)
    assert ants_peer.appointments_of(ALICE) == []
    await client_ants.aclose()


async def test_the_last_seat_is_booked_once_among_many_concurrent_attempts(
    client: Client, app: Litestar, db: str
) -> None:
    setup = await make_site(client, app)
    [slot, *_] = await first_slots(client, setup.site_id)
    attempts = 200 if db == "postgres" else 60
    phones = [await device(client) for _ in range(attempts)]
    responses = await asyncio.gather(*(_hold(client, p, setup.site_id, slot) for p in phones))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1
    assert statuses.count(409) == attempts - 1
    refusal = next(r for r in responses if r.status_code == 409).json()
    assert refusal["code"] == "slot-taken" and "Choisissez-en un autre" in refusal["detail"]
    assert await Booking.count().where(Booking.status == "held") == 1


async def test_an_expired_hold_frees_the_slot_and_cannot_be_confirmed(
    client: Client, app: Litestar, ants_peer: AntsPeer
) -> None:
    setup = await make_site(client, app)
    ants_peer.set_status(ALICE, "validated")
    first, second = await device(client), await device(client)
    [slot, *_] = await first_slots(client, setup.site_id)
    held = (await _hold(client, first, setup.site_id, slot)).json()
    await Booking.update({Booking.hold_expires_at: datetime.now(UTC) - timedelta(seconds=1)}).where(
        Booking.id == held["id"]
    )
    late = await _confirm(client, first, held["id"], [ALICE])
    assert late.status_code == 409 and late.json()["code"] == "hold-expired"
    assert slot["start"] in [s["start"] for s in await first_slots(client, setup.site_id)]
    taken = await _hold(client, second, setup.site_id, slot)
    assert taken.status_code == 201
    assert await expire_holds() == 0  # already reclaimed when the second resident held it


async def test_pre_request_numbers_are_checked_with_ants(
    client: Client, app: Litestar, ants_peer: AntsPeer
) -> None:
    setup = await make_site(client, app)
    ants_peer.set_status(ALICE, "consumed")
    ants_peer.set_status(BOB, "validated")
    ants_peer.add_appointment(
        BOB, "Mairie de Brest", "brest-1", "2026-12-15 10:00:00", "https://x/1"
    )
    ants_peer.set_status(CLAIRE, "validated")
    phone = await device(client)
    slots = await first_slots(client, setup.site_id, persons=2)
    held = (await _hold(client, phone, setup.site_id, slots[0], persons=2)).json()
    refused = await _confirm(client, phone, held["id"], [ALICE, BOB])
    assert refused.status_code == 422
    body = refused.json()
    assert body["code"] == "pre-request-refused"
    assert [e["field"] for e in body["errors"]] == ["antsIds[0]", "antsIds[1]"]
    assert "déjà servi" in body["errors"][0]["message"]
    assert "Mairie de Brest" in body["errors"][1]["message"]
    one = await _confirm(client, phone, held["id"], [CLAIRE])
    assert one.status_code == 422 and one.json()["errors"][0]["field"] == "antsIds"
    twice = await _confirm(client, phone, held["id"], [CLAIRE, CLAIRE])
    assert twice.status_code == 422
    malformed = await _confirm(client, phone, held["id"], ["AB12", CLAIRE])
    assert malformed.status_code == 422 and malformed.json()["errors"][0]["field"] == "antsIds[0]"
    assert (await Booking.select(Booking.status).first()) == {"status": "held"}


async def test_one_active_appointment_per_pre_request_number(
    client: Client, app: Litestar, ants_peer: AntsPeer
) -> None:
    setup = await make_site(client, app, counters=2)
    ants_peer.set_status(ALICE, "validated")
    first, second = await device(client), await device(client)
    slots = await first_slots(client, setup.site_id)
    one = (await _hold(client, first, setup.site_id, slots[0])).json()
    assert (await _confirm(client, first, one["id"], [ALICE])).status_code == 200
    other_slot = next(s for s in slots if s["start"] != slots[0]["start"])
    two = (await _hold(client, second, setup.site_id, other_slot)).json()
    again = await _confirm(client, second, two["id"], [ALICE], email="autre@exemple.fr")
    assert again.status_code == 422
    assert "déjà un rendez-vous actif" in again.json()["detail"]


async def test_ants_outage_policy(client: Client, app: Litestar, ants_peer: AntsPeer) -> None:
    setup = await make_site(client, app)
    phone = await device(client)
    [slot, *_] = await first_slots(client, setup.site_id)
    held = (await _hold(client, phone, setup.site_id, slot)).json()
    ants_peer.fail_with(503)
    refused = await _confirm(client, phone, held["id"], [ALICE])
    assert refused.status_code == 503
    assert refused.json()["code"] == "ants-unavailable"
    assert "réessayez" in refused.json()["detail"]
    held_still = await Booking.select(Booking.status).first()
    assert held_still == {"status": "held"}  # the slot stays held for a retry


async def test_a_retried_confirmation_books_once(
    client: Client, app: Litestar, ants_peer: AntsPeer
) -> None:
    setup = await make_site(client, app)
    ants_peer.set_status(ALICE, "validated")
    phone = await device(client)
    [slot, *_] = await first_slots(client, setup.site_id)
    held = (await _hold(client, phone, setup.site_id, slot)).json()
    headers = {**phone, "Idempotency-Key": "confirm-7c1e"}
    first, second = await asyncio.gather(
        _confirm(client, headers, held["id"], [ALICE]),
        _confirm(client, headers, held["id"], [ALICE]),
    )
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert await AntsSync.count() == 1
    assert await EmailMessage.count() == 1


async def test_move_updates_the_invitation_and_frees_the_old_slot(
    client: Client, app: Litestar, ants_peer: AntsPeer
) -> None:
    setup = await make_site(client, app)
    ants_peer.set_status(ALICE, "validated")
    session = await sign_up(client)
    me = bearer(session)
    slots = await first_slots(client, setup.site_id)
    held = (await _hold(client, me, setup.site_id, slots[0])).json()
    await _confirm(client, me, held["id"], [ALICE])
    target = slots[5]
    moved = await client.post(
        f"/api/v1/appointments/{held['id']}/move", json={"start": target["start"]}, headers=me
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["start"] == target["start"] and moved.json()["sequence"] == 1
    free = [s["start"] for s in await first_slots(client, setup.site_id)]
    assert slots[0]["start"] in free and target["start"] not in free
    actions = [r["action"] for r in await AntsSync.select(AntsSync.action).order_by(AntsSync.id)]
    assert actions == ["declare", "delete", "declare"]  # a move is delete + create at ANTS
    mine = (await client.get("/api/v1/appointments", headers=me)).json()
    assert [a["id"] for a in mine] == [held["id"]]
    ics = await client.get(f"/api/v1/appointments/{held['id']}/calendar.ics", headers=me)
    assert int(Calendar.from_ical(ics.content).walk("VEVENT")[0]["SEQUENCE"]) == 1


async def test_booking_outside_the_window_is_refused(client: Client, app: Litestar) -> None:
    setup = (
        await make_site(client, app, horizonDays=14)
        if False
        else await make_site(client, app, horizon_days=14)
    )
    phone = await device(client)
    too_soon = datetime.now(UTC) + timedelta(minutes=30)
    too_far = datetime.now(UTC) + timedelta(days=40)
    for when in (too_soon, too_far):
        response = await _hold(client, phone, setup.site_id, {"start": when.isoformat()})
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "outside-booking-window"
    assert await BookingUnit.count() == 0


async def test_a_person_cannot_hoard_appointments(
    client: Client, app: Litestar, ants_peer: AntsPeer
) -> None:
    setup = await make_site(client, app, counters=2)
    for number in (ALICE, BOB, CLAIRE):
        ants_peer.set_status(number, "validated")
    phone = await device(client)
    slots = await first_slots(client, setup.site_id)
    for n, number in enumerate((ALICE, BOB)):
        held = (await _hold(client, phone, setup.site_id, slots[n * 3])).json()
        assert (await _confirm(client, phone, held["id"], [number])).status_code == 200
    held = (await _hold(client, phone, setup.site_id, slots[9])).json()
    third = await _confirm(client, phone, held["id"], [CLAIRE])
    assert third.status_code == 409 and third.json()["code"] == "appointment-limit"


async def test_reminders_are_sent_48h_and_2h_before_once(
    client: Client, app: Litestar, ants_peer: AntsPeer
) -> None:
    setup = await make_site(client, app)
    ants_peer.set_status(ALICE, "validated")
    phone = await device(client)
    [slot, *_] = await first_slots(client, setup.site_id)
    held = (await _hold(client, phone, setup.site_id, slot)).json()
    await _confirm(client, phone, held["id"], [ALICE])
    start = datetime.fromisoformat(slot["start"])
    assert await send_reminders(now=start - timedelta(hours=72)) == 0
    assert await send_reminders(now=start - timedelta(hours=47)) == 1
    assert await send_reminders(now=start - timedelta(hours=46)) == 0
    assert await send_reminders(now=start - timedelta(hours=1, minutes=30)) == 1
    subjects = [r["subject"] for r in await EmailMessage.select(EmailMessage.subject)]
    assert sum(s.startswith("Rappel") for s in subjects) == 2


async def test_the_waiting_list_is_offered_a_freed_slot(
    client: Client, app: Litestar, ants_peer: AntsPeer
) -> None:
    setup = await make_site(client, app, hours=(("09:00", "09:15"),), weekdays=(0,))
    ants_peer.set_status(ALICE, "validated")
    booker, waiter = await device(client), await device(client)
    slots = await first_slots(client, setup.site_id)
    first = slots[0]
    for slot in slots:  # every slot of the next weeks is taken
        held = (await _hold(client, await device(client), setup.site_id, slot)).json()
        assert held["status"] == "held"
    before = (datetime.fromisoformat(first["start"]) + timedelta(days=1)).isoformat()
    joined = await client.post(
        "/api/v1/appointments/waitlist", json={"reason": "CNI", "before": before}, headers=waiter
    )
    assert joined.status_code == 201
    assert await offer_waitlist() == 0
    await Booking.update({Booking.hold_expires_at: datetime.now(UTC) - timedelta(seconds=1)}).where(
        Booking.starts_at == datetime.fromisoformat(first["start"])
    )
    await expire_holds()
    assert await offer_waitlist() == 1
    inbox = (await client.get("/api/v1/inbox", headers=waiter)).json()
    assert inbox["items"][0]["title"] == "Un créneau plus tôt s'est libéré"
    assert booker


async def test_slots_are_right_across_the_spring_daylight_saving_change(
    client: Client, app: Litestar
) -> None:
    setup = await make_site(client, app, horizon_days=150)
    response = await client.get(
        "/api/v1/appointments/slots",
        params={"siteId": setup.site_id, "reason": "CNI", "from": "2027-03-26", "to": "2027-03-30"},
    )
    starts = [s["start"] for s in response.json()]
    # 09:00 in Paris is 08:00 UTC on Friday (winter time) and 07:00 UTC on Tuesday (summer time).
    assert any(s.startswith("2027-03-26T08:00:00") for s in starts)
    assert any(s.startswith("2027-03-30T07:00:00") for s in starts)
    assert not any(s.startswith("2027-03-28") for s in starts)  # closed on Sundays
    assert not any(s.startswith("2027-03-29") for s in starts)  # Easter Monday, a public holiday
