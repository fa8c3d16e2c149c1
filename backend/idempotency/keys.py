"""The Idempotency-Key of the request being handled, for services that record it with their
writes (a demande keeps its own, so a retry can never file it twice: see
`backend.demandes.service.file_demande`)."""

from __future__ import annotations

from contextvars import ContextVar, Token

_current: ContextVar[str | None] = ContextVar("relais_idempotency_key", default=None)


def current_idempotency_key() -> str | None:
    """SHA-256 hex of (caller, Idempotency-Key) of the POST being handled, or None.

    Set by `IdempotencyMiddleware` only while the request it reserved runs: two callers
    choosing the same key get different values.
    """
    return _current.get()


def bind_idempotency_key(scope_key: str) -> Token[str | None]:
    """Make `scope_key` the current one (the middleware, around the handler)."""
    return _current.set(scope_key)


def unbind_idempotency_key(token: Token[str | None]) -> None:
    """Undo `bind_idempotency_key`."""
    _current.reset(token)
