"""Filing and reading demandes. A report is a demande with a place and photos."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from backend.accounts.tables import Account
from backend.database import is_unique_violation, transaction
from backend.demandes import notifications
from backend.demandes.categories import category_for_demande, route
from backend.demandes.references import next_reference
from backend.demandes.tables import Demande, Follower, Photo, TimelineEntry
from backend.exceptions import FieldError, InvalidInput, NotFound
from backend.organisation.tables import Service
from geo import GeoError, GeoPoint, cell_of, require_in_france

CHANNELS = ("app", "web", "email", "phone", "counter", "mail")


@dataclass(frozen=True)
class NewDemande:
    """What is needed to file a demande, whatever the channel."""

    commune_id: UUID
    category_id: UUID
    description: str
    channel: str = "app"
    requester_id: UUID | None = None
    device_id: UUID | None = None
    contact_name: str = ""
    contact_email: str = ""
    contact_phone: str = ""
    anonymous: bool = False
    lat: float | None = None
    lon: float | None = None
    location_source: str = ""
    address: str = ""
    photos: list[dict[str, Any]] = field(default_factory=list)  # stored photo keys and sizes
    recorded_by: UUID | None = None  # the agent who typed in a phone, counter or mail demande
    # The request's caller-scoped Idempotency-Key (backend.idempotency.keys), if it had one.
    idempotency_key: str | None = None


def _invalid(field_name: str, message: str) -> InvalidInput:
    return InvalidInput(message, errors=[FieldError(field_name, message)])


def checked_location(lat: float | None, lon: float | None) -> GeoPoint | None:
    """A position in France, or None; InvalidInput otherwise."""
    if lat is None and lon is None:
        return None
    if lat is None or lon is None:
        raise _invalid("lat", "Indiquez la latitude et la longitude.")
    try:
        return require_in_france(GeoPoint(lat, lon))
    except GeoError as exc:
        raise _invalid("lat", str(exc)) from exc


async def requester_email(demande: dict[str, Any]) -> str:
    """Where e-mails about the demande go: the contact address given, else the account's."""
    if demande["contact_email"]:
        return str(demande["contact_email"])
    if demande["requester"]:
        row = await Account.select(Account.email).where(Account.id == demande["requester"]).first()
        return str(row["email"]) if row else ""
    return ""


async def file_demande(new: NewDemande, daily_cap: int) -> dict[str, Any]:
    """Register a demande: reference, routing, due date, timeline, SVE acknowledgments — all in
    one transaction with the notifications and e-mails they produce.

    Filed with an idempotency key already used, it returns the demande filed then and does
    nothing else (a retry whose first answer was lost in a crash).
    """
    if new.idempotency_key is not None and (done := await _filed_with(new.idempotency_key)):
        return done
    if new.channel not in CHANNELS:
        raise _invalid("channel", "Canal inconnu : app, web, email, phone, counter ou mail.")
    category = await category_for_demande(new.commune_id, new.category_id)
    point = checked_location(new.lat, new.lon)
    if category["needs_location"] and point is None:
        raise _invalid(
            "lat", "Placez le signalement sur la carte (ou joignez une photo géolocalisée)."
        )
    anonymous = new.anonymous and category["allows_anonymous"]
    if (
        new.requester_id is None
        and new.device_id is None
        and not (new.contact_email or new.contact_phone)
        and not anonymous
    ):
        raise _invalid(
            "contactEmail",
            "Indiquez une adresse e-mail ou un téléphone pour être tenu(e) informé(e).",
        )
    now = datetime.now(UTC)
    service_id = await route(category, point.lat if point else None, point.lon if point else None)
    demande_id = uuid4()
    try:
        async with transaction():
            reference = await next_reference(now.astimezone().year)
            await Demande.insert(
                Demande(
                    id=demande_id,
                    commune=new.commune_id,
                    reference=reference,
                    channel=new.channel,
                    category=category["id"],
                    description=new.description.strip(),
                    requester=new.requester_id,
                    device=new.device_id,
                    contact_name=new.contact_name,
                    contact_email=new.contact_email.strip().lower(),
                    contact_phone=new.contact_phone,
                    anonymous=anonymous,
                    lat=point.lat if point else None,
                    lon=point.lon if point else None,
                    cell=cell_of(point) if point else None,
                    address=new.address,
                    location_source=new.location_source if point else "",
                    status="received",
                    service=service_id,
                    due_at=now + timedelta(days=category["sla_days"]),
                    public=bool(category["public"] and point is not None),
                    created_at=now,
                    updated_at=now,
                    idempotency_key=new.idempotency_key,
                )
            )
            for position, photo in enumerate(new.photos):
                await Photo.insert(
                    Photo(
                        demande=demande_id,
                        position=position,
                        display_key=photo["display_key"],
                        thumb_key=photo["thumb_key"],
                        width=photo["width"],
                        height=photo["height"],
                    )
                )
            await add_entry(
                demande_id,
                "created",
                text=f"Demande déposée ({new.channel}).",
                status_to="received",
                author=new.recorded_by,
            )
            if new.device_id is not None:
                await Follower.insert(
                    Follower(
                        demande=demande_id,
                        device=new.device_id,
                        account=new.requester_id,
                        follow_key=f"{demande_id}:device:{new.device_id}",
                    )
                )
            demande = await _row(demande_id)
            service = await Service.select().where(Service.id == service_id).first()
            assert service is not None
            registered, receipt = await notifications.acknowledge(
                demande, service, await requester_email(demande), daily_cap
            )
            await add_entry(demande_id, "acknowledgment", text=registered, data={"sve": "AEE"})
            # The service is known at once (automatic routing), so the acknowledgment of receipt
            # is immediate too, and the demande is taken into account.
            await Demande.update({Demande.status: "acknowledged"}).where(Demande.id == demande_id)
            await add_entry(
                demande_id,
                "acknowledgment",
                text=receipt,
                status_from="received",
                status_to="acknowledged",
                data={"sve": "ARE"},
            )
    except Exception as exc:
        # Two runs with one key at once (the middleware's reservation normally prevents it):
        # the unique index let the other one file it.
        if new.idempotency_key is None or not is_unique_violation(exc):
            raise
        if (done := await _filed_with(new.idempotency_key)) is None:
            raise
        return done
    return await _row(demande_id)


async def _filed_with(idempotency_key: str) -> dict[str, Any] | None:
    return await Demande.select().where(Demande.idempotency_key == idempotency_key).first()


async def add_entry(
    demande_id: UUID,
    kind: str,
    *,
    text: str = "",
    public: bool = True,
    status_from: str = "",
    status_to: str = "",
    author: UUID | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Append to the demande's timeline."""
    await TimelineEntry.insert(
        TimelineEntry(
            demande=demande_id,
            kind=kind,
            public=public,
            status_from=status_from,
            status_to=status_to,
            text=text,
            author=author,
            data=data or {},
        )
    )


async def _row(demande_id: UUID) -> dict[str, Any]:
    row = await Demande.select().where(Demande.id == demande_id).first()
    if row is None:
        raise NotFound("Cette demande est introuvable.")
    return row


def _not_found() -> NotFound:
    return NotFound("Cette demande est introuvable ou ne vous est pas accessible.")


async def demande_for_resident(
    demande_id: UUID, account_id: UUID | None, device_id: UUID | None
) -> dict[str, Any]:
    """A demande its requester (account or filing device) may read; anyone else gets 404."""
    row = await Demande.select().where(Demande.id == demande_id).first()
    if row is None:
        raise _not_found()
    mine = (account_id is not None and row["requester"] == account_id) or (
        device_id is not None and row["device"] == device_id
    )
    if not mine:
        raise _not_found()
    return row


async def demandes_of_resident(
    account_id: UUID | None, device_id: UUID | None, limit: int = 50
) -> list[dict[str, Any]]:
    """The resident's own demandes, newest first."""
    condition: Any = None
    if account_id is not None:
        condition = Demande.requester == account_id
    if device_id is not None:
        by_device = Demande.device == device_id
        condition = by_device if condition is None else (condition | by_device)
    if condition is None:
        return []
    return (
        await Demande.select()
        .where(condition)
        .order_by(Demande.created_at, ascending=False)
        .limit(limit)
    )


async def timeline(demande_id: UUID, *, include_internal: bool) -> list[dict[str, Any]]:
    """The demande's timeline, oldest first; internal notes only for staff."""
    query = TimelineEntry.select().where(TimelineEntry.demande == demande_id)
    if not include_internal:
        query = query.where(TimelineEntry.public == True)  # noqa: E712
    return await query.order_by(TimelineEntry.id).output(load_json=True)


async def photos_of(demande_id: UUID, *, include_redacted: bool = False) -> list[dict[str, Any]]:
    """The demande's photos in order (redacted ones hidden from residents and the public)."""
    query = Photo.select().where(Photo.demande == demande_id)
    if not include_redacted:
        query = query.where(Photo.redacted == False)  # noqa: E712
    return await query.order_by(Photo.position)


async def follow(demande_id: UUID, account_id: UUID | None, device_id: UUID | None) -> None:
    """ "Moi aussi": follow a public report (idempotent)."""
    row = await Demande.select().where(Demande.id == demande_id).first()
    if row is None or row["hidden"] or not row["public"]:
        raise NotFound("Ce signalement est introuvable.")
    key = f"{demande_id}:{'account' if account_id else 'device'}:{account_id or device_id}"
    if not await Follower.exists().where(Follower.follow_key == key):
        await Follower.insert(
            Follower(demande=demande_id, account=account_id, device=device_id, follow_key=key)
        )


async def followers_count(demande_id: UUID) -> int:
    """How many residents follow the demande."""
    return await Follower.count().where(Follower.demande == demande_id)
