"""Who is calling: an account (Bearer access token), a device (`X-Device-Token`), or nobody.

Resolved at most once per request and cached on the connection; guards and the `principal`
dependency read the same value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from litestar.connection import ASGIConnection

from alerts.devices import authenticate_device
from backend.accounts.tokens import read_access_token
from backend.exceptions import InvalidToken
from backend.settings import Settings

DEVICE_HEADER = "x-device-token"
_CACHE_KEY = "relais_principal"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller. Any of the two identities may be absent."""

    account_id: UUID | None = None
    role: str | None = None
    device_id: UUID | None = None
    can_send_alerts: bool = False

    @property
    def is_staff(self) -> bool:
        """Staff roles: agent, communication, admin."""
        return self.role in {"agent", "communication", "admin"}


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The token of an `Authorization: Bearer …` header, if any."""
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def resolve_principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """Authenticate the request's credentials; a bad credential is a 401, none is anonymous."""
    cached = connection.scope.get(_CACHE_KEY)
    if isinstance(cached, Principal):
        return cached
    settings: Settings = connection.app.state.settings
    account_id: UUID | None = None
    role: str | None = None
    device_id: UUID | None = None
    can_send_alerts = False
    if token := bearer_token(connection):
        claims = read_access_token(token, settings.secret_key)
        account_id, role = claims.account_id, claims.role
        can_send_alerts = claims.can_send_alerts
    if device_token := connection.headers.get(DEVICE_HEADER):
        device = await authenticate_device(device_token.strip())
        if account_id is not None and device["account"] not in (None, account_id):
            raise InvalidToken("Cet appareil est lié à un autre compte. Reconnectez-vous.")
        device_id = device["id"]
    principal = Principal(account_id, role, device_id, can_send_alerts)
    connection.scope[_CACHE_KEY] = principal  # type: ignore[literal-required]
    return principal


async def provide_principal(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """Dependency: the caller."""
    return await resolve_principal(request)
