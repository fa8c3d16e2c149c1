"""Open311 GeoReport v2 server under `/open311/v2`: discovery, services, requests, tokens.

The format is the path's suffix (`.xml`, mandatory in the spec, or `.json`). Every answer,
errors included, is in the spec's own shape: errors are `<errors><error><code/><description/>
</error></errors>` (a bare JSON array), never our problem details, so this controller maps
every exception itself (controller-level handlers win over the application's).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import HTTPException, ValidationException
from litestar.params import FromPath, FromQuery
from litestar.types import ExceptionHandlersMap, OperationIDCreator

from backend.exceptions import DomainError
from backend.interop import open311_service as open311
from backend.interop.open311_format import (
    Format,
    errors_body,
    format_of_path,
    render,
    split_format,
)
from backend.settings import Settings
from geo import Geocoder
from media import Limits, MediaStorage

log = logging.getLogger("relais.open311")

# Five phone photos and the form (FixMyStreet's multipart upload); urlencoded bodies are tiny.
MAX_BODY = 25 * 1024 * 1024
TOKEN_HEADER = "X-Open311-Token"


def _document(
    fmt: Format,
    root: str,
    body: dict[str, Any] | list[Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    content, media_type = render(fmt, root, body)
    if media_type.startswith("text/"):
        # Litestar appends "; charset=utf-8" to text/* itself: give it the bare type.
        media_type = media_type.partition(";")[0]
    return Response(content, status_code=status, media_type=media_type, headers=headers)


def _errors(request: Request[Any, Any, Any], status: int, description: str) -> Response[bytes]:
    """The spec's error document, in the format the path asked for; `code` is the HTTP status."""
    return _document(
        format_of_path(request.url.path), "errors", errors_body([(status, description)]), status
    )


def _on_open311(request: Request[Any, Any, Any], exc: open311.Open311Error) -> Response[bytes]:
    return _errors(request, exc.status, exc.description)


def _on_domain(request: Request[Any, Any, Any], exc: DomainError) -> Response[bytes]:
    # The spec knows 404 (no such resource), 403 (API key) and 400 (everything else).
    status = exc.status if exc.status in (403, 404) else 400
    return _errors(request, status, exc.detail)


def _on_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[bytes]:
    return _errors(request, 400, f"Requête invalide : {exc.detail}")


def _on_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    status = exc.status_code if exc.status_code in (403, 404) else 400
    if exc.status_code == 413:
        return _errors(request, 400, "Envoi trop volumineux.")
    return _errors(request, status, str(exc.detail) or "Requête invalide.")


def _on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    # The spec's "general service error" is a 400 the client reports to the operator.
    log.exception("open311 failure on %s %s", request.method, request.url.path, exc_info=exc)
    return _errors(request, 400, "Erreur du service Open311 : réessayez, puis prévenez la mairie.")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    open311.Open311Error: _on_open311,
    DomainError: _on_domain,
    ValidationException: _on_validation,
    HTTPException: _on_http,
    Exception: _on_unexpected,
}


def _operation(name: str) -> OperationIDCreator:
    """One operation id per suffix (`open311ServicesXml`, `open311ServicesJson`): a handler
    serving both paths would otherwise give OpenAPI the same id twice."""

    def create(handler: Any, method: Any, components: list[Any]) -> str:
        last = components[-1] if components and isinstance(components[-1], str) else ""
        return name + ("Json" if last.endswith(".json") else "Xml")

    return create


def _fmt(request: Request[Any, Any, Any]) -> Format:
    return format_of_path(request.url.path)


def _named(value: str, what: str) -> tuple[str, Format]:
    """`{id}.{xml|json}` from a path segment; 404 without a known suffix."""
    found = split_format(value)
    if found is None:
        raise open311.Open311Error(404, f"{what} introuvable : ajoutez .xml ou .json.")
    return found


def _settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _tz(request: Request[Any, Any, Any]) -> ZoneInfo:
    return ZoneInfo(_settings(request).timezone)


def _storage(request: Request[Any, Any, Any]) -> MediaStorage:
    storage: MediaStorage = request.app.state.storage
    return storage


def _geocoder(request: Request[Any, Any, Any]) -> Geocoder:
    geocoder: Geocoder = request.app.state.geocoder
    return geocoder


async def _form(
    request: Request[Any, Any, Any],
) -> tuple[open311.Submission, list[tuple[str, bytes]]]:
    """The POST body's fields (urlencoded, or multipart with photos) and uploaded files."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        pairs: list[tuple[str, str]] = []
        uploads: list[tuple[str, bytes]] = []
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                uploads.append((value.filename or name, await value.read()))
            else:
                pairs.append((name, str(value)))
        return open311.Submission.from_pairs(pairs), uploads
    if content_type and not content_type.startswith("application/x-www-form-urlencoded"):
        raise open311.Open311Error(400, "Corps attendu : application/x-www-form-urlencoded.")
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise open311.Open311Error(400, "Le corps de la requête doit être en UTF-8.") from exc
    return open311.Submission.from_pairs(parse_qsl(text, keep_blank_values=True)), []


class Open311Controller(Controller):
    """Open311 GeoReport v2 for third-party apps (FixMyStreet, city dashboards, open data)."""

    path = "/open311/v2"
    tags = ["Interopérabilité"]
    exception_handlers = EXCEPTION_HANDLERS

    @get(["/discovery.xml", "/discovery.json"], operation_id=_operation("open311Discovery"))
    async def discovery(
        self, request: Request[Any, Any, Any], jurisdiction_id: FromQuery[str | None] = None
    ) -> Response[bytes]:
        """Service discovery: endpoint URL, formats, contact and how to get an API key."""
        body = await open311.discovery(jurisdiction_id, _settings(request).public_url, _tz(request))
        return _document(_fmt(request), "discovery", body)

    @get(["/services.xml", "/services.json"], operation_id=_operation("open311Services"))
    async def services(
        self, request: Request[Any, Any, Any], jurisdiction_id: FromQuery[str | None] = None
    ) -> Response[bytes]:
        """The service list: one service per category residents can file under."""
        commune = await open311.jurisdiction(jurisdiction_id)
        return _document(_fmt(request), "services", await open311.services(commune))

    @get("/services/{name:str}", operation_id="open311ServiceDefinition")
    async def service_definition(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        jurisdiction_id: FromQuery[str | None] = None,
    ) -> Response[bytes]:
        """A service definition (`services/{service_code}.xml`): no extra attributes."""
        code, fmt = _named(name, "Service")
        commune = await open311.jurisdiction(jurisdiction_id)
        return _document(fmt, "service_definition", await open311.service_definition(commune, code))

    @post(
        ["/requests.xml", "/requests.json"],
        operation_id=_operation("open311CreateRequest"),
        status_code=200,
        request_max_body_size=MAX_BODY,
    )
    async def create_request(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        """File a request (urlencoded form with `api_key`); answers its `service_request_id`.

        The token of the request is also sent in the `X-Open311-Token` header, for clients that
        prefer to poll `tokens/{token}` (the body never carries both, as the spec requires).
        """
        form, uploads = await _form(request)
        jurisdiction_id = form.jurisdiction_id or request.query_params.get("jurisdiction_id")
        commune = await open311.jurisdiction(jurisdiction_id)
        # The key only in the body, as the spec puts it: a URL ends up in proxies' logs.
        client = await open311.check_api_key(commune["id"], form.api_key)
        settings = _settings(request)
        filed = await open311.file_request(
            commune,
            form,
            client,
            geocoder=_geocoder(request),
            storage=_storage(request),
            limits=Limits(max_bytes=settings.media_max_bytes),
            daily_cap=settings.daily_push_cap,
            uploads=uploads,
        )
        return _document(
            _fmt(request), "service_requests", filed.body, headers={TOKEN_HEADER: filed.token}
        )

    @get(["/requests.xml", "/requests.json"], operation_id=_operation("open311Requests"))
    async def requests(
        self,
        request: Request[Any, Any, Any],
        jurisdiction_id: FromQuery[str | None] = None,
        service_request_id: FromQuery[str | None] = None,
        service_code: FromQuery[str | None] = None,
        start_date: FromQuery[str | None] = None,
        end_date: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
    ) -> Response[bytes]:
        """Public requests, newest first: last 90 days by default, at most 1,000."""
        commune = await open311.jurisdiction(jurisdiction_id)
        tz = _tz(request)
        query = open311.requests_query(
            service_request_id=service_request_id,
            service_code=service_code,
            start_date=start_date,
            end_date=end_date,
            status=status,
            tz=tz,
        )
        found = await open311.find_requests(commune, query, _storage(request), tz)
        return _document(_fmt(request), "service_requests", found)

    @get("/requests/{name:str}", operation_id="open311Request")
    async def request_by_id(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        jurisdiction_id: FromQuery[str | None] = None,
    ) -> Response[bytes]:
        """One public request (`requests/2026-000123.xml`), still as a list of one."""
        reference, fmt = _named(name, "Demande")
        commune = await open311.jurisdiction(jurisdiction_id)
        found = await open311.find_request(commune, reference, _storage(request), _tz(request))
        return _document(fmt, "service_requests", found)

    @get("/tokens/{name:str}", operation_id="open311Token")
    async def token(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        jurisdiction_id: FromQuery[str | None] = None,
    ) -> Response[bytes]:
        """The `service_request_id` behind a token given when the request was filed."""
        value, fmt = _named(name, "Token")
        commune = await open311.jurisdiction(jurisdiction_id)
        return _document(fmt, "service_requests", await open311.token(commune, value))

    @get("/{rest:path}", operation_id="open311NotFound", include_in_schema=False)
    async def not_found(self, rest: FromPath[str]) -> Response[bytes]:
        """Anything else under the prefix: a 404 in the spec's error format, not ours."""
        raise open311.Open311Error(404, f"Ressource Open311 inconnue : {rest.lstrip('/')}.")
