"""iCalendar invitations of appointments: stable UID, SEQUENCE growing on change, Paris zone."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vCalAddress, vText

REASONS = {
    "CNI": "carte nationale d'identité",
    "PASSPORT": "passeport",
    "CNI-PASSPORT": "carte d'identité et passeport",
}


def invitation(
    booking: dict[str, Any], site: dict[str, Any], *, organiser: str, cancelled: bool = False
) -> str:
    """METHOD:REQUEST for a new or moved appointment, METHOD:CANCEL when cancelled."""
    zone = ZoneInfo(site["timezone"])
    calendar = Calendar()
    calendar.add("prodid", "-//Relais//Rendez-vous titres d'identité//FR")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancelled else "REQUEST")
    event = Event()
    event.add("uid", f"{booking['id']}@relais")
    event.add("sequence", booking["sequence"])
    event.add("dtstamp", datetime.now(UTC))
    event.add("dtstart", booking["starts_at"].astimezone(zone))
    event.add("dtend", booking["ends_at"].astimezone(zone))
    reason = REASONS.get(booking["reason"], booking["reason"])
    people = f" ({booking['persons']} personnes)" if booking["persons"] > 1 else ""
    event.add("summary", f"Rendez-vous {reason}{people} – {site['name']}")
    event.add(
        "description",
        "Apportez vos pièces justificatives et le numéro de pré-demande ANTS : "
        + ", ".join(booking["ants_ids"]),
    )
    event.add(
        "location",
        vText(", ".join(x for x in (site["address"], site["zip_code"], site["city"]) if x)),
    )
    event.add("geo", (site["lat"], site["lon"]))
    organizer = vCalAddress(f"mailto:{parseaddr(organiser)[1] or organiser}")
    organizer.params["cn"] = vText(site["name"])
    event.add("organizer", organizer)
    if booking["email"]:
        attendee = vCalAddress(f"mailto:{booking['email']}")
        attendee.params["cn"] = vText(booking["name"] or booking["email"])
        attendee.params["role"] = vText("REQ-PARTICIPANT")
        event.add("attendee", attendee)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical().decode()
