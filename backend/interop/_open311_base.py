"""Open311 GeoReport v2: what the discovery, filing and reading rules share (errors in the
spec's terms, W3C dates, limits, the commune's service catalogue)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from backend.demandes.tables import Category

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
PATH = "/open311/v2"
MAX_DESCRIPTION = 4000
MAX_SPAN = timedelta(days=90)
MAX_REQUESTS = 1000
MAX_MEDIA_URLS = 10


# Before any category exists, discovery still needs a sortable changeset.
FIRST_CHANGESET = datetime(2026, 1, 1, tzinfo=UTC)


# Timeline kinds whose public text explains the current status (status_notes).
NOTE_KINDS = ("reply", "status")
IN_CHUNKS = 500  # ids per IN (...) list: well under SQLite's bound on query parameters
PHONE = re.compile(r"[0-9+ ().-]*")  # as the app's contact phone
POSTCODE = re.compile(r"\b(\d{5})\b")
_OFFSET_WITH_SPACE = re.compile(r"^(.*T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")


class Open311Error(Exception):
    """A refusal in the spec's terms: HTTP status and a description for the person."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def bad(description: str) -> Open311Error:
    return Open311Error(400, description)


# ---------------------------------------------------------------------------------------------
# Dates
def w3c(value: datetime | None, tz: ZoneInfo) -> str | None:
    """A W3C/ISO-8601 date-time with its offset in civil time (2026-03-02T14:05:00+01:00)."""
    if value is None:
        return None
    return value.astimezone(tz).isoformat(timespec="seconds")


def parse_datetime(raw: str, name: str, tz: ZoneInfo) -> datetime:
    """A W3C date-time from a query string; a date or a time without offset is civil time.

    A `+` in an offset that the client forgot to URL-encode arrives as a space: it is put back.
    """
    text = raw.strip()
    if match := _OFFSET_WITH_SPACE.match(text):
        text = f"{match.group(1)}+{match.group(2)}"
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise bad(
            f"{name} invalide : date et heure W3C attendues, par exemple 2026-01-31T00:00:00Z."
        ) from exc
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


@dataclass(frozen=True)
class Catalogue:
    """The commune's categories: every row by id, and the leaf ones offered as services."""

    by_id: dict[UUID, dict[str, Any]]
    services: list[dict[str, Any]]

    def by_code(self, code: str) -> dict[str, Any] | None:
        return next((c for c in self.services if c["slug"] == code), None)


async def load_catalogue(commune_id: UUID) -> Catalogue:
    rows = (
        await Category.select()
        .where(Category.commune == commune_id)
        .order_by(Category.position)
        .order_by(Category.name)
    )
    # A category with active children is a group (Voirie), not something one files under.
    parents = {r["parent"] for r in rows if r["active"] and r["parent"] is not None}
    services = [r for r in rows if r["active"] and r["id"] not in parents]
    return Catalogue({r["id"]: r for r in rows}, services)


def notice_text(category: dict[str, Any], service_name: str) -> str:
    days = category["sla_days"]
    return (
        f"Transmis au service {service_name} de la mairie ; délai de traitement visé : "
        f"{days} jour{'s' if days > 1 else ''}."
    )
