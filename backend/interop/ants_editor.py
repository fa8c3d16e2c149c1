"""The ANTS editor API: the national appointment search (rendezvouspasseport.ants.gouv.fr)
calls it to list our meeting points, their free slots, and appointments by pre-request number.

Shapes follow the hub exactly: lists as repeated keys, times in Paris WALL-CLOCK time with a
literal "Z" (the hub's quirk), `callback_url` deep-linking to our booking page.
"""

from __future__ import annotations

import hmac
from datetime import UTC, date, datetime
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, MediaType, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from backend.appointments import slots
from backend.appointments.ants import normalise_application_id
from backend.appointments.schedule import free_times, load_schedules
from backend.appointments.tables import Booking, BookingAnts, Site
from backend.settings import Settings

REASONS = {"CNI", "PASSPORT", "CNI-PASSPORT"}


_json = msgspec.json.encode


def _error(status: int, message: str) -> Response[dict[str, Any]]:
    return Response({"error": {"code": status, "message": message}}, status_code=status)


def _authorised(request: Request[Any, Any, Any], settings: Settings) -> bool:
    token = request.headers.get("x-hub-rdv-auth-token", "")
    return bool(settings.ants_hub_token) and hmac.compare_digest(token, settings.ants_hub_token)


class AntsEditorController(Controller):
    """GET /api/ants/getManagedMeetingPoints, availableTimeSlots, searchApplicationIds."""

    path = "/api/ants"
    tags = ["Interopérabilité"]

    @get("/getManagedMeetingPoints", operation_id="antsMeetingPoints")
    async def meeting_points(
        self, request: Request[Any, Any, Any], settings: NamedDependency[Settings]
    ) -> Response[Any]:
        """Every site of this Relais installation, as the hub lists them."""
        if not _authorised(request, settings):
            return _error(401, "X-HUB-RDV-AUTH-TOKEN header invalid")
        rows = await Site.select().where(Site.active == True).order_by(Site.name)  # noqa: E712
        return Response(
            [
                {
                    "id": str(r["id"]),
                    "name": r["name"],
                    "longitude": r["lon"],
                    "latitude": r["lat"],
                    "public_entry_address": r["address"],
                    "zip_code": r["zip_code"],
                    "city_name": r["city"],
                    "website": settings.public_url,
                }
                for r in rows
            ]
        )

    @get("/availableTimeSlots", operation_id="antsAvailableTimeSlots")
    async def available(
        self,
        request: Request[Any, Any, Any],
        settings: NamedDependency[Settings],
        meeting_point_ids: Annotated[list[str], QueryParameter()],
        start_date: Annotated[date, QueryParameter()],
        end_date: Annotated[date, QueryParameter()],
        reason: Annotated[str, QueryParameter()] = "CNI",
        documents_number: Annotated[int, QueryParameter(ge=1, le=10)] = 1,
    ) -> Response[Any]:
        """Free slots per meeting point: {"<id>": [{"datetime": "…Z", "callback_url": "…"}]}."""
        if not _authorised(request, settings):
            return _error(401, "X-HUB-RDV-AUTH-TOKEN header invalid")
        if start_date > end_date:
            return _error(400, "start_date is after end_date")
        if reason not in REASONS:
            return _error(400, f"unknown reason {reason}")
        try:
            ids = [UUID(i) for i in meeting_point_ids]
        except ValueError:
            return _error(404, "unknown meeting point")
        sites = await Site.select().where(Site.id.is_in(ids) & (Site.active == True))  # noqa: E712
        if len(sites) != len(set(ids)):
            return _error(404, "unknown meeting point")
        now = datetime.now(UTC)
        # The JSON is written here, not by the serialiser: ~40,000 slots for 20 sites over 3
        # months, each a dict of two strings, made the dicts and their encoding a large share
        # of the time. Sites share their opening hours, and counters the times of their
        # slots, so each time is formatted once per zone (~2,000 distinct times): the answer
        # is the one `Response(dict)` gave, byte for byte.
        written: dict[str, dict[int, tuple[bytes, bytes]]] = {}
        parts: list[bytes] = []
        for schedule in await load_schedules(sites, start_date, end_date, now):
            site = schedule.site
            key = _json(str(site["id"]))
            if documents_number > site["max_persons"]:
                parts.append(key + b":[]")
                continue
            zone = ZoneInfo(site["timezone"])
            texts = written.setdefault(site["timezone"], {})
            # '{"datetime":"…","callback_url":"' + <site URL> + <start> + <reason, persons>'"}'
            url = _json(f"{settings.public_url}/rendez-vous?site={site['id']}&start=")[1:-1]
            tail = _json(f"&reason={reason}&persons={documents_number}")[1:] + b"}"
            entries = []
            free = free_times(schedule, reason, documents_number, start_date, end_date, now)
            for start, _end, _counter in free:
                text = texts.get(start)
                if text is None:
                    instant = datetime.fromtimestamp(start, UTC)
                    text = texts[start] = (
                        b'{"datetime":'
                        + _json(slots.ants_datetime(instant, zone))
                        + b',"callback_url":"',
                        _json(instant.isoformat())[1:-1],
                    )
                entries.append(text[0] + url + text[1] + tail)
            parts.append(key + b":[" + b",".join(entries) + b"]")
        return Response(b"{" + b",".join(parts) + b"}", media_type=MediaType.JSON)

    @get("/searchApplicationIds", operation_id="antsSearchApplicationIds")
    async def search(
        self,
        request: Request[Any, Any, Any],
        settings: NamedDependency[Settings],
        application_ids: Annotated[list[str], QueryParameter()],
    ) -> Response[Any]:
        """Our active appointments of these pre-request numbers."""
        if not _authorised(request, settings):
            return _error(401, "X-HUB-RDV-AUTH-TOKEN header invalid")
        try:
            ids = [normalise_application_id(i) for i in application_ids]
        except ValueError as exc:
            return _error(400, str(exc))
        answer: dict[str, list[dict[str, str]]] = {i: [] for i in ids}
        links = await BookingAnts.select(BookingAnts.application_id, BookingAnts.booking).where(
            BookingAnts.active_key.is_in(ids)
        )
        for link in links:
            row = await Booking.select().where(Booking.id == link["booking"]).first()
            site = await Site.select().where(Site.id == row["site"]).first() if row else None
            if row is None or site is None:
                continue
            answer[link["application_id"]].append(
                {
                    "meeting_point": site["name"],
                    "datetime": slots.ants_datetime(row["starts_at"], ZoneInfo(site["timezone"])),
                    "management_url": f"{settings.public_url}/api/v1/appointments/{row['id']}",
                    "cancel_url": f"{settings.public_url}/api/v1/appointments/{row['id']}",
                }
            )
        return Response(answer)
