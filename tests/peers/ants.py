"""The ANTS coordination ("optimisation") API on loopback, for tests and benchmarks.

It answers like ``https://api-coordination.rendezvouspasseport.ants.gouv.fr/api`` does (a
FastAPI service, hence ``{"detail": ...}`` errors and 422 for invalid parameters):

- ``GET /api/status?application_ids=A&application_ids=B[&meeting_point_id=]`` →
  ``{"A": {"status": "validated", "appointments": [...]}, "B": {"status": "unknown", ...}}``:
  every requested number is answered (``unknown`` by default); the appointments of every
  editor are visible; ``meeting_point_id`` is accepted and recorded but filters nothing;
- ``POST /api/appointments?application_id=&meeting_point=&meeting_point_id=&appointment_date=
  &management_url=`` → ``{"success": true}``; appointments are keyed by
  ``(application_id, management_url)`` as the ANTS seems to do, so declaring the same pair
  again replaces the first declaration (a guess: RDV-SP's doc only says "semble");
- ``DELETE /api/appointments?application_id=&meeting_point=&meeting_point_id=
  &appointment_date=`` → ``{"rowcount": n}``, removing the number's appointments with that
  ``meeting_point_id`` and ``appointment_date`` (``meeting_point``, a display name, is required
  but not compared).

Checked like the real API: the ``x-rdv-opt-auth-token`` header (401
``{"detail": "X-RDV-OPT-AUTH-TOKEN header invalid"}``), required parameters and
``appointment_date`` in ``YYYY-MM-DD HH:MM:SS`` (422 with FastAPI's ``detail`` list). Parameters
are read from the **query string only**: a JSON or form body is ignored, as the real API does,
so a client that sends its parameters in the body gets a 422 "field required" (the body's size
is recorded in ``calls`` so a test can show it was sent and ignored).

Failure modes: ``down()`` / ``up()`` stop and restart the server on the same port (connection
refused); ``fail_with(503)`` answers every call with that status (an HTML page for 5xx, like a
load balancer in front of the API); ``slow(seconds)`` delays every answer (client timeouts);
``heal()`` clears both; ``times=k`` limits a mode to the next k calls.

In a test::

    with AntsPeer() as ants:                       # .base_url ends with /api, .token
        ants.set_status("AB12345678", "validated")
        client = AntsClient(ants.base_url, ants.token, timeout=0.5)
        ...
        [call] = ants.calls                         # .method .path .query .params("key")

As a process (benchmarks)::

    python -m tests.peers.ants --port 0 --token T  # prints "READY http://127.0.0.1:PORT/api"
    RemotePeer(url).call("set_status", application_id="AB12345678", status="validated")
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import re
import secrets
import sys
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from tests.peers.webpush_service import (
    Behaviour,
    LoopbackPeer,
    PeerRequest,
    Reply,
    json_reply,
)

__all__ = ["AntsCall", "AntsPeer", "StoredAppointment"]

AUTH_HEADER = "x-rdv-opt-auth-token"
INVALID_TOKEN = {"detail": "X-RDV-OPT-AUTH-TOKEN header invalid"}
STATUSES = ("validated", "declared", "unknown", "expired", "consumed")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_POST_FIELDS = (
    "application_id",
    "meeting_point",
    "meeting_point_id",
    "appointment_date",
    "management_url",
)
_DELETE_FIELDS = _POST_FIELDS[:4]

# LoopbackPeer's PeerRequest has no query string; ``__call__`` stashes it here for ``handle``
# (same task, same context).
_query_string: contextvars.ContextVar[bytes] = contextvars.ContextVar("ants_query", default=b"")


@dataclass(frozen=True, slots=True)
class AntsCall:
    """One request the peer received under ``/api`` (whatever its outcome)."""

    method: str
    path: str  # without the /api prefix: "/status", "/appointments"
    query: list[tuple[str, str]]  # decoded pairs in wire order, repeated keys kept
    token_ok: bool
    body_length: int  # bodies are ignored, but a test can see one was sent

    def params(self, key: str) -> list[str]:
        """Every value of ``key`` in the query string, in order."""
        return [v for k, v in self.query if k == key]


@dataclass(slots=True)
class StoredAppointment:
    """An appointment in the coordination base, as ``GET /status`` shows it."""

    application_id: str
    management_url: str
    meeting_point: str
    meeting_point_id: str
    appointment_date: str
    editor_comment: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The entry of ``appointments`` in a status answer."""
        doc: dict[str, Any] = {
            "management_url": self.management_url,
            "meeting_point": self.meeting_point,
            "meeting_point_id": self.meeting_point_id,
            "appointment_date": self.appointment_date,
        }
        if self.editor_comment is not None:  # only seen in Lutece's model: not always there
            doc["editor_comment"] = self.editor_comment
        return doc


def _missing(field: str) -> dict[str, Any]:
    return {"loc": ["query", field], "msg": "field required", "type": "value_error.missing"}


class AntsPeer(LoopbackPeer):
    """The coordination API with its state, failure modes and a record of calls."""

    remote_methods: ClassVar[frozenset[str]] = LoopbackPeer.remote_methods | {
        "set_status",
        "add_appointment",
        "appointments_of",
        "fail_with",
        "slow",
        "heal",
        "recorded_calls",
        "clear",
    }

    def __init__(self, token: str | None = None, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.token = token or secrets.token_urlsafe(24)
        self.statuses: dict[str, str] = {}
        # (application_id, management_url) → appointment, in declaration order
        self.appointments: dict[tuple[str, str], StoredAppointment] = {}
        self.calls: list[AntsCall] = []
        self.behaviour = Behaviour()
        self._failure_body: bytes | None = None

    # -- addresses ---------------------------------------------------------------------------
    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT`` once started."""
        if self.port is None:
            raise RuntimeError("peer not started")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/api``: what ``AntsClient`` takes, like the real URL."""
        return self.origin + "/api"

    # -- state -------------------------------------------------------------------------------
    def set_status(self, application_id: str, status: str) -> None:
        """Give a number its ANTS status (``validated``, ``consumed``...; default ``unknown``)."""
        if status not in STATUSES:
            raise ValueError(f"unknown ANTS status {status!r}")
        self.statuses[application_id] = status

    def add_appointment(
        self,
        application_id: str,
        meeting_point: str,
        meeting_point_id: str,
        appointment_date: str,
        management_url: str,
        editor_comment: str | None = None,
    ) -> None:
        """Seed an appointment as if another editor had declared it (no HTTP, no checks)."""
        self.appointments[(application_id, management_url)] = StoredAppointment(
            application_id,
            management_url,
            meeting_point,
            meeting_point_id,
            appointment_date,
            editor_comment,
        )

    def appointments_of(self, application_id: str) -> list[dict[str, Any]]:
        """The number's appointments as ``GET /status`` would list them."""
        return [
            a.as_json() for a in self.appointments.values() if a.application_id == application_id
        ]

    def recorded_calls(self) -> list[dict[str, Any]]:
        """``calls`` as JSON-able dicts (for ``RemotePeer``)."""
        return [
            {
                "method": c.method,
                "path": c.path,
                "query": [list(p) for p in c.query],
                "token_ok": c.token_ok,
                "body_length": c.body_length,
            }
            for c in self.calls
        ]

    def clear(self) -> None:
        """Forget statuses, appointments, recorded calls and failure modes."""
        self.statuses.clear()
        self.appointments.clear()
        self.calls.clear()
        self.heal()

    # -- failure modes -----------------------------------------------------------------------
    def fail_with(self, status: int, body: str | None = None, times: int | None = None) -> None:
        """Answer calls with ``status`` (and ``body`` if given; default: an HTML error page for
        5xx, FastAPI's ``{"detail": ...}`` otherwise); ``times``: the next k calls only."""
        self.behaviour = Behaviour(kind="error", status=status, first=times)
        self._failure_body = body.encode() if body is not None else None

    def slow(self, seconds: float, times: int | None = None) -> None:
        """Wait ``seconds`` before answering (normally) the next calls, or ``times`` of them."""
        self.behaviour = Behaviour(kind="slow", delay=seconds, first=times)

    def heal(self) -> None:
        """Answer normally again (``fail_with`` / ``slow`` off; see ``up`` after ``down``)."""
        self.behaviour = Behaviour()
        self._failure_body = None

    def down(self) -> None:
        """Stop listening: the next calls get "connection refused" until ``up()``.

        Blocks until the server thread has stopped (a second at most, with idle keep-alive
        connections). State and calls are kept.
        """
        if self.port is None:
            raise RuntimeError("peer not started")
        self.stop()

    def up(self) -> None:
        """Listen again on the same port (``base_url`` is unchanged)."""
        if self.port is None:
            raise RuntimeError("peer never started")
        self.start(self.port)

    # -- HTTP --------------------------------------------------------------------------------
    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "http":
            _query_string.set(scope.get("query_string", b""))
            if scope["path"].startswith("/api/_peer/"):  # RemotePeer given base_url (…/api)
                scope = {**scope, "path": scope["path"].removeprefix("/api")}
        await super().__call__(scope, receive, send)

    async def handle(self, request: PeerRequest) -> Reply:
        """Record the call, apply the failure mode, then route."""
        if not request.path.startswith("/api/"):
            return json_reply(404, {"detail": "Not Found"})
        path = request.path.removeprefix("/api")
        query = urllib.parse.parse_qsl(
            _query_string.get().decode("latin-1"), keep_blank_values=True, encoding="utf-8"
        )
        token_ok = secrets.compare_digest(
            request.headers.get(AUTH_HEADER, "").encode(), self.token.encode()
        )
        self.calls.append(AntsCall(request.method, path, query, token_ok, len(request.body)))

        behaviour = self.behaviour
        if behaviour.active():
            if behaviour.kind == "slow":
                await asyncio.sleep(behaviour.delay)
            elif behaviour.kind == "error":
                return self._failure(behaviour.status or 500)

        routes = {"/status": ("GET",), "/appointments": ("POST", "DELETE")}
        if path not in routes:
            return json_reply(404, {"detail": "Not Found"})
        if request.method not in routes[path]:
            return json_reply(405, {"detail": "Method Not Allowed"})
        if not token_ok:
            return json_reply(401, INVALID_TOKEN)
        if path == "/status":
            return self._status(query)
        if request.method == "POST":
            return self._declare(query)
        return self._delete(query)

    def _failure(self, status: int) -> Reply:
        if self._failure_body is not None:
            return status, [(b"content-type", b"text/plain")], self._failure_body
        if status >= 500:
            page = f"<html><body><h1>{status} Service Unavailable</h1></body></html>"
            return status, [(b"content-type", b"text/html")], page.encode()
        return json_reply(status, {"detail": f"HTTP {status}"})

    def _status(self, query: list[tuple[str, str]]) -> Reply:
        ids = [v for k, v in query if k == "application_ids" and v]
        if not ids:
            return json_reply(422, {"detail": [_missing("application_ids")]})
        answer: dict[str, Any] = {}
        for app_id in dict.fromkeys(ids):
            answer[app_id] = {
                "status": self.statuses.get(app_id, "unknown"),
                "appointments": self.appointments_of(app_id),
            }
        return json_reply(200, answer)

    def _fields(
        self, query: list[tuple[str, str]], names: tuple[str, ...]
    ) -> tuple[dict[str, str], Reply | None]:
        """The named single-valued parameters, or a 422 reply listing what is wrong."""
        given = dict(query)  # the last value wins, as in FastAPI for a scalar parameter
        errors = [_missing(n) for n in names if not given.get(n)]
        date = given.get("appointment_date")
        if date and not _valid_date(date):
            errors.append(
                {
                    "loc": ["query", "appointment_date"],
                    "msg": "appointment_date must be 'YYYY-MM-DD HH:MM:SS'",
                    "type": "value_error",
                }
            )
        if errors:
            return {}, json_reply(422, {"detail": errors})
        return {n: given[n] for n in names}, None

    def _declare(self, query: list[tuple[str, str]]) -> Reply:
        fields, error = self._fields(query, _POST_FIELDS)
        if error is not None:
            return error
        self.add_appointment(**fields)
        return json_reply(200, {"success": True})

    def _delete(self, query: list[tuple[str, str]]) -> Reply:
        fields, error = self._fields(query, _DELETE_FIELDS)
        if error is not None:
            return error
        doomed = [
            key
            for key, a in self.appointments.items()
            if a.application_id == fields["application_id"]
            and a.meeting_point_id == fields["meeting_point_id"]
            and a.appointment_date == fields["appointment_date"]
        ]
        for key in doomed:
            del self.appointments[key]
        return json_reply(200, {"rowcount": len(doomed)})


def _valid_date(value: str) -> bool:
    if not _DATE.match(value):
        return False
    try:
        datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return False
    return True


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.peers.ants --port 0 [--token T]``: serve until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=None)
    args = parser.parse_args(argv)
    AntsPeer(token=args.token).serve_forever(args.port)


if __name__ == "__main__":
    main(sys.argv[1:])
