"""Route guards: who may call what. Handlers never re-check roles themselves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from backend.auth import resolve_principal
from backend.exceptions import PermissionDenied, Unauthenticated

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]

_SIGN_IN = "Connectez-vous pour continuer."


async def account_required(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """A signed-in account (citizen or staff)."""
    if (await resolve_principal(connection)).account_id is None:
        raise Unauthenticated(_SIGN_IN)


async def device_required(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """A registered device (with or without an account)."""
    if (await resolve_principal(connection)).device_id is None:
        raise Unauthenticated(
            "Cet appareil n'est pas enregistré : envoyez son jeton dans l'en-tête X-Device-Token."
        )


async def alerts_staff_required(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Staff allowed to send crisis alerts: admins, and staff given the alerts permission."""
    principal = await resolve_principal(connection)
    if principal.account_id is None:
        raise Unauthenticated(_SIGN_IN)
    if not (principal.is_staff and principal.can_send_alerts):
        raise PermissionDenied(
            "L'envoi d'alertes est réservé aux administrateurs et au personnel habilité."
        )


def staff_required(*roles: str) -> Guard:
    """A staff account with one of `roles` (admin always passes)."""
    allowed = set(roles) | {"admin"}

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = await resolve_principal(connection)
        if principal.account_id is None:
            raise Unauthenticated(_SIGN_IN)
        if principal.role not in allowed:
            raise PermissionDenied("Cette action est réservée au personnel de la mairie habilité.")

    return guard
