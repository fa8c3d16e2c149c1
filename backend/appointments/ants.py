"""Client of the ANTS coordination ("optimisation") API, which de-duplicates ID appointments.

Every editor of appointment software declares the appointments it books for an ANTS
pre-request number (``application_id``, 10 letters or digits) and reads the number's status
and the appointments other editors declared for it, so one resident does not hold slots in
several town halls. The API (``https://api-coordination.rendezvouspasseport.ants.gouv.fr/api``,
integration ``https://int.api-coordination.rendezvouspasseport.ants.gouv.fr/api``):

- ``GET /status?application_ids=A&application_ids=B[&meeting_point_id=]`` →
  ``{"A": {"status": "validated", "appointments": [{"management_url", "meeting_point",
  "meeting_point_id", "appointment_date", "editor_comment"}]}}``;
- ``POST /appointments?application_id=&meeting_point=&meeting_point_id=&appointment_date=
  &management_url=`` → ``{"success": true}``;
- ``DELETE /appointments?application_id=&meeting_point=&meeting_point_id=&appointment_date=``
  → ``{"rowcount": 1}``.

Every parameter travels in the query string, even on POST and DELETE; lists are repeated keys
(no ``[]``); the token goes in the ``x-rdv-opt-auth-token`` header (a bad one gets a 401
``{"detail": "X-RDV-OPT-AUTH-TOKEN header invalid"}``). There is no update: a move is a
delete then a create. ``appointment_date`` is Paris wall-clock time, ``YYYY-MM-DD HH:MM:SS``.

Failures come in two kinds the caller treats differently: ``AntsUnavailable`` (the service
could not be asked: timeout, connection error, 5xx, 408/429, an answer we cannot read) is
where the commune's outage policy applies; ``AntsRejected`` (401 bad token, other 4xx,
``{"success": false}``) is a refusal or our own bug, and retrying will not change it.

The client never retries (the caller's outbox owns retries) and logs application ids at most:
no names, meeting points or management URLs, which may carry a resident's secret link. Note
that httpx itself logs each request's full URL on the ``httpx`` logger at INFO level; keep
that logger at WARNING in production.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

__all__ = [
    "ANTS_INTEGRATION_URL",
    "ANTS_PRODUCTION_URL",
    "APPLICATION_ID",
    "APPLICATION_ID_MESSAGE",
    "APPOINTMENT_DATE_FORMAT",
    "CONSUMED",
    "DECLARED",
    "EXPIRED",
    "UNKNOWN",
    "VALIDATED",
    "AntsAppointment",
    "AntsClient",
    "AntsError",
    "AntsRejected",
    "AntsStatus",
    "AntsUnavailable",
    "format_appointment_date",
    "normalise_application_id",
]

log = logging.getLogger("relais.appointments.ants")

ANTS_PRODUCTION_URL = "https://api-coordination.rendezvouspasseport.ants.gouv.fr/api"
ANTS_INTEGRATION_URL = "https://int.api-coordination.rendezvouspasseport.ants.gouv.fr/api"
AUTH_HEADER = "x-rdv-opt-auth-token"

APPLICATION_ID = re.compile(r"^[A-Z0-9]{10}$")
APPLICATION_ID_MESSAGE = (
    "Le numéro de pré-demande ANTS compte 10 lettres ou chiffres (exemple : AB12345678)."
)

# Statuses of a pre-request number. Only ``validated`` allows a booking; ``declared`` means an
# editor declared it but the ANTS does not officially know it; ``consumed``: the file was
# already lodged (read-only). Other values are passed through untouched (forward compatible).
VALIDATED = "validated"
DECLARED = "declared"
UNKNOWN = "unknown"
EXPIRED = "expired"
CONSUMED = "consumed"

APPOINTMENT_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
PARIS = ZoneInfo("Europe/Paris")
_APPOINTMENT_DATE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
# Statuses that say "not now" rather than "no": they count as unavailability.
_TRANSIENT_4XX = frozenset({408, 425, 429})


def normalise_application_id(value: str) -> str:
    """The pre-request number as the ANTS stores it: without spaces, upper-case.

    Residents copy it from a PDF or type it in lower case, sometimes grouped in blocks
    (``ab 123 456 78``). Raises ``ValueError`` with a message meant for them otherwise.
    """
    candidate = "".join(value.split()).upper()
    if not APPLICATION_ID.match(candidate):
        raise ValueError(APPLICATION_ID_MESSAGE)
    return candidate


def format_appointment_date(when: datetime) -> str:
    """``appointment_date`` for the API: Paris wall-clock time, ``YYYY-MM-DD HH:MM:SS``.

    An aware datetime is converted to Paris time; a naive one is taken as already Paris
    wall-clock time (never as UTC: the ANTS shows the value as is).
    """
    if when.tzinfo is not None:
        when = when.astimezone(PARIS)
    return when.strftime(APPOINTMENT_DATE_FORMAT)


def _check_appointment_date(value: str) -> None:
    # A wrong format would be refused (422) on every retry: fail before the network instead.
    try:
        if not _APPOINTMENT_DATE.match(value):
            raise ValueError
        datetime.strptime(value, APPOINTMENT_DATE_FORMAT)
    except ValueError:
        raise ValueError(
            f"appointment_date must be Paris local time 'YYYY-MM-DD HH:MM:SS', got {value!r}"
        ) from None


@dataclass(slots=True)
class AntsAppointment:
    """An appointment declared for a pre-request number, by us or by another editor."""

    management_url: str
    meeting_point: str
    meeting_point_id: str
    appointment_date: str  # Paris wall-clock time, as the API gives it
    editor_comment: str = ""


@dataclass(slots=True)
class AntsStatus:
    """What the ANTS knows of one pre-request number."""

    application_id: str
    status: str
    appointments: list[AntsAppointment] = field(default_factory=list)

    @property
    def bookable(self) -> bool:
        """Whether a new appointment may be booked: ``validated`` and no appointment anywhere."""
        return self.status == VALIDATED and not self.appointments

    def bookable_except(self, management_url: str) -> bool:
        """Like ``bookable``, ignoring the appointment declared with ``management_url``
        (ours, when the resident moves it: the move deletes it before declaring the new one)."""
        return self.status == VALIDATED and all(
            a.management_url == management_url for a in self.appointments
        )


class AntsError(Exception):
    """A call to the coordination API failed; see the two subclasses.

    ``str()`` stays short and holds no personal data (fit for a ``last_error`` column).
    """

    def __init__(self, message: str, *, status_code: int | None = None, detail: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail  # the answer's ``detail`` (or body excerpt), for debugging


class AntsUnavailable(AntsError):
    """The service could not be asked (timeout, connection, 5xx, 408/429, unreadable answer):
    the caller's outage policy applies, and a retry later may succeed."""


class AntsRejected(AntsError):
    """The service refused the call (401 bad token, other 4xx, ``success: false``): a
    configuration problem or a bug on our side, which retrying will not fix."""


class AntsClient:
    """Async client of the coordination API; one instance per process, closed with ``aclose``.

    ``base_url`` ends with ``/api`` (``ANTS_PRODUCTION_URL``, ``ANTS_INTEGRATION_URL`` or a test
    peer's); ``timeout`` bounds each phase (connect, write, read, pool) of one call, so a slow
    ANTS cannot hold a resident's booking request for long.
    """

    def __init__(self, base_url: str, token: str, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers={AUTH_HEADER: token, "accept": "application/json"},
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,  # a redirect would be a misconfigured URL: say so
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=5),
        )

    async def __aenter__(self) -> AntsClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    # -- calls -------------------------------------------------------------------------------

    async def status(
        self, application_ids: Sequence[str], meeting_point_id: str | None = None
    ) -> dict[str, AntsStatus]:
        """Status and declared appointments of each number, keyed by normalised number.

        The numbers are normalised (``ValueError`` if one is malformed) and de-duplicated; one
        the answer leaves out is reported ``unknown`` with no appointment. ``meeting_point_id``
        tells the ANTS where the booking is attempted (optional).
        """
        ids = list(dict.fromkeys(normalise_application_id(i) for i in application_ids))
        if not ids:
            return {}
        params: list[tuple[str, str]] = [("application_ids", i) for i in ids]
        if meeting_point_id is not None:
            params.append(("meeting_point_id", meeting_point_id))
        doc = await self._call("GET", "status", params, ids)
        if not isinstance(doc, dict):
            raise _unreadable("GET", "status", ids, "not an object")
        # Match keys whatever their case: the number is case-insensitive for residents.
        by_id = {str(k).upper(): v for k, v in doc.items()}
        result: dict[str, AntsStatus] = {}
        for app_id in ids:
            entry = by_id.get(app_id)
            if entry is None:
                result[app_id] = AntsStatus(app_id, UNKNOWN, [])
                continue
            try:
                result[app_id] = _parse_status(app_id, entry)
            except (TypeError, ValueError, KeyError) as exc:
                raise _unreadable("GET", "status", ids, str(exc)) from None
        return result

    async def declare(
        self,
        application_id: str,
        meeting_point: str,
        meeting_point_id: str,
        appointment_date: str,
        management_url: str,
    ) -> None:
        """Declare an appointment (``appointment_date``: Paris time, ``YYYY-MM-DD HH:MM:SS``;
        ``management_url``: where the resident moves or cancels it)."""
        app_id = normalise_application_id(application_id)
        _check_appointment_date(appointment_date)
        params = [
            ("application_id", app_id),
            ("meeting_point", meeting_point),
            ("meeting_point_id", meeting_point_id),
            ("appointment_date", appointment_date),
            ("management_url", management_url),
        ]
        doc = await self._call("POST", "appointments", params, [app_id])
        if not isinstance(doc, dict) or "success" not in doc:
            raise _unreadable("POST", "appointments", [app_id], "no 'success'")
        if doc["success"] is not True:
            raise AntsRejected(
                f"ANTS POST appointments {app_id}: success={doc['success']!r}"[:200],
                status_code=200,
                detail=doc.get("detail"),
            )
        log.info("ANTS appointment declared for %s", app_id)

    async def delete(
        self,
        application_id: str,
        meeting_point: str,
        meeting_point_id: str,
        appointment_date: str,
    ) -> int:
        """Delete the appointment declared for the number at that place and time; returns the
        number of rows the ANTS removed (0: nothing matched, e.g. a retried delete)."""
        app_id = normalise_application_id(application_id)
        _check_appointment_date(appointment_date)
        params = [
            ("application_id", app_id),
            ("meeting_point", meeting_point),
            ("meeting_point_id", meeting_point_id),
            ("appointment_date", appointment_date),
        ]
        doc = await self._call("DELETE", "appointments", params, [app_id])
        rowcount = doc.get("rowcount") if isinstance(doc, dict) else None
        # bool is an int: refuse it, it would mean a changed contract.
        if not isinstance(rowcount, int) or isinstance(rowcount, bool) or rowcount < 0:
            raise _unreadable("DELETE", "appointments", [app_id], "no integer 'rowcount'")
        log.info("ANTS appointment deleted for %s (rowcount %d)", app_id, rowcount)
        return rowcount

    # -- plumbing ----------------------------------------------------------------------------

    async def _call(
        self, method: str, path: str, params: list[tuple[str, str]], ids: list[str]
    ) -> Any:
        """One request; the decoded JSON of a 2xx answer, else ``AntsUnavailable`` /
        ``AntsRejected``. ``ids`` only feed the log and error messages."""
        where = _where(method, path, ids)
        try:
            # No body at all, even on POST: the API reads the query string only.
            response = await self._client.request(method, path, params=tuple(params))
        except httpx.TimeoutException as exc:
            log.warning("%s: timeout (%s)", where, type(exc).__name__)
            raise AntsUnavailable(f"{where}: timeout ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:  # connection refused/reset, DNS, protocol errors
            log.warning("%s: %s", where, type(exc).__name__)
            raise AntsUnavailable(f"{where}: {type(exc).__name__}") from exc
        code = response.status_code
        if 200 <= code < 300:
            try:
                return response.json()
            except ValueError:
                raise _unreadable(method, path, ids, "not JSON", code) from None
        detail = _detail(response)
        if code >= 500 or code in _TRANSIENT_4XX or code < 200 or 300 <= code < 400:
            log.warning("%s: HTTP %d", where, code)
            raise AntsUnavailable(f"{where}: HTTP {code}", status_code=code, detail=detail)
        if code == 401:
            # The token is the commune's configuration, never the resident's doing.
            log.error("%s: HTTP 401, the ANTS refused our token", where)
        else:
            log.warning("%s: HTTP %d", where, code)
        raise AntsRejected(f"{where}: HTTP {code}", status_code=code, detail=detail)


def _where(method: str, path: str, ids: list[str]) -> str:
    """``ANTS GET status AB12345678,CD…(+3)``: short enough for logs and a ``last_error``."""
    shown = ",".join(ids[:3]) + (f"…(+{len(ids) - 3})" if len(ids) > 3 else "")
    return f"ANTS {method} {path} {shown}"


def _unreadable(
    method: str, path: str, ids: list[str], why: str, code: int = 200
) -> AntsUnavailable:
    """An answer we cannot read counts as unavailability: the contract changed or a proxy
    answered in its place, and the ANTS may well be fine again later."""
    where = _where(method, path, ids)
    log.warning("%s: unreadable answer (%s)", where, why)
    return AntsUnavailable(f"{where}: unreadable answer ({why})"[:200], status_code=code)


def _detail(response: httpx.Response) -> Any:
    """FastAPI's ``detail`` if the body has one, else the start of the body."""
    try:
        doc = response.json()
    except ValueError:
        return response.text[:200]
    return doc.get("detail", doc) if isinstance(doc, dict) else doc


def _parse_status(app_id: str, entry: Any) -> AntsStatus:
    """One ``{"status": ..., "appointments": [...]}`` entry; TypeError/KeyError if malformed."""
    if not isinstance(entry, dict) or not isinstance(entry.get("status"), str):
        raise TypeError(f"{app_id}: no status")
    raw = entry.get("appointments") or []
    if not isinstance(raw, list):
        raise TypeError(f"{app_id}: appointments is not a list")
    appointments = []
    for item in raw:
        if not isinstance(item, dict):
            raise TypeError(f"{app_id}: appointment is not an object")
        appointments.append(
            AntsAppointment(
                management_url=str(item.get("management_url") or ""),
                meeting_point=str(item.get("meeting_point") or ""),
                meeting_point_id=str(item.get("meeting_point_id") or ""),
                appointment_date=str(item.get("appointment_date") or ""),
                editor_comment=str(item.get("editor_comment") or ""),
            )
        )
    return AntsStatus(app_id, entry["status"], appointments)
