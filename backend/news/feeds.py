"""Atom feed of news and iCalendar feeds of events, readable by common readers and calendars.

Stable UIDs, SEQUENCE growing with each published change, STATUS:CANCELLED for cancelled
events, times in Europe/Paris with its VTIMEZONE: calendar apps update what they imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vText

from alerts.atom import AtomEntry, AtomLink, atom_feed

PARIS = ZoneInfo("Europe/Paris")


def news_atom(
    items: Sequence[dict[str, Any]], *, public_url: str, commune_name: str, self_url: str
) -> bytes:
    """Atom 1.0 of published news, newest first."""
    entries = [
        AtomEntry(
            id=f"urn:uuid:{item['id']}",
            title=item["title"],
            updated=item["updated_at"],
            published=item["published_at"],
            summary=item["summary"] or None,
            links=(
                AtomLink(href=f"{public_url}/api/v1/news/{item['id']}", type="application/json"),
            ),
            language="fr",
        )
        for item in items
    ]
    updated = max((i["updated_at"] for i in items), default=datetime(2026, 1, 1, tzinfo=UTC))
    return atom_feed(
        entries,
        feed_id=self_url,
        title=f"{commune_name} – actualités",
        self_url=self_url,
        updated=updated,
        author=commune_name,
        language="fr",
    )


def _event(item: dict[str, Any], public_url: str) -> Event:
    event = Event()
    event.add("uid", f"{item['id']}@relais")
    event.add("sequence", item["sequence"])
    event.add("dtstamp", item["updated_at"].astimezone(UTC))
    event.add("last-modified", item["updated_at"].astimezone(UTC))
    event.add("summary", item["title"])
    starts = item["starts_at"].astimezone(PARIS)
    ends = (item["ends_at"] or item["starts_at"]).astimezone(PARIS)
    if item["all_day"]:
        event.add("dtstart", starts.date())
        event.add("dtend", ends.date() + timedelta(days=1))  # DTEND is exclusive for dates
    else:
        event.add("dtstart", starts)
        event.add("dtend", ends if ends > starts else starts + timedelta(hours=1))
    description = "\n\n".join(
        part
        for part in (
            item["summary"],
            item["body_markdown"],
            f"Tarif : {item['price']}" if item["price"] else ("Gratuit" if item["free"] else ""),
            f"Accessibilité : {item['accessibility']}" if item["accessibility"] else "",
            f"Inscription : {item['registration_url']}" if item["registration_url"] else "",
        )
        if part
    )
    event.add("description", description)
    location = ", ".join(x for x in (item["place_name"], item["address"]) if x)
    if location:
        event.add("location", vText(location))
    if item["lat"] is not None and item["lon"] is not None:
        event.add("geo", (item["lat"], item["lon"]))
    if item["organiser"]:
        # ORGANIZER needs an address we do not have: the organiser goes in the description.
        event["description"] = f"{description}\n\nOrganisé par {item['organiser']}".strip()
    event.add("url", f"{public_url}/api/v1/news/{item['id']}")
    event.add("status", "CANCELLED" if item["event_status"] == "cancelled" else "CONFIRMED")
    if item["event_status"] == "postponed":
        # iCalendar has no "postponed": say it in the title calendars show.
        event["summary"] = vText(f"[Reporté] {item['title']}")
    return event


def events_ics(items: Sequence[dict[str, Any]], *, public_url: str, name: str) -> bytes:
    """An iCalendar feed of events (one VEVENT each) with the Europe/Paris VTIMEZONE."""
    calendar = Calendar()
    calendar.add("prodid", "-//Relais//Agenda de la commune//FR")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", "Europe/Paris")
    for item in items:
        calendar.add_component(_event(item, public_url))
    calendar.add_missing_timezones()
    return calendar.to_ical()
