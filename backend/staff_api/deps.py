"""Dependencies of the staff API."""

from __future__ import annotations

from uuid import UUID

from litestar.di import NamedDependency, Provide

from backend.accounts.service import get_account
from backend.auth import Principal
from backend.exceptions import PermissionDenied


async def provide_commune_id(principal: NamedDependency[Principal]) -> UUID:
    """The commune the signed-in staff member belongs to: every staff query is scoped to it."""
    assert principal.account_id is not None  # staff guards run first
    account = await get_account(principal.account_id)
    if account["commune"] is None:
        raise PermissionDenied("Votre compte n'est rattaché à aucune commune.")
    commune_id: UUID = account["commune"]
    return commune_id


STAFF_DEPENDENCIES = {"commune_id": Provide(provide_commune_id)}
