"""Every error becomes an RFC 9457 problem details document, with French text for people."""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from backend.exceptions import DomainError, FieldError
from backend.request_context import request_id_of

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("relais.errors")

_STATUS_TEXT: dict[int, tuple[str, str, str]] = {
    400: ("bad-request", "Requête invalide", "La requête est mal formée."),
    401: ("unauthenticated", "Authentification requise", "Connectez-vous pour continuer."),
    403: ("forbidden", "Accès refusé", "Vous n'avez pas accès à cette ressource."),
    404: ("not-found", "Introuvable", "Cette adresse ne correspond à aucune ressource."),
    405: ("method-not-allowed", "Méthode non autorisée", "Cette méthode n'est pas acceptée ici."),
    409: ("conflict", "Conflit", "La ressource a changé entre-temps. Réessayez."),
    413: (
        "payload-too-large",
        "Envoi trop volumineux",
        "Le fichier ou les données envoyés sont trop volumineux. Réduisez-les et réessayez.",
    ),
    415: ("unsupported-media-type", "Format non accepté", "Ce format d'envoi n'est pas accepté."),
    429: ("rate-limited", "Trop de requêtes", "Trop de requêtes. Patientez puis réessayez."),
    500: (
        "internal-error",
        "Erreur interne",
        "Une erreur inattendue s'est produite. Réessayez dans quelques instants ; si le problème "
        "persiste, contactez la mairie en donnant l'identifiant de la requête.",
    ),
    503: ("unavailable", "Service indisponible", "Le service est momentanément indisponible."),
}

_TYPES = {
    "str": "un texte",
    "int": "un nombre entier",
    "float": "un nombre",
    "bool": "vrai ou faux",
    "object": "un objet",
    "array": "une liste",
    "null": "vide",
    "uuid": "un identifiant (UUID)",
    "datetime": "une date et heure ISO 8601",
    "date": "une date ISO 8601",
}
_MESSAGE_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"Expected `str` of length <= (\d+)"), "Au plus {0} caractères."),
    (re.compile(r"Expected `str` of length >= (\d+)"), "Au moins {0} caractères."),
    (re.compile(r"Expected `array` of length <= (\d+)"), "Au plus {0} éléments."),
    (re.compile(r"Expected `array` of length >= (\d+)"), "Au moins {0} éléments."),
    (re.compile(r"Expected `(?:int|float)` >= (\S+)"), "Doit être supérieur ou égal à {0}."),
    (re.compile(r"Expected `(?:int|float)` <= (\S+)"), "Doit être inférieur ou égal à {0}."),
    (re.compile(r"Expected `(?:int|float)` > (\S+)"), "Doit être supérieur à {0}."),
    (re.compile(r"Expected `(?:int|float)` < (\S+)"), "Doit être inférieur à {0}."),
    (re.compile(r"Expected `str` matching regex"), "Le format n'est pas celui attendu."),
    (re.compile(r"Invalid enum value"), "Cette valeur n'est pas autorisée."),
    (re.compile(r"Object missing required field `([^`]+)`"), "Ce champ est obligatoire."),
    (re.compile(r"Invalid UUID"), "Identifiant invalide."),
    (re.compile(r"Invalid RFC3339"), "Date et heure invalides (format ISO 8601 attendu)."),
    (re.compile(r"Object contains unknown field"), "Ce champ n'est pas attendu."),
]


def _french(message: str) -> str:
    for pattern, text in _MESSAGE_RULES:
        if match := pattern.search(message):
            return text.format(*match.groups())
    if match := re.search(r"Expected `([a-z]+)`(?: \| `null`)?, got `([a-z]+)`", message):
        return f"Valeur de type incorrect : {_TYPES.get(match.group(1), match.group(1))} attendu."
    if "JSON" in message or "malformed" in message.lower():
        return "Le contenu envoyé n'est pas un JSON valide."
    return "Valeur invalide."


def problem(
    request: Request[Any, Any, Any],
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    """Build a problem details response."""
    body: dict[str, Any] = {
        "type": f"urn:relais:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "code": code,
        "requestId": request_id_of(request.scope),
    }
    if errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in errors]
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers or {})


def _domain(request: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    return problem(
        request,
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        errors=exc.errors,
        headers=exc.headers,
    )


def _field_name(item: dict[str, Any], message: str) -> str:
    key = str(item.get("key") or "")
    if key == "data":  # Litestar's name for the whole body
        key = ""
    if not key and (match := re.search(r"required field `([^`]+)`", message)):
        key = match.group(1)
    if match := re.search(r"at `\$\.?([^`]*)`", message):
        inner = match.group(1)
        key = f"{key}.{inner}" if key and inner else (key or inner)
    return key or "body"


def _validation(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    errors: list[FieldError] = []
    items = exc.extra if isinstance(exc.extra, list) else []
    for item in items:
        if isinstance(item, dict):
            message = str(item.get("message", ""))
            field = _field_name(item, message)
            errors.append(FieldError(field, _french(message)))
    if not errors:
        detail = str(exc.detail)
        if match := re.search(r"Missing required (\w+) parameter '([^']+)'", detail):
            kind = {"query": "de requête", "header": "d'en-tête", "path": "de chemin"}
            what = kind.get(match.group(1), "")
            errors.append(
                FieldError(match.group(2), f"Paramètre {what} obligatoire.".replace("  ", " "))
            )
        else:
            errors.append(FieldError("body", _french(detail)))
    if any(e.message.startswith("Le contenu envoyé n'est pas un JSON") for e in errors):
        return problem(
            request,
            status=400,
            code="malformed-body",
            title="Requête mal formée",
            detail="Le contenu envoyé n'est pas un JSON valide.",
            errors=errors,
        )
    names = ", ".join(sorted({e.field for e in errors}))
    return problem(
        request,
        status=422,
        code="invalid-input",
        title="Données invalides",
        detail=f"Certaines informations sont invalides ({names}). Corrigez-les et réessayez.",
        errors=errors,
    )


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    if exc.status_code >= 500:
        log.error("%s on %s %s: %r", exc.status_code, request.method, request.url.path, exc)
    code, title, detail = _STATUS_TEXT.get(
        exc.status_code, ("http-error", "Erreur", str(exc.detail))
    )
    # msgspec's decode errors ("Input data was truncated", "JSON is malformed…") arrive as a
    # bare 400: on a JSON request that means the body could not be parsed.
    if exc.status_code == 400 and "json" in request.headers.get("content-type", ""):
        code, title = "malformed-body", "Requête mal formée"
        detail = "Le contenu envoyé n'est pas un JSON valide."
    return problem(
        request,
        status=exc.status_code,
        code=code,
        title=title,
        detail=detail,
        headers=dict(exc.headers or {}),
    )


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    code, title, detail = _STATUS_TEXT[500]
    return problem(request, status=500, code=code, title=title, detail=detail)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DomainError: _domain,
    ValidationException: _validation,
    HTTPException: _http,
    Exception: _unexpected,
}

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "MediaType", "problem"]
