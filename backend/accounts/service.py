"""Accounts: sign-up, login, refresh-token rotation, logout, profile, password change."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from backend.accounts.passwords import (
    check_password_rules,
    dummy_verify,
    hash_password,
    verify_password,
)
from backend.accounts.tables import Account, RefreshToken
from backend.accounts.tokens import digest, issue_access_token, new_secret
from backend.database import is_unique_violation, transaction
from backend.exceptions import (
    EmailTaken,
    FieldError,
    InvalidCredentials,
    InvalidInput,
    InvalidToken,
    NotFound,
)

ROLES = ("citizen", "agent", "communication", "admin")
STAFF_ROLES = ("agent", "communication", "admin")

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class TokenSettings:
    """What token issuing needs from the settings."""

    secret: str
    access_ttl: int
    refresh_ttl: int
    argon2_memory_kib: int


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What a successful login hands the app."""

    access_token: str
    refresh_token: str
    expires_in: int
    account: dict[str, Any]


def normalise_email(email: str) -> str:
    """Case-fold and trim, so `Jean@Mairie.fr` and `jean@mairie.fr` are one account."""
    value = email.strip().casefold()
    if not _EMAIL.match(value):
        message = "Adresse e-mail invalide. Vérifiez-la (exemple : prenom.nom@exemple.fr)."
        raise InvalidInput(message, errors=[FieldError("email", message)])
    return value


def _email_taken() -> EmailTaken:
    return EmailTaken(
        "Un compte existe déjà avec cette adresse e-mail. Connectez-vous ou "
        "réinitialisez votre mot de passe.",
        errors=[FieldError("email", "Adresse déjà utilisée.")],
    )


async def get_account(account_id: UUID) -> dict[str, Any]:
    """The account row as a dict, or NotFound."""
    row = await Account.select().where(Account.id == account_id).first()
    if row is None or not row["is_active"]:
        raise NotFound("Ce compte n'existe pas ou a été désactivé.")
    return row


async def create_account(
    *,
    email: str,
    password: str,
    display_name: str,
    role: str,
    settings: TokenSettings,
    commune_id: UUID | None = None,
) -> dict[str, Any]:
    """Create an account; the unique index on the case-folded e-mail settles races."""
    email = normalise_email(email)
    check_password_rules(password, email)
    password_hash = await hash_password(password, settings.argon2_memory_kib)
    async with transaction():
        if await Account.exists().where(Account.email == email):
            raise _email_taken()
        account = Account(
            email=email,
            password_hash=password_hash,
            display_name=display_name.strip(),
            role=role,
            commune=commune_id,
        )
        try:
            await account.save()
        except Exception as exc:
            if is_unique_violation(exc):  # a concurrent sign-up with the same e-mail won
                raise _email_taken() from exc
            raise
    return await get_account(account.id)


async def _issue(account: dict[str, Any], family: UUID, settings: TokenSettings) -> TokenPair:
    refresh = new_secret("rt")
    await RefreshToken.insert(
        RefreshToken(
            account=account["id"],
            family=family,
            token_hash=digest(refresh),
            expires_at=datetime.now(UTC) + timedelta(seconds=settings.refresh_ttl),
        )
    )
    access = issue_access_token(
        account["id"],
        account["role"],
        settings.secret,
        settings.access_ttl,
        can_send_alerts=account["role"] == "admin" or bool(account.get("can_send_alerts")),
    )
    return TokenPair(access, refresh, settings.access_ttl, account)


async def start_session(account: dict[str, Any], settings: TokenSettings) -> TokenPair:
    """A new refresh-token family for this account (one per login)."""
    async with transaction():
        return await _issue(account, uuid4(), settings)


async def login(email: str, password: str, settings: TokenSettings) -> TokenPair:
    """Check the credentials and open a session."""
    wrong = InvalidCredentials(
        "Adresse e-mail ou mot de passe incorrect. Vérifiez-les, ou réinitialisez votre mot "
        "de passe."
    )
    row = await Account.select().where(Account.email == email.strip().casefold()).first()
    if row is None:
        await dummy_verify(password, settings.argon2_memory_kib)
        raise wrong
    if not await verify_password(row["password_hash"], password, settings.argon2_memory_kib):
        raise wrong
    if not row["is_active"]:
        raise InvalidCredentials("Ce compte a été désactivé. Contactez votre mairie.")
    await Account.update({Account.last_login_at: datetime.now(UTC)}).where(Account.id == row["id"])
    return await start_session(row, settings)


async def _revoke_family(family: UUID) -> None:
    await RefreshToken.update({RefreshToken.revoked_at: datetime.now(UTC)}).where(
        (RefreshToken.family == family) & RefreshToken.revoked_at.is_null()
    )


async def refresh(token: str, settings: TokenSettings) -> TokenPair:
    """Rotate a refresh token. A token presented twice revokes its whole family."""
    expired = InvalidToken("Votre session a expiré. Reconnectez-vous.")
    now = datetime.now(UTC)
    row = await RefreshToken.select().where(RefreshToken.token_hash == digest(token)).first()
    if row is None or row["revoked_at"] is not None:
        raise expired
    if row["expires_at"] <= now:
        raise expired
    # The conditional update is the lock: of two concurrent uses only one marks the token.
    claimed = (
        await RefreshToken.update({RefreshToken.used_at: now})
        .where((RefreshToken.id == row["id"]) & RefreshToken.used_at.is_null())
        .returning(RefreshToken.id)
    )
    if not claimed:
        # Reuse of a rotated token: someone else holds this session. Cut it everywhere.
        await _revoke_family(row["family"])
        raise InvalidToken(
            "Cette session a été utilisée ailleurs et a été fermée par sécurité. Reconnectez-vous."
        )
    try:
        account = await get_account(row["account"])
    except NotFound as exc:
        raise expired from exc
    async with transaction():
        return await _issue(account, row["family"], settings)


async def logout(token: str) -> None:
    """Revoke the session (family) the refresh token belongs to; unknown tokens are ignored."""
    row = (
        await RefreshToken.select(RefreshToken.family)
        .where(RefreshToken.token_hash == digest(token))
        .first()
    )
    if row is not None:
        await _revoke_family(row["family"])


async def update_profile(account_id: UUID, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply the given profile fields (display_name, phone, locale)."""
    allowed = {"display_name", "phone", "locale"}
    values = {getattr(Account, k): v for k, v in changes.items() if k in allowed}
    if values:
        values[Account.updated_at] = datetime.now(UTC)
        await Account.update(values).where(Account.id == account_id)
    return await get_account(account_id)


async def change_password(
    account_id: UUID, current: str, new: str, settings: TokenSettings
) -> TokenPair:
    """Change the password, close every other session, and open a fresh one."""
    account = await get_account(account_id)
    if not await verify_password(account["password_hash"], current, settings.argon2_memory_kib):
        message = "Mot de passe actuel incorrect."
        raise InvalidCredentials(message, errors=[FieldError("currentPassword", message)])
    check_password_rules(new, account["email"], field="newPassword")
    password_hash = await hash_password(new, settings.argon2_memory_kib)
    async with transaction():
        await Account.update(
            {Account.password_hash: password_hash, Account.updated_at: datetime.now(UTC)}
        ).where(Account.id == account_id)
        await RefreshToken.update({RefreshToken.revoked_at: datetime.now(UTC)}).where(
            (RefreshToken.account == account_id) & RefreshToken.revoked_at.is_null()
        )
        return await _issue(account, uuid4(), settings)
