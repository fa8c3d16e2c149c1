"""Scheduled work of the tracking core."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from backend.database import transaction
from backend.demandes import notifications
from backend.demandes.service import add_entry
from backend.demandes.statuses import OPEN
from backend.demandes.tables import Demande
from backend.organisation.tables import Service
from geo import Geocoder, GeocodingUnavailable

REMIND_EVERY = timedelta(days=1)


async def remind_overdue(now: datetime | None = None) -> int:
    """Relances: one e-mail per service listing its open demandes past their due date, at most
    daily per demande. Returns how many demandes were reminded."""
    now = now or datetime.now(UTC)
    rows = await Demande.select(
        Demande.id, Demande.reference, Demande.service, Demande.due_at
    ).where(
        Demande.status.is_in(list(OPEN))
        & (Demande.due_at < now)
        & (Demande.reminded_at.is_null() | (Demande.reminded_at < now - REMIND_EVERY))
    )
    by_service: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_service[row["service"]].append(row)
    for service_id, items in by_service.items():
        service = await Service.select().where(Service.id == service_id).first()
        if service is None:
            continue
        lines = "\n".join(
            f"- {r['reference']} (échéance {r['due_at'].date().isoformat()})" for r in items
        )
        async with transaction():
            await notifications.tell_service(
                service,
                f"Relance : {len(items)} demande(s) en retard",
                f"Ces demandes ont dépassé leur délai de traitement :\n\n{lines}\n",
            )
            for row in items:
                await Demande.update({Demande.reminded_at: now}).where(Demande.id == row["id"])
                await add_entry(
                    row["id"], "reminder", public=False, text="Relance envoyée au service."
                )
    return len(rows)


async def close_resolved(reopen_days: int, now: datetime | None = None) -> int:
    """Close resolved demandes once the requester can no longer reopen them."""
    now = now or datetime.now(UTC)
    rows = await Demande.select(Demande.id).where(
        (Demande.status == "resolved") & (Demande.resolved_at < now - timedelta(days=reopen_days))
    )
    for row in rows:
        async with transaction():
            changed = (
                await Demande.update(
                    {Demande.status: "closed", Demande.closed_at: now, Demande.updated_at: now}
                )
                .where((Demande.id == row["id"]) & (Demande.status == "resolved"))
                .returning(Demande.id)
            )
            if changed:
                await add_entry(row["id"], "status", status_from="resolved", status_to="closed")
    return len(rows)


async def fill_missing_addresses(geocoder: Geocoder, limit: int = 50) -> int:
    """Reverse-geocode reports filed while the geocoder was down."""
    rows = (
        await Demande.select(Demande.id, Demande.lat, Demande.lon)
        .where(Demande.lat.is_not_null() & (Demande.address == ""))
        .limit(limit)
    )
    filled = 0
    for row in rows:
        try:
            found = await geocoder.reverse(row["lat"], row["lon"])
        except GeocodingUnavailable:
            break  # still down: try again at the next tick
        await Demande.update({Demande.address: found.label if found else "-"}).where(
            Demande.id == row["id"]
        )
        filled += 1
    return filled
