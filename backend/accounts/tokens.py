"""Access tokens (short JWT) and opaque secrets (refresh and device tokens)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import jwt

from backend.exceptions import InvalidToken

ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What an access token says about its bearer."""

    account_id: UUID
    role: str
    can_send_alerts: bool = False


def issue_access_token(
    account_id: UUID, role: str, secret: str, ttl: int, can_send_alerts: bool = False
) -> str:
    """A signed JWT valid `ttl` seconds."""
    now = datetime.now(UTC)
    claims = {
        "sub": str(account_id),
        "role": role,
        "alerts": can_send_alerts,
        "typ": "access",
        "iat": now,
        "exp": now + timedelta(seconds=ttl),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_access_token(token: str, secret: str) -> AccessClaims:
    """Verify signature and expiry; raise InvalidToken with a French message otherwise."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp"]})
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("Votre session a expiré. Reconnectez-vous ou rafraîchissez-la.") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken("Jeton d'accès invalide. Reconnectez-vous.") from exc
    if claims.get("typ") != "access":
        raise InvalidToken("Jeton d'accès invalide. Reconnectez-vous.")
    try:
        return AccessClaims(
            account_id=UUID(claims["sub"]),
            role=str(claims["role"]),
            can_send_alerts=bool(claims.get("alerts", False)),
        )
    except (KeyError, ValueError) as exc:
        raise InvalidToken("Jeton d'accès invalide. Reconnectez-vous.") from exc


def new_secret(prefix: str) -> str:
    """A random opaque token, prefixed so a leaked one is recognisable (`rt_`, `dev_`)."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def digest(token: str) -> str:
    """The SHA-256 we store instead of the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()
