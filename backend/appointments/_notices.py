"""What a booking change tells: the resident (push, in-app, e-mail with an iCalendar
invitation) and the ANTS (declarations and removals queued in the same transaction)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from alerts.outbox import Notification, notify, recipients_of_accounts
from alerts.targeting import recipients_of_devices
from backend.appointments import slots
from backend.appointments.calendar import invitation
from backend.appointments.tables import AntsSync
from backend.mail.outbox import queue_email


def management_url(public_url: str, booking_id: UUID) -> str:
    """Where ANTS sends the resident to manage the appointment (the app's booking page)."""
    return f"{public_url}/api/v1/appointments/{booking_id}"


def _paris(value: datetime, site: dict[str, Any]) -> str:
    return slots.ants_appointment_date(value, ZoneInfo(site["timezone"]))


async def queue_ants(
    action: str, booking: dict[str, Any], site: dict[str, Any], management_url: str
) -> None:
    for application_id in booking["ants_ids"]:
        await AntsSync.insert(
            AntsSync(
                booking=booking["id"],
                action=action,
                application_id=application_id,
                meeting_point=site["name"],
                meeting_point_id=str(site["id"]),
                appointment_date=_paris(booking["starts_at"], site),
                management_url=management_url,
            )
        )


def local_when(booking: dict[str, Any], site: dict[str, Any]) -> str:
    local = booking["starts_at"].astimezone(ZoneInfo(site["timezone"]))
    return local.strftime("%d/%m/%Y à %Hh%M")


async def tell(
    booking: dict[str, Any],
    site: dict[str, Any],
    title: str,
    body: str,
    *,
    email_subject: str,
    email_body: str,
    organiser: str,
    cancelled: bool = False,
) -> None:
    recipients = await recipients_of_accounts([booking["account"]] if booking["account"] else [])
    if booking["device"]:
        recipients += await recipients_of_devices([booking["device"]])
    await notify(
        Notification(
            kind="appointment",
            subject=f"appointment:{booking['id']}",
            title=title,
            body=body,
            level="avertissement",
            data={"appointmentId": str(booking["id"])},
            collapse_key=f"rdv-{booking['id'].hex[:20]}",
            personal=True,
        ),
        recipients,
    )
    if booking["email"]:
        ics = invitation(booking, site, organiser=organiser, cancelled=cancelled)
        await queue_email(
            booking["email"],
            email_subject,
            email_body,
            attachment=("rendez-vous.ics", "text/calendar", ics),
        )
