"""Communes, their services, and the staff who work for them."""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from uuid import UUID

from backend.accounts.service import STAFF_ROLES, TokenSettings, create_account
from backend.accounts.tables import Account, StaffAssignment
from backend.audit.service import record
from backend.database import is_unique_violation, transaction
from backend.exceptions import Conflict, FieldError, InvalidInput, NotFound
from backend.organisation.tables import Commune, Service


def slugify(text: str) -> str:
    """`État civil` → `etat-civil`."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "service"


async def create_commune(
    name: str, insee_code: str, address: str = "", phone: str = "", email: str = ""
) -> dict[str, Any]:
    """Create a commune (CLI and demo data)."""
    commune = Commune(
        name=name,
        insee_code=insee_code,
        slug=slugify(name),
        address=address,
        phone=phone,
        email=email,
    )
    await commune.save()
    return await get_commune(commune.id)


async def get_commune(commune_id: UUID) -> dict[str, Any]:
    """The commune row, or NotFound."""
    row = await Commune.select().where(Commune.id == commune_id).first()
    if row is None:
        raise NotFound("Cette commune est introuvable.")
    return row


async def first_commune() -> dict[str, Any] | None:
    """The oldest commune (a single-commune installation has only one)."""
    return await Commune.select().order_by(Commune.created_at).first()


async def list_services(commune_id: UUID) -> list[dict[str, Any]]:
    """The services of a commune, by name."""
    return await Service.select().where(Service.commune == commune_id).order_by(Service.name)


async def get_service(commune_id: UUID, service_id: UUID) -> dict[str, Any]:
    """One service of the commune, or NotFound (another commune's service is not visible)."""
    row = (
        await Service.select()
        .where((Service.id == service_id) & (Service.commune == commune_id))
        .first()
    )
    if row is None:
        raise NotFound("Ce service est introuvable.")
    return row


async def create_service(
    commune_id: UUID, actor_id: UUID | None, fields: dict[str, Any]
) -> dict[str, Any]:
    """Create a service; its slug must be unique in the commune."""
    slug = fields.get("slug") or slugify(fields["name"])
    rest = {k: v for k, v in fields.items() if k != "slug"}
    service = Service(commune=commune_id, slug=slug, commune_slug=f"{commune_id}:{slug}", **rest)
    async with transaction():
        try:
            await service.save()
        except Exception as exc:
            if is_unique_violation(exc):
                raise Conflict(
                    "Un service porte déjà cet identifiant dans la commune.",
                    errors=[FieldError("slug", "Identifiant déjà utilisé.")],
                ) from exc
            raise
        await record(actor_id, "service.create", "service", service.id, {"name": fields["name"]})
    return await get_service(commune_id, service.id)


async def update_service(
    commune_id: UUID, service_id: UUID, actor_id: UUID | None, changes: dict[str, Any]
) -> dict[str, Any]:
    """Change a service's name, contact details or active flag."""
    await get_service(commune_id, service_id)
    allowed = {"name", "address", "phone", "email", "active"}
    values = {getattr(Service, k): v for k, v in changes.items() if k in allowed}
    async with transaction():
        if values:
            await Service.update(values).where(Service.id == service_id)
        await record(actor_id, "service.update", "service", service_id, _jsonable(changes))
    return await get_service(commune_id, service_id)


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    """Audit details as JSON: UUIDs (alone or in lists) as strings."""

    def one(v: Any) -> Any:
        return str(v) if isinstance(v, UUID) else v

    return {k: [one(x) for x in v] if isinstance(v, list) else one(v) for k, v in values.items()}


async def service_ids_of(account_id: UUID) -> list[UUID]:
    """The services a staff member works for."""
    rows = await StaffAssignment.select(StaffAssignment.service).where(
        StaffAssignment.account == account_id
    )
    return [r["service"] for r in rows]


async def staff_view(account: dict[str, Any]) -> dict[str, Any]:
    """A staff account with its service ids."""
    return {**account, "service_ids": await service_ids_of(account["id"])}


async def _check_services(commune_id: UUID, service_ids: list[UUID]) -> None:
    if not service_ids:
        return
    found = await Service.select(Service.id).where(
        Service.id.is_in(service_ids) & (Service.commune == commune_id)
    )
    if len(found) != len(set(service_ids)):
        message = "Un des services indiqués n'existe pas dans cette commune."
        raise InvalidInput(message, errors=[FieldError("serviceIds", message)])


async def _assign(account_id: UUID, service_id: UUID) -> None:
    await StaffAssignment.insert(
        StaffAssignment(
            account=account_id, service=service_id, assignment_key=f"{account_id}:{service_id}"
        )
    )


def _check_role(role: str) -> None:
    if role not in STAFF_ROLES:
        message = "Rôle inconnu : choisissez agent, communication ou admin."
        raise InvalidInput(message, errors=[FieldError("role", message)])


async def create_staff(
    *,
    commune_id: UUID,
    actor_id: UUID | None,
    email: str,
    password: str,
    display_name: str,
    role: str,
    service_ids: list[UUID],
    settings: TokenSettings,
) -> dict[str, Any]:
    """Create a staff account attached to services of the commune."""
    _check_role(role)
    await _check_services(commune_id, service_ids)
    async with transaction():
        account = await create_account(
            email=email,
            password=password,
            display_name=display_name,
            role=role,
            settings=settings,
            commune_id=commune_id,
        )
        for service_id in set(service_ids):
            await _assign(account["id"], service_id)
        await record(
            actor_id,
            "staff.create",
            "account",
            account["id"],
            {"role": role, "service_ids": [str(s) for s in service_ids]},
        )
    return await staff_view(account)


async def list_staff(commune_id: UUID) -> list[dict[str, Any]]:
    """Every staff account of the commune."""
    rows = (
        await Account.select()
        .where((Account.commune == commune_id) & Account.role.is_in(list(STAFF_ROLES)))
        .order_by(Account.email)
    )
    return [await staff_view(r) for r in rows]


async def get_staff(commune_id: UUID, account_id: UUID) -> dict[str, Any]:
    """One staff account of the commune, or NotFound."""
    row = (
        await Account.select()
        .where(
            (Account.id == account_id)
            & (Account.commune == commune_id)
            & Account.role.is_in(list(STAFF_ROLES))
        )
        .first()
    )
    if row is None:
        raise NotFound("Ce membre du personnel est introuvable.")
    return await staff_view(row)


async def update_staff(
    commune_id: UUID, account_id: UUID, actor_id: UUID | None, changes: dict[str, Any]
) -> dict[str, Any]:
    """Change a staff member's role, services, name or active flag."""
    await get_staff(commune_id, account_id)
    values: dict[Any, Any] = {}
    if "role" in changes:
        _check_role(changes["role"])
        values[Account.role] = changes["role"]
    if "display_name" in changes:
        values[Account.display_name] = changes["display_name"]
    if "is_active" in changes:
        values[Account.is_active] = changes["is_active"]
    if "can_send_alerts" in changes:
        values[Account.can_send_alerts] = changes["can_send_alerts"]
    async with transaction():
        if values:
            await Account.update(values).where(Account.id == account_id)
        if "service_ids" in changes:
            await _check_services(commune_id, changes["service_ids"])
            await StaffAssignment.delete().where(StaffAssignment.account == account_id)
            for service_id in set(changes["service_ids"]):
                await _assign(account_id, service_id)
        await record(actor_id, "staff.update", "account", account_id, _jsonable(changes))
    return await get_staff(commune_id, account_id)
