"""Password rules and hashing (argon2id)."""

from __future__ import annotations

import asyncio
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from backend.exceptions import FieldError, InvalidInput

MIN_LENGTH = 10
MAX_LENGTH = 128
RULES = (
    f"Le mot de passe doit compter entre {MIN_LENGTH} et {MAX_LENGTH} caractères, "
    "dont au moins une lettre et un chiffre, et ne pas contenir votre adresse e-mail."
)


def check_password_rules(password: str, email: str, field: str = "password") -> None:
    """Refuse a weak password, stating every rule in the message."""
    local_part = email.split("@", 1)[0].casefold()
    ok = (
        MIN_LENGTH <= len(password) <= MAX_LENGTH
        and any(c.isalpha() for c in password)
        and any(c.isdigit() for c in password)
        and not (len(local_part) >= 4 and local_part in password.casefold())
    )
    if not ok:
        raise InvalidInput(RULES, errors=[FieldError(field, RULES)])


@lru_cache(maxsize=4)
def _hasher(memory_kib: int) -> PasswordHasher:
    # argon2id, RFC 9106 second recommended option (t=3, m=64 MiB) unless configured lower.
    return PasswordHasher(time_cost=3, memory_cost=memory_kib, parallelism=1)


async def hash_password(password: str, memory_kib: int) -> str:
    """Hash off the event loop: argon2 is deliberately slow."""
    return await asyncio.to_thread(_hasher(memory_kib).hash, password)


async def verify_password(password_hash: str, password: str, memory_kib: int) -> bool:
    """True when `password` matches; never raises on a bad hash."""

    def _verify() -> bool:
        try:
            return _hasher(memory_kib).verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(_verify)


# A hash to verify against when the account does not exist, so a login for an unknown e-mail
# takes as long as one with a wrong password (no account enumeration by timing).
_DUMMY: dict[int, str] = {}


async def dummy_verify(password: str, memory_kib: int) -> None:
    """Spend the time of a real verification."""
    if memory_kib not in _DUMMY:
        _DUMMY[memory_kib] = await hash_password("relais-dummy-password-0", memory_kib)
    await verify_password(_DUMMY[memory_kib], password, memory_kib)
