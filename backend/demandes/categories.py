"""Categories (a tree per commune, versioned for the apps' cache) and their routing rules."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from alerts.zones import zone_area
from backend.database import is_unique_violation, transaction
from backend.demandes.tables import Category, RoutingRule
from backend.exceptions import Conflict, FieldError, InvalidInput, NotFound
from backend.organisation.service import get_service, slugify


async def create_category(commune_id: UUID, fields: dict[str, Any]) -> dict[str, Any]:
    """Create a category; its parent and service must belong to the commune."""
    await get_service(commune_id, fields["service_id"])
    if fields.get("parent_id") is not None:
        await get_category(commune_id, fields["parent_id"])
    slug = fields.get("slug") or slugify(fields["name"])
    category = Category(
        commune=commune_id,
        parent=fields.get("parent_id"),
        name=fields["name"],
        slug=slug,
        description=fields.get("description", ""),
        service=fields["service_id"],
        sla_days=fields.get("sla_days", 7),
        needs_location=fields.get("needs_location", False),
        public=fields.get("public", False),
        allows_anonymous=fields.get("allows_anonymous", False),
        duplicate_radius_m=fields.get("duplicate_radius_m", 250),
        position=fields.get("position", 0),
        commune_slug=f"{commune_id}:{slug}",
    )
    try:
        await category.save()
    except Exception as exc:
        if is_unique_violation(exc):
            raise Conflict(
                "Une catégorie porte déjà cet identifiant.",
                errors=[FieldError("slug", "Identifiant déjà utilisé.")],
            ) from exc
        raise
    return await get_category(commune_id, category.id)


async def update_category(
    commune_id: UUID, category_id: UUID, changes: dict[str, Any]
) -> dict[str, Any]:
    """Change a category (the tree version changes with it)."""
    await get_category(commune_id, category_id)
    mapping = {
        "name": Category.name,
        "description": Category.description,
        "sla_days": Category.sla_days,
        "needs_location": Category.needs_location,
        "public": Category.public,
        "allows_anonymous": Category.allows_anonymous,
        "duplicate_radius_m": Category.duplicate_radius_m,
        "position": Category.position,
        "active": Category.active,
    }
    values: dict[Any, Any] = {mapping[k]: v for k, v in changes.items() if k in mapping}
    if "service_id" in changes:
        await get_service(commune_id, changes["service_id"])
        values[Category.service] = changes["service_id"]
    values[Category.updated_at] = datetime.now(UTC)
    await Category.update(values).where(Category.id == category_id)
    return await get_category(commune_id, category_id)


async def get_category(commune_id: UUID, category_id: UUID) -> dict[str, Any]:
    """One category of the commune, or NotFound."""
    row = (
        await Category.select()
        .where((Category.id == category_id) & (Category.commune == commune_id))
        .first()
    )
    if row is None:
        raise NotFound("Cette catégorie est introuvable.")
    return row


async def category_for_demande(commune_id: UUID, category_id: UUID) -> dict[str, Any]:
    """An active category residents may file under, or an error naming the field."""
    row = (
        await Category.select()
        .where(
            (Category.id == category_id)
            & (Category.commune == commune_id)
            & (Category.active == True)  # noqa: E712 - Piccolo builds SQL from ==
        )
        .first()
    )
    if row is None:
        message = "Catégorie inconnue : choisissez-en une dans la liste."
        raise InvalidInput(message, errors=[FieldError("categoryId", message)])
    return row


async def category_tree(commune_id: UUID) -> tuple[list[dict[str, Any]], str]:
    """Active categories in display order, and a version string that changes with any edit."""
    rows = (
        await Category.select()
        .where((Category.commune == commune_id) & (Category.active == True))  # noqa: E712
        .order_by(Category.position)
        .order_by(Category.name)
    )
    digest = hashlib.sha256()
    for row in sorted(rows, key=lambda r: str(r["id"])):
        digest.update(f"{row['id']}:{row['updated_at'].isoformat()};".encode())
    return rows, digest.hexdigest()[:16]


async def add_routing_rule(
    commune_id: UUID, category_id: UUID, zone_id: UUID, service_id: UUID, priority: int
) -> dict[str, Any]:
    """Demandes of this category placed inside the zone go to that service."""
    from alerts.zones import get_zone

    await get_category(commune_id, category_id)
    await get_zone(commune_id, zone_id)
    await get_service(commune_id, service_id)
    async with transaction():
        rule = RoutingRule(
            category=category_id, zone=zone_id, service=service_id, priority=priority
        )
        await rule.save()
        await Category.update({Category.updated_at: datetime.now(UTC)}).where(
            Category.id == category_id
        )
    return {"category": category_id, "zone": zone_id, "service": service_id}


async def route(category: dict[str, Any], lat: float | None, lon: float | None) -> UUID:
    """The service that handles a demande: the first rule whose zone holds its place, else the
    category's own service."""
    if lat is not None and lon is not None:
        from alerts.tables import Zone

        rules = (
            await RoutingRule.select(RoutingRule.service, RoutingRule.zone)
            .where(RoutingRule.category == category["id"])
            .order_by(RoutingRule.priority, ascending=False)
        )
        for rule in rules:
            zone = await Zone.select().where(Zone.id == rule["zone"]).output(load_json=True).first()
            if zone is not None and zone_area(zone).contains(lat, lon):
                service: UUID = rule["service"]
                return service
    default: UUID = category["service"]
    return default
