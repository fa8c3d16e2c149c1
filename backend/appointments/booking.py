"""Booking an appointment: hold a slot, confirm with the ANTS numbers, cancel or move.

Every invariant is the database's: a seat cannot be taken twice (unique 5-minute units per
counter), a pre-request number has one active appointment (unique active key), a hold expires
by itself (its units are ignored, then reclaimed), a confirmation is a conditional update.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from backend.accounts.tokens import digest
from backend.appointments import slots
from backend.appointments._notices import local_when, management_url, queue_ants, tell
from backend.appointments._prerequests import check_ants, check_limit, normalised_ids
from backend.appointments._reading import (
    Contact,
    Identity,
    booking_by_token,
    booking_for,
    get_booking,
    my_bookings,
)
from backend.appointments.ants import AntsClient
from backend.appointments.calendar import REASONS
from backend.appointments.errors import (
    HoldExpired,
    OutsideBookingWindow,
    PreRequestRefused,
    SlotTaken,
)
from backend.appointments.schedule import free_slots, get_site, load_schedules, policy_of
from backend.appointments.tables import Booking, BookingAnts, BookingUnit, WaitlistEntry
from backend.database import is_unique_violation, transaction
from backend.exceptions import FieldError, InvalidInput

__all__ = [
    "Confirmed",
    "Contact",
    "Identity",
    "booking_by_token",
    "booking_for",
    "cancel",
    "confirm",
    "get_booking",
    "hold",
    "join_waitlist",
    "management_url",
    "move",
    "my_bookings",
    "units_of",
]


def units_of(counter_id: UUID, start: datetime, end: datetime) -> list[str]:
    """The unique unit keys a booking of this counter and period holds."""
    slot = slots.Slot(start, end, counter_id)
    return [f"{counter_id}:{unit.astimezone(UTC).isoformat()}" for unit in slots.units(slot)]


async def _reclaim_expired_holds(now: datetime) -> None:
    """Expired holds give their units back (also done by a job; here so a slot is free at once)."""
    expired = await Booking.select(Booking.id).where(
        (Booking.status == "held") & (Booking.hold_expires_at <= now)
    )
    ids = [r["id"] for r in expired]
    if ids:
        await BookingUnit.delete().where(BookingUnit.booking.is_in(ids))
        await Booking.update({Booking.status: "expired"}).where(
            Booking.id.is_in(ids) & (Booking.status == "held")
        )


async def _take(
    site: dict[str, Any],
    start: datetime,
    reason: str,
    persons: int,
    counter_id: UUID | None,
    now: datetime,
) -> slots.Slot:
    """The free slot starting at `start` (on the given counter, or the first free one)."""
    zone = ZoneInfo(site["timezone"])
    opens, closes = slots.bookable_window(now, policy_of(site))
    if start < opens:
        raise OutsideBookingWindow(
            "Ce créneau est trop proche pour être réservé en ligne : choisissez-en un plus tard "
            "ou appelez la mairie."
        )
    if start >= closes:
        raise OutsideBookingWindow(
            "Ce créneau n'est pas encore ouvert à la réservation : les créneaux sont publiés "
            f"{site['horizon_days']} jours à l'avance, à {site['release_time']}."
        )
    day = start.astimezone(zone).date()
    [schedule] = await load_schedules([site], day, day, now)
    for slot in free_slots(schedule, reason, persons, day, day, now):
        if slot.start == start and (counter_id is None or slot.counter_id == counter_id):
            return slot
    raise SlotTaken("Ce créneau n'est plus disponible. Choisissez-en un autre.")


async def hold(
    site_id: UUID,
    start: datetime,
    reason: str,
    persons: int,
    who: Identity,
    *,
    counter_id: UUID | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Hold a slot for a few minutes while the resident fills in the form."""
    now = now or datetime.now(UTC)
    if start.tzinfo is None:
        raise InvalidInput(
            "Indiquez l'heure avec son fuseau (ex. 2026-12-03T09:15:00+01:00).",
            errors=[FieldError("start", "Fuseau horaire manquant.")],
        )
    site = await get_site(site_id)
    slot = await _take(site, start.astimezone(UTC), reason, persons, counter_id, now)
    booking_id = uuid4()
    try:
        async with transaction():
            await _reclaim_expired_holds(now)
            if who.account_id is not None or who.device_id is not None:
                # One hold at a time per resident: a new one releases the previous.
                mine = (
                    (Booking.account == who.account_id)
                    if who.account_id
                    else (Booking.device == who.device_id)
                )
                previous = await Booking.select(Booking.id).where(mine & (Booking.status == "held"))
                ids = [r["id"] for r in previous]
                if ids:
                    await BookingUnit.delete().where(BookingUnit.booking.is_in(ids))
                    await Booking.update({Booking.status: "expired"}).where(Booking.id.is_in(ids))
            await Booking.insert(
                Booking(
                    id=booking_id,
                    site=site_id,
                    counter=slot.counter_id,
                    starts_at=slot.start,
                    ends_at=slot.end,
                    reason=reason,
                    persons=persons,
                    status="held",
                    hold_expires_at=now + timedelta(minutes=site["hold_minutes"]),
                    account=who.account_id,
                    device=who.device_id,
                    source="staff" if who.staff else "app",
                )
            )
            await BookingUnit.insert(
                *[
                    BookingUnit(booking=booking_id, unit_key=key)
                    for key in units_of(slot.counter_id, slot.start, slot.end)
                ]
            )
    except Exception as exc:
        if is_unique_violation(exc):
            raise SlotTaken(
                "Ce créneau vient d'être réservé par quelqu'un d'autre. Choisissez-en un autre."
            ) from exc
        raise
    return await get_booking(booking_id)


@dataclass(frozen=True)
class Confirmed:
    """A confirmed booking and the secret of its cancel/move link (shown once)."""

    booking: dict[str, Any]
    token: str


async def confirm(
    booking_id: UUID,
    who: Identity,
    ants_ids: list[str],
    contact: Contact,
    *,
    client: AntsClient,
    outage_policy: str,
    limit: int,
    public_url: str,
    organiser: str,
    now: datetime | None = None,
) -> Confirmed:
    """Confirm a held slot with one validated ANTS number per person."""
    now = now or datetime.now(UTC)
    booking = await booking_for(booking_id, who)
    if booking["status"] != "held" or booking["hold_expires_at"] <= now:
        raise HoldExpired(
            "Le créneau n'est plus réservé pour vous (délai dépassé) : choisissez-en un nouveau."
        )
    ids = normalised_ids(ants_ids, booking["persons"])
    email = contact.email.strip().lower()
    if email:
        await check_limit(booking, email, limit, now)
    verified = await check_ants(ids, client, outage_policy)
    site = await get_site(booking["site"])
    token = secrets.token_urlsafe(24)
    link = f"{public_url}/api/v1/appointments/by-token/{token}"
    try:
        async with transaction():
            confirmed = (
                await Booking.update(
                    {
                        Booking.status: "confirmed",
                        Booking.confirmed_at: now,
                        Booking.hold_expires_at: None,
                        Booking.ants_ids: ids,
                        Booking.name: contact.name,
                        Booking.email: email,
                        Booking.phone: contact.phone,
                        Booking.cancel_token_hash: digest(token),
                    }
                )
                .where(
                    (Booking.id == booking_id)
                    & (Booking.status == "held")
                    & (Booking.hold_expires_at > now)
                )
                .returning(Booking.id)
            )
            if not confirmed:
                raise HoldExpired(
                    "Le créneau n'est plus réservé pour vous : choisissez-en un nouveau."
                )
            for application_id in ids:
                await BookingAnts.insert(
                    BookingAnts(
                        booking=booking_id, application_id=application_id, active_key=application_id
                    )
                )
            booking = await get_booking(booking_id)
            await queue_ants("declare", booking, site, management_url(public_url, booking_id))
            when = local_when(booking, site)
            reason = REASONS[booking["reason"]]
            await tell(
                booking,
                site,
                "Rendez-vous confirmé",
                f"{reason.capitalize()} le {when}, {site['name']}.",
                email_subject=f"Rendez-vous confirmé le {when} – {site['name']}",
                email_body=(
                    f"Bonjour,\n\nVotre rendez-vous ({reason}) est confirmé le {when}, "
                    f"{site['name']}, {site['address']} {site['zip_code']} {site['city']}.\n\n"
                    f"Numéro(s) de pré-demande : {', '.join(ids)}.\n\n"
                    f"Pour annuler ou déplacer ce rendez-vous : {link}\n\n"
                    "Un empêchement ? Annulez au plus tôt : le créneau sera proposé à une "
                    "autre personne.\n"
                    + ("" if verified else "\n(Vérification ANTS à compléter par la mairie.)\n")
                ),
                organiser=site["email"] or "ne-pas-repondre@commune.invalid",
            )
    except Exception as exc:
        if is_unique_violation(exc):
            raise PreRequestRefused(
                "Un de ces numéros de pré-demande a déjà un rendez-vous actif : annulez-le "
                "d'abord.",
                errors=[FieldError("antsIds", "Numéro déjà utilisé pour un autre rendez-vous.")],
            ) from exc
        raise
    return Confirmed(await get_booking(booking_id), token)


async def _release(booking: dict[str, Any]) -> None:
    await BookingUnit.delete().where(BookingUnit.booking == booking["id"])
    await BookingAnts.update({BookingAnts.active_key: None}).where(
        BookingAnts.booking == booking["id"]
    )


async def cancel(
    booking: dict[str, Any], *, public_url: str, organiser: str, by_staff: bool = False
) -> dict[str, Any]:
    """Cancel: the slot is free at once, ANTS is told, the resident gets a CANCEL invitation."""
    now = datetime.now(UTC)
    site = await get_site(booking["site"])
    async with transaction():
        changed = (
            await Booking.update(
                {
                    Booking.status: "cancelled",
                    Booking.cancelled_at: now,
                    Booking.sequence: Booking.sequence + 1,
                    Booking.cancel_token_hash: None,
                }
            )
            .where((Booking.id == booking["id"]) & Booking.status.is_in(["held", "confirmed"]))
            .returning(Booking.id)
        )
        if not changed:
            raise InvalidInput("Ce rendez-vous n'est plus annulable.")
        await _release(booking)
        if booking["status"] == "confirmed":
            cancelled = await get_booking(booking["id"])
            await queue_ants("delete", booking, site, "")
            when = local_when(booking, site)
            await tell(
                cancelled,
                site,
                "Rendez-vous annulé",
                f"Votre rendez-vous du {when} est annulé."
                + (" (annulation par la mairie)" if by_staff else ""),
                email_subject=f"Rendez-vous du {when} annulé",
                email_body=(
                    f"Bonjour,\n\nVotre rendez-vous du {when}, {site['name']}, est annulé.\n"
                ),
                organiser=site["email"] or "ne-pas-repondre@commune.invalid",
                cancelled=True,
            )
    return await get_booking(booking["id"])


async def move(
    booking: dict[str, Any],
    new_start: datetime,
    *,
    counter_id: UUID | None,
    public_url: str,
    organiser: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Move a confirmed appointment to another slot of the same site, in one transaction."""
    now = now or datetime.now(UTC)
    if booking["status"] != "confirmed":
        raise InvalidInput("Seul un rendez-vous confirmé peut être déplacé.")
    site = await get_site(booking["site"])
    slot = await _take(
        site, new_start.astimezone(UTC), booking["reason"], booking["persons"], counter_id, now
    )
    try:
        async with transaction():
            await BookingUnit.delete().where(BookingUnit.booking == booking["id"])
            await BookingUnit.insert(
                *[
                    BookingUnit(booking=booking["id"], unit_key=k)
                    for k in units_of(slot.counter_id, slot.start, slot.end)
                ]
            )
            await queue_ants("delete", booking, site, "")
            await Booking.update(
                {
                    Booking.starts_at: slot.start,
                    Booking.ends_at: slot.end,
                    Booking.counter: slot.counter_id,
                    Booking.sequence: Booking.sequence + 1,
                    Booking.reminded_48h: False,
                    Booking.reminded_2h: False,
                }
            ).where(Booking.id == booking["id"])
            moved = await get_booking(booking["id"])
            await queue_ants("declare", moved, site, management_url(public_url, booking["id"]))
            when = local_when(moved, site)
            await tell(
                moved,
                site,
                "Rendez-vous déplacé",
                f"Nouveau créneau : le {when}, {site['name']}.",
                email_subject=f"Rendez-vous déplacé au {when}",
                email_body=(
                    f"Bonjour,\n\nVotre rendez-vous est déplacé au {when}, {site['name']}.\n"
                ),
                organiser=organiser,
            )
    except Exception as exc:
        if is_unique_violation(exc):
            raise SlotTaken("Ce créneau vient d'être pris. Choisissez-en un autre.") from exc
        raise
    return await get_booking(booking["id"])


async def join_waitlist(
    who: Identity, site_id: UUID | None, reason: str, persons: int, before: datetime, email: str
) -> dict[str, Any]:
    """Ask to be offered an earlier slot when one frees up."""
    entry_id = uuid4()
    await WaitlistEntry.insert(
        WaitlistEntry(
            id=entry_id,
            site=site_id,
            reason=reason,
            persons=persons,
            before=before,
            account=who.account_id,
            device=who.device_id,
            email=email.strip().lower(),
        )
    )
    row = await WaitlistEntry.select().where(WaitlistEntry.id == entry_id).first()
    assert row is not None
    return row
