"""Scheduled work of appointments: reminders, expired holds, ANTS sync, waiting-list offers."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from alerts.outbox import Notification, notify, recipients_of_accounts
from alerts.targeting import recipients_of_devices
from backend.appointments.ants import AntsClient, AntsRejected, AntsUnavailable
from backend.appointments.schedule import free_slots, load_schedules
from backend.appointments.tables import AntsSync, Booking, BookingUnit, Site, WaitlistEntry
from backend.database import transaction
from backend.mail.outbox import queue_email

REMINDERS = (
    ("reminded_48h", timedelta(hours=48), "dans deux jours"),
    ("reminded_2h", timedelta(hours=2), "dans deux heures"),
)


async def _recipients(row: dict[str, Any]) -> list[Any]:
    found = await recipients_of_accounts([row["account"]] if row["account"] else [])
    if row["device"]:
        found += await recipients_of_devices([row["device"]])
    return found


async def send_reminders(now: datetime | None = None) -> int:
    """48 h and 2 h before: a notification and an e-mail, once each."""
    now = now or datetime.now(UTC)
    sent = 0
    for flag, ahead, words in REMINDERS:
        column = getattr(Booking, flag)
        due = await Booking.select().where(
            (Booking.status == "confirmed")
            & (column == False)  # noqa: E712
            & (Booking.starts_at > now)
            & (Booking.starts_at <= now + ahead)
        )
        for booking in due:
            site = await Site.select().where(Site.id == booking["site"]).first()
            if site is None:
                continue
            local = booking["starts_at"].astimezone(ZoneInfo(site["timezone"]))
            when = local.strftime("%d/%m à %Hh%M")
            async with transaction():
                claimed = (
                    await Booking.update({column: True})
                    .where((Booking.id == booking["id"]) & (column == False))  # noqa: E712
                    .returning(Booking.id)
                )
                if not claimed:
                    continue  # another worker sent it
                await notify(
                    Notification(
                        kind="appointment",
                        subject=f"appointment:{booking['id']}",
                        title=f"Rappel : rendez-vous {words}",
                        body=f"Le {when}, {site['name']}. Un empêchement ? Annulez-le.",
                        level="avertissement",
                        data={"appointmentId": str(booking["id"])},
                        personal=True,
                    ),
                    await _recipients(booking),
                    now=now,
                )
                if booking["email"]:
                    await queue_email(
                        booking["email"],
                        f"Rappel : rendez-vous le {when}",
                        f"Bonjour,\n\nRappel : votre rendez-vous est le {when}, {site['name']}, "
                        f"{site['address']}.\n\nUn empêchement ? Annulez-le pour libérer le "
                        "créneau.\n",
                    )
                sent += 1
    return sent


async def expire_holds(now: datetime | None = None) -> int:
    """Holds past their time give their slot back."""
    now = now or datetime.now(UTC)
    rows = await Booking.select(Booking.id).where(
        (Booking.status == "held") & (Booking.hold_expires_at <= now)
    )
    ids = [r["id"] for r in rows]
    if ids:
        async with transaction():
            await BookingUnit.delete().where(BookingUnit.booking.is_in(ids))
            await Booking.update({Booking.status: "expired"}).where(
                Booking.id.is_in(ids) & (Booking.status == "held")
            )
    return len(ids)


async def sync_ants(client: AntsClient, now: datetime | None = None, batch: int = 50) -> int:
    """Send pending declarations/removals to ANTS; retry with backoff while it is down."""
    now = now or datetime.now(UTC)
    rows = (
        await AntsSync.select()
        .where((AntsSync.status == "pending") & (AntsSync.next_attempt_at <= now))
        .order_by(AntsSync.id)
        .limit(batch)
    )
    done = 0
    for row in rows:
        try:
            if row["action"] == "declare":
                await client.declare(
                    row["application_id"],
                    row["meeting_point"],
                    row["meeting_point_id"],
                    row["appointment_date"],
                    row["management_url"],
                )
            else:
                await client.delete(
                    row["application_id"],
                    row["meeting_point"],
                    row["meeting_point_id"],
                    row["appointment_date"],
                )
        except AntsUnavailable as exc:
            wait = min(3600.0, 30 * 2 ** row["attempts"]) * random.uniform(0.5, 1.0)
            await AntsSync.update(
                {
                    AntsSync.attempts: row["attempts"] + 1,
                    AntsSync.next_attempt_at: now + timedelta(seconds=wait),
                    AntsSync.last_error: str(exc)[:200],
                }
            ).where(AntsSync.id == row["id"])
            break  # ANTS is down: the rest waits for the next tick
        except AntsRejected as exc:
            await AntsSync.update(
                {AntsSync.status: "failed", AntsSync.last_error: str(exc)[:200]}
            ).where(AntsSync.id == row["id"])
            continue
        await AntsSync.update({AntsSync.status: "done"}).where(AntsSync.id == row["id"])
        done += 1
    return done


async def offer_waitlist(now: datetime | None = None) -> int:
    """Tell waiting residents when a slot earlier than their limit is free (once a day at most)."""
    now = now or datetime.now(UTC)
    entries = await WaitlistEntry.select().where(
        (WaitlistEntry.active == True)  # noqa: E712
        & (WaitlistEntry.before > now)
        & (
            WaitlistEntry.offered_at.is_null()
            | (WaitlistEntry.offered_at < now - timedelta(days=1))
        )
    )
    offered = 0
    for entry in entries:
        query = Site.select().where(Site.active == True)  # noqa: E712
        if entry["site"] is not None:
            query = query.where(Site.id == entry["site"])
        sites = await query
        first_day = now.date()
        last_day = entry["before"].date()
        found = None
        for schedule in await load_schedules(sites, first_day, last_day, now):
            free = [
                s
                for s in free_slots(
                    schedule, entry["reason"], entry["persons"], first_day, last_day, now
                )
                if s.start < entry["before"]
            ]
            if free:
                found = (schedule.site, free[0])
                break
        if found is None:
            continue
        site, slot = found
        local = slot.start.astimezone(ZoneInfo(site["timezone"])).strftime("%d/%m à %Hh%M")
        async with transaction():
            await WaitlistEntry.update({WaitlistEntry.offered_at: now}).where(
                WaitlistEntry.id == entry["id"]
            )
            await notify(
                Notification(
                    kind="appointment",
                    subject=f"waitlist:{entry['id']}",
                    title="Un créneau plus tôt s'est libéré",
                    body=f"{site['name']}, le {local}. Réservez-le vite dans l'application.",
                    data={"siteId": str(site["id"]), "start": slot.start.isoformat()},
                    personal=True,
                ),
                await _recipients(entry),
                now=now,
            )
            if entry["email"]:
                await queue_email(
                    entry["email"],
                    "Un créneau plus tôt s'est libéré",
                    f"Bonjour,\n\nUn créneau s'est libéré : {site['name']}, le {local}.\n"
                    "Réservez-le dans l'application tant qu'il est disponible.\n",
                )
        offered += 1
    return offered
