"""Open311 GeoReport v2 rules, as plain async functions (no web framework here).

One Relais installation is one jurisdiction per commune: `jurisdiction_id` is the commune's
INSEE code, optional while a single commune exists. Services are the commune's active leaf
categories (`service_code` = the category slug, stable and readable); requests are demandes,
filed through `file_demande` like any other channel, so routing, due dates and the SVE
acknowledgments happen exactly as for the app. Only public, non-hidden demandes of public
categories are ever listed, and never with a name, an e-mail address or a phone number.

Every refusal is an `Open311Error` carrying the HTTP status the spec asks for (404 unknown
resource, 403 API key, 400 anything else); the controller renders it as an error document.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from backend.demandes.tables import (
    Category,
    Open311Key,
)
from backend.exceptions import FieldError, InvalidInput
from backend.interop._open311_base import (
    FIRST_CHANGESET,
    MAX_DESCRIPTION,
    MAX_MEDIA_URLS,
    MAX_REQUESTS,
    MAX_SPAN,
    PATH,
    SPECIFICATION,
    Catalogue,
    Open311Error,
    bad,
    load_catalogue,
    parse_datetime,
    w3c,
)
from backend.interop._open311_filing import (
    Filed,
    Submission,
    address_of,
    clean_description,
    file_request,
    token,
)
from backend.interop._open311_reading import (
    RequestsQuery,
    find_request,
    find_requests,
    requests_query,
)
from backend.organisation.service import get_commune
from backend.organisation.tables import Commune

__all__ = [
    "FIRST_CHANGESET",
    "MAX_DESCRIPTION",
    "MAX_MEDIA_URLS",
    "MAX_REQUESTS",
    "MAX_SPAN",
    "PATH",
    "SPECIFICATION",
    "Filed",
    "Open311Error",
    "RequestsQuery",
    "Submission",
    "address_of",
    "check_api_key",
    "clean_description",
    "create_api_key",
    "discovery",
    "file_request",
    "find_request",
    "find_requests",
    "jurisdiction",
    "parse_datetime",
    "requests_query",
    "service_definition",
    "services",
    "token",
    "w3c",
]


# ---------------------------------------------------------------------------------------------
# Jurisdiction, discovery, services
async def jurisdiction(jurisdiction_id: str | None) -> dict[str, Any]:
    """The commune a request speaks to: by INSEE code, or the only one when there is one."""
    code = (jurisdiction_id or "").strip()
    if code:
        row = await Commune.select().where(Commune.insee_code == code).first()
        if row is None:
            raise Open311Error(404, f"jurisdiction_id inconnu : {code} (code INSEE attendu).")
        return row
    rows = await Commune.select().order_by(Commune.insee_code).limit(2)
    if not rows:
        raise Open311Error(404, "Aucune commune n'est encore configurée sur ce serveur.")
    if len(rows) > 1:
        raise bad(
            "jurisdiction_id obligatoire : ce serveur dessert plusieurs communes "
            "(indiquez le code INSEE de la commune)."
        )
    return rows[0]


async def _changeset(commune_id: UUID | None) -> datetime:
    """The last change of the services (categories): clients refresh their cache after it."""
    query = Category.select(Category.updated_at)
    if commune_id is not None:
        query = query.where(Category.commune == commune_id)
    row = await query.order_by(Category.updated_at, ascending=False).first()
    return max(row["updated_at"], FIRST_CHANGESET) if row else FIRST_CHANGESET


async def discovery(jurisdiction_id: str | None, public_url: str, tz: ZoneInfo) -> dict[str, Any]:
    """The service discovery document (an object, in JSON too).

    Discovery describes the endpoint, so it answers without a jurisdiction even when several
    communes share the server; with one (given or the only one) the contact is its town hall.
    """
    commune: dict[str, Any] | None = None
    if (jurisdiction_id or "").strip() or await Commune.count() == 1:
        commune = await jurisdiction(jurisdiction_id)
    if commune is not None:
        reach = " ".join(x for x in (commune["email"], commune["phone"]) if x)
        contact = f"Mairie de {commune['name']}" + (f" : {reach}" if reach else "")
        key_service = (
            f"Demandez une clé d'API à la mairie de {commune['name']}"
            + (f" ({reach})" if reach else "")
            + " : un administrateur de Relais la crée pour votre application."
        )
    else:
        contact = "Contactez la mairie de la commune concernée."
        key_service = (
            "Demandez une clé d'API à la mairie de la commune concernée : un administrateur "
            "de Relais la crée pour votre application."
        )
    changeset = w3c(await _changeset(commune["id"] if commune else None), tz)
    return {
        "changeset": changeset,
        "contact": contact,
        "key_service": key_service,
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": public_url.rstrip("/") + PATH,
                "changeset": changeset,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }


def _service_out(category: dict[str, Any], catalogue: Catalogue) -> dict[str, Any]:
    parent = catalogue.by_id.get(category["parent"]) if category["parent"] else None
    group = parent["name"] if parent else ""
    keywords = [category["name"]] + ([group] if group else [])
    return {
        "service_code": category["slug"],
        "service_name": category["name"],
        "description": category["description"] or category["name"],
        # No attributes (no service definition fields): clients need not ask for them.
        "metadata": False,
        "type": "realtime",
        "keywords": ", ".join(keywords),
        "group": group,
    }


async def services(commune: dict[str, Any]) -> list[dict[str, Any]]:
    """GET services: the commune's active leaf categories, in display order."""
    catalogue = await load_catalogue(commune["id"])
    return [_service_out(c, catalogue) for c in catalogue.services]


async def service_definition(commune: dict[str, Any], code: str) -> dict[str, Any]:
    """GET services/{code}: the definition (no attributes: `metadata` is false everywhere)."""
    catalogue = await load_catalogue(commune["id"])
    if catalogue.by_code(code) is None:
        raise Open311Error(404, f"service_code inconnu : {code}.")
    return {"service_code": code, "attributes": []}


# ---------------------------------------------------------------------------------------------
# API keys
def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


async def create_api_key(commune_id: UUID, name: str) -> str:
    """Create an API key for an Open311 client of the commune; returns the key, shown once.

    Only its SHA-256 is kept: a leaked database does not leak usable keys.
    """
    await get_commune(commune_id)
    label = name.strip()
    if not label or len(label) > 100:
        message = "Le nom de la clé (l'application cliente) fait 1 à 100 caractères."
        raise InvalidInput(message, errors=[FieldError("name", message)])
    key = secrets.token_urlsafe(32)
    await Open311Key.insert(Open311Key(commune=commune_id, name=label, key_hash=_key_hash(key)))
    return key


async def check_api_key(commune_id: UUID, key: str | None) -> str:
    """The name of the client holding this key of the commune; 403 otherwise."""
    if not key:
        raise Open311Error(403, "api_key manquant : une clé d'API est nécessaire pour déposer.")
    row = (
        await Open311Key.select(Open311Key.name)
        .where((Open311Key.key_hash == _key_hash(key)) & (Open311Key.commune == commune_id))
        .first()
    )
    if row is None:
        raise Open311Error(403, "api_key invalide pour cette commune.")
    return str(row["name"])
