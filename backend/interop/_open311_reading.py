"""Open311 GeoReport v2: listing and reading service requests (GET requests.[fmt]), public
fields only."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from backend.demandes.statuses import FINISHED, LABELS, OPEN
from backend.demandes.tables import (
    Demande,
    Photo,
    TimelineEntry,
)
from backend.interop._open311_base import (
    IN_CHUNKS,
    MAX_REQUESTS,
    MAX_SPAN,
    NOTE_KINDS,
    POSTCODE,
    Open311Error,
    bad,
    load_catalogue,
    notice_text,
    parse_datetime,
    w3c,
)
from backend.organisation.tables import Service
from media import MediaStorage


# ---------------------------------------------------------------------------------------------
# GET requests
@dataclass(frozen=True)
class RequestsQuery:
    """Filters of GET requests, already checked."""

    references: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    statuses: tuple[str, ...] = ()  # ours (received, …), from open/closed


def _csv(raw: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in (raw or "").split(",") if v.strip()))


def requests_query(
    *,
    service_request_id: str | None,
    service_code: str | None,
    start_date: str | None,
    end_date: str | None,
    status: str | None,
    tz: ZoneInfo,
    now: datetime | None = None,
) -> RequestsQuery:
    """Check GET requests parameters (empty = absent) and apply the spec's default window.

    `service_request_id` overrides every other filter. Without dates the window is the last
    90 days; with one date it spans 90 days from (or up to) it; with both, at most 90 days.
    """
    references = _csv(service_request_id)
    if references:
        if len(references) > MAX_REQUESTS:
            raise bad(f"service_request_id : {MAX_REQUESTS} identifiants au plus.")
        return RequestsQuery(references=references)
    now = now or datetime.now(UTC)
    start = parse_datetime(start_date, "start_date", tz) if start_date else None
    end = parse_datetime(end_date, "end_date", tz) if end_date else None
    if start is not None and end is not None:
        if end < start:
            raise bad("end_date précède start_date.")
        if end - start > MAX_SPAN:
            raise bad("start_date et end_date couvrent 90 jours au plus.")
    elif start is not None:
        end = start + MAX_SPAN
    elif end is not None:
        start = end - MAX_SPAN
    else:
        start = now - MAX_SPAN
    statuses: list[str] = []
    for value in _csv(status):
        if value.lower() == "open":
            statuses += sorted(OPEN)
        elif value.lower() == "closed":
            statuses += sorted(FINISHED)
        else:
            raise bad(f"status inconnu : {value} (open ou closed).")
    return RequestsQuery(
        codes=_csv(service_code), start=start, end=end, statuses=tuple(dict.fromkeys(statuses))
    )


def _chunks(values: Sequence[Any]) -> Iterable[list[Any]]:
    for index in range(0, len(values), IN_CHUNKS):
        yield list(values[index : index + IN_CHUNKS])


async def _first_photos(ids: Sequence[UUID]) -> dict[UUID, str]:
    found: dict[UUID, str] = {}
    for chunk in _chunks(ids):
        rows = (
            await Photo.select(Photo.demande, Photo.display_key)
            .where(Photo.demande.is_in(chunk) & (Photo.redacted == False))  # noqa: E712
            .order_by(Photo.position)
        )
        for row in rows:
            found.setdefault(row["demande"], row["display_key"])
    return found


async def _status_notes(ids: Sequence[UUID]) -> dict[UUID, str]:
    latest: dict[UUID, str] = {}
    for chunk in _chunks(ids):
        rows = (
            await TimelineEntry.select(TimelineEntry.demande, TimelineEntry.text)
            .where(
                TimelineEntry.demande.is_in(chunk)
                & (TimelineEntry.public == True)  # noqa: E712
                & TimelineEntry.kind.is_in(list(NOTE_KINDS))
                & (TimelineEntry.text != "")
            )
            .order_by(TimelineEntry.id)
        )
        for row in rows:
            latest[row["demande"]] = row["text"]  # oldest first: the last one wins
    return latest


def _zipcode(address: str) -> str | None:
    # BAN labels read "12 Rue des Saules 45150 Les Saules-sur-Loire": the postcode is in there.
    match = POSTCODE.search(address)
    return match.group(1) if match else None


# Only these columns are read: contact and requester columns never leave the database here.
_PUBLIC_COLUMNS = (
    Demande.id,
    Demande.reference,
    Demande.category,
    Demande.service,
    Demande.description,
    Demande.status,
    Demande.lat,
    Demande.lon,
    Demande.address,
    Demande.due_at,
    Demande.created_at,
    Demande.updated_at,
)


async def find_requests(
    commune: dict[str, Any], query: RequestsQuery, storage: MediaStorage, tz: ZoneInfo
) -> list[dict[str, Any]]:
    """GET requests: public, visible demandes of public categories, newest first, ≤ 1000."""
    catalogue = await load_catalogue(commune["id"])
    public = {cid: c for cid, c in catalogue.by_id.items() if c["public"]}
    where: Any = (
        (Demande.commune == commune["id"])
        & (Demande.public == True)  # noqa: E712
        & (Demande.hidden == False)  # noqa: E712
    )
    if query.references:
        where &= Demande.reference.is_in(list(query.references))
        category_ids = list(public)
    else:
        category_ids = [
            cid for cid, c in public.items() if not query.codes or c["slug"] in query.codes
        ]
        if query.start is not None:
            where &= Demande.created_at >= query.start
        if query.end is not None:
            where &= Demande.created_at <= query.end
        if query.statuses:
            where &= Demande.status.is_in(list(query.statuses))
    if not category_ids:
        return []
    # A category made private later hides its past requests too.
    where &= Demande.category.is_in(category_ids)
    rows = (
        await Demande.select(*_PUBLIC_COLUMNS)
        .where(where)
        .order_by(Demande.created_at, ascending=False)
        .limit(MAX_REQUESTS)
    )
    return await _requests_out(rows, public, storage, tz)


async def find_request(
    commune: dict[str, Any], reference: str, storage: MediaStorage, tz: ZoneInfo
) -> list[dict[str, Any]]:
    """GET requests/{id}: a list of one, or 404 (private and hidden ones are not found)."""
    found = await find_requests(commune, RequestsQuery(references=(reference,)), storage, tz)
    if not found:
        raise Open311Error(404, f"service_request_id inconnu : {reference}.")
    return found


async def _requests_out(
    rows: list[dict[str, Any]],
    categories: dict[UUID, dict[str, Any]],
    storage: MediaStorage,
    tz: ZoneInfo,
) -> list[dict[str, Any]]:
    ids = [r["id"] for r in rows]
    photos = await _first_photos(ids)
    notes = await _status_notes(ids)
    service_ids = list({r["service"] for r in rows})
    services_by_id = {
        s["id"]: s["name"]
        for chunk in _chunks(service_ids)
        for s in await Service.select(Service.id, Service.name).where(Service.id.is_in(chunk))
    }
    out = []
    for row in rows:
        category = categories[row["category"]]
        agency = services_by_id.get(row["service"], "")
        address = row["address"] if row["address"] != "-" else ""
        out.append(
            {
                "service_request_id": row["reference"],
                "status": "open" if row["status"] in OPEN else "closed",
                "status_notes": notes.get(row["id"]) or LABELS.get(row["status"], ""),
                "service_name": category["name"],
                "service_code": category["slug"],
                "description": row["description"],
                "agency_responsible": agency,
                "service_notice": notice_text(category, agency),
                "requested_datetime": w3c(row["created_at"], tz),
                "updated_datetime": w3c(row["updated_at"], tz),
                "expected_datetime": w3c(row["due_at"], tz),
                "address": address,
                "address_id": None,
                "zipcode": _zipcode(address),
                "lat": row["lat"],
                "long": row["lon"],
                "media_url": storage.url_for(photos[row["id"]]) if row["id"] in photos else None,
            }
        )
    return out
