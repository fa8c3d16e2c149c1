"""Domain exceptions: raised by services, mapped once to problem details in `backend.errors`.

Each carries a stable `code` (the problem type), an HTTP status and a French `detail` written
for the person reading it on a phone: what went wrong and what to do next.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field: its JSON name and a French message."""

    field: str
    message: str


class DomainError(Exception):
    """Base of every error a service may raise on purpose."""

    status: int = 400
    code: str = "bad-request"
    title: str = "Requête invalide"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}


class InvalidInput(DomainError):
    status, code, title = 422, "invalid-input", "Données invalides"


class Unauthenticated(DomainError):
    status, code, title = 401, "unauthenticated", "Authentification requise"


class InvalidCredentials(Unauthenticated):
    code = "invalid-credentials"


class InvalidToken(Unauthenticated):
    code = "invalid-token"


class PermissionDenied(DomainError):
    status, code, title = 403, "forbidden", "Accès refusé"


class NotFound(DomainError):
    status, code, title = 404, "not-found", "Introuvable"


class Conflict(DomainError):
    status, code, title = 409, "conflict", "Conflit"


class EmailTaken(Conflict):
    code = "email-taken"


class RateLimited(DomainError):
    """Too many attempts; `retry_after` seconds until the next one is allowed."""

    status, code, title = 429, "rate-limited", "Trop de tentatives"

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, round(retry_after / 60))
        wait = f"{retry_after} secondes" if retry_after < 90 else f"{minutes} minutes"
        super().__init__(
            f"Trop de tentatives. Réessayez dans {wait}.",
            headers={"Retry-After": str(retry_after)},
        )
        self.retry_after = retry_after
