"""Staff HTTP API of appointments (état-civil agents and admins): sites, counters, opening
rules, closures, the day's planning, check-in, no-show, blocks, booking on behalf."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from msgspec import Meta

from backend.appointments import booking
from backend.appointments.booking import Contact, Identity
from backend.appointments.tables import Booking, BookingUnit, Closure, Counter, OpeningRule, Site
from backend.database import is_unique_violation, transaction
from backend.exceptions import Conflict, FieldError, InvalidInput, NotFound
from backend.guards import staff_required
from backend.settings import Settings
from geo import GeoError, GeoPoint, require_in_france
from mobile_api.appointment_schemas import AppointmentOut, ConfirmedOut, Reason
from mobile_api.controllers.appointments import appointment_out
from mobile_api.schemas import CamelStruct, Latitude, Longitude

FiveMinutes = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][05]$", examples=["09:00"])]


class SiteIn(CamelStruct):
    """A site and its booking policy."""

    name: Annotated[str, Meta(min_length=2, max_length=150)]
    lat: Latitude
    lon: Longitude
    address: Annotated[str, Meta(max_length=300)] = ""
    zip_code: Annotated[str, Meta(max_length=10)] = ""
    city: Annotated[str, Meta(max_length=100)] = ""
    phone: Annotated[str, Meta(max_length=30)] = ""
    email: Annotated[str, Meta(max_length=254)] = ""
    step_minutes: Annotated[int, Meta(ge=5, le=120, multiple_of=5)] = 15
    base_cni_minutes: Annotated[int, Meta(ge=5, le=240)] = 15
    base_passport_minutes: Annotated[int, Meta(ge=5, le=240)] = 20
    base_both_minutes: Annotated[int, Meta(ge=5, le=240)] = 25
    per_extra_person_minutes: Annotated[int, Meta(ge=0, le=120)] = 10
    max_persons: Annotated[int, Meta(ge=1, le=10)] = 4
    min_notice_minutes: Annotated[int, Meta(ge=0, le=20160)] = 120
    horizon_days: Annotated[int, Meta(ge=1, le=365)] = 60
    release_time: FiveMinutes = "08:00"
    hold_minutes: Annotated[int, Meta(ge=2, le=60)] = 10


class CounterIn(CamelStruct):
    """A counter (station) of a site."""

    name: Annotated[str, Meta(min_length=1, max_length=100)]


class RuleIn(CamelStruct):
    """A weekly opening of a counter (times on a 5-minute grid, the unit of bookings)."""

    weekday: Annotated[int, Meta(ge=0, le=6)]
    start: FiveMinutes
    end: FiveMinutes
    valid_from: date
    valid_to: date | None = None


class ClosureIn(CamelStruct):
    """An exceptional closure (public holidays are already computed)."""

    start: date
    end: date
    counter_id: UUID | None = None
    reason: Annotated[str, Meta(max_length=200)] = ""


class BlockIn(CamelStruct):
    """Take a slot out of booking (a training, a broken kit)."""

    counter_id: UUID
    start: datetime
    minutes: Annotated[int, Meta(ge=5, le=600, multiple_of=5)]


class OnBehalfIn(CamelStruct):
    """A booking for a resident who phoned or came to the counter."""

    start: datetime
    reason: Reason
    ants_ids: list[str]
    name: Annotated[str, Meta(max_length=150)]
    persons: Annotated[int, Meta(ge=1, le=10)] = 1
    email: Annotated[str, Meta(max_length=254)] = ""
    phone: Annotated[str, Meta(max_length=30)] = ""
    counter_id: UUID | None = None


class PlanningEntry(CamelStruct):
    """A line of a counter's day."""

    appointment: AppointmentOut
    counter_name: str


async def _site(commune_id: UUID, site_id: UUID) -> dict[str, Any]:
    row = await Site.select().where((Site.id == site_id) & (Site.commune == commune_id)).first()
    if row is None:
        raise NotFound("Ce lieu est introuvable.")
    return row


async def _counter(commune_id: UUID, counter_id: UUID) -> dict[str, Any]:
    row = await Counter.select().where(Counter.id == counter_id).first()
    if row is None:
        raise NotFound("Ce guichet est introuvable.")
    await _site(commune_id, row["site"])
    return row


class StaffAppointmentController(Controller):
    """Sites, schedules and the day's planning."""

    path = "/appointments"
    tags = ["Rendez-vous"]
    guards = [staff_required("agent")]

    @post(
        "/sites",
        operation_id="createSite",
        status_code=HTTP_201_CREATED,
        guards=[staff_required("admin")],
    )
    async def create_site(
        self, data: JSONBody[SiteIn], commune_id: NamedDependency[UUID]
    ) -> dict[str, str]:
        """Create a site with its booking policy."""
        try:
            require_in_france(GeoPoint(data.lat, data.lon))
        except GeoError as exc:
            raise InvalidInput(str(exc), errors=[FieldError("lat", str(exc))]) from exc
        site_id = uuid4()
        values = {k: getattr(data, k) for k in data.__struct_fields__}
        await Site.insert(Site(id=site_id, commune=commune_id, **values))
        return {"id": str(site_id)}

    @post(
        "/sites/{site_id:uuid}/counters",
        operation_id="createCounter",
        status_code=HTTP_201_CREATED,
        guards=[staff_required("admin")],
    )
    async def create_counter(
        self, site_id: FromPath[UUID], data: JSONBody[CounterIn], commune_id: NamedDependency[UUID]
    ) -> dict[str, str]:
        """Add a counter to a site."""
        await _site(commune_id, site_id)
        counter_id = uuid4()
        await Counter.insert(Counter(id=counter_id, site=site_id, name=data.name))
        return {"id": str(counter_id)}

    @post(
        "/counters/{counter_id:uuid}/rules",
        operation_id="addOpeningRule",
        status_code=HTTP_201_CREATED,
        guards=[staff_required("admin")],
    )
    async def add_rule(
        self, counter_id: FromPath[UUID], data: JSONBody[RuleIn], commune_id: NamedDependency[UUID]
    ) -> dict[str, str]:
        """Open a counter on a weekday between two times, over a validity period."""
        await _counter(commune_id, counter_id)
        if data.start >= data.end:
            raise InvalidInput(
                "L'heure de fin suit l'heure de début.",
                errors=[FieldError("end", "Fin avant le début.")],
            )
        if data.valid_to is not None and data.valid_to < data.valid_from:
            raise InvalidInput(
                "Période inversée.", errors=[FieldError("validTo", "Période inversée.")]
            )
        await OpeningRule.insert(
            OpeningRule(
                counter=counter_id,
                weekday=data.weekday,
                start_time=data.start,
                end_time=data.end,
                valid_from=data.valid_from,
                valid_to=data.valid_to,
            )
        )
        return {"status": "ok"}

    @post(
        "/sites/{site_id:uuid}/closures",
        operation_id="addClosure",
        status_code=HTTP_201_CREATED,
        guards=[staff_required("admin")],
    )
    async def add_closure(
        self, site_id: FromPath[UUID], data: JSONBody[ClosureIn], commune_id: NamedDependency[UUID]
    ) -> dict[str, str]:
        """Close a site (or one counter) on some days."""
        await _site(commune_id, site_id)
        if data.end < data.start:
            raise InvalidInput("Période inversée.", errors=[FieldError("end", "Période inversée.")])
        if data.counter_id is not None:
            await _counter(commune_id, data.counter_id)
        await Closure.insert(
            Closure(
                site=site_id,
                counter=data.counter_id,
                start_date=data.start,
                end_date=data.end,
                reason=data.reason,
            )
        )
        return {"status": "ok"}

    @get("/sites/{site_id:uuid}/planning", operation_id="dayPlanning")
    async def planning(
        self,
        site_id: FromPath[UUID],
        commune_id: NamedDependency[UUID],
        day: Annotated[date, QueryParameter(name="date")],
    ) -> list[PlanningEntry]:
        """The day's appointments and blocks, per counter, in time order."""
        site = await _site(commune_id, site_id)
        zone = ZoneInfo(site["timezone"])
        start = datetime.combine(day, time(0), tzinfo=zone)
        end = start + timedelta(days=1)
        counters = {
            c["id"]: c["name"] for c in await Counter.select().where(Counter.site == site_id)
        }
        rows = (
            await Booking.select()
            .where(
                (Booking.site == site_id)
                & (Booking.starts_at >= start)
                & (Booking.starts_at < end)
                & Booking.status.is_in(["confirmed", "checked_in", "no_show", "blocked"])
            )
            .order_by(Booking.starts_at)
            .output(load_json=True)
        )
        return [
            PlanningEntry(
                appointment=appointment_out(r), counter_name=counters.get(r["counter"], "")
            )
            for r in rows
        ]

    @post(
        "/bookings/{booking_id:uuid}/{outcome:str}",
        operation_id="markAppointment",
        status_code=HTTP_200_OK,
    )
    async def mark(
        self,
        booking_id: FromPath[UUID],
        outcome: FromPath[Literal["check-in", "no-show"]],
        commune_id: NamedDependency[UUID],
    ) -> AppointmentOut:
        """The resident came (check-in) or did not (no-show)."""
        row = await booking.get_booking(booking_id)
        await _site(commune_id, row["site"])
        status = "checked_in" if outcome == "check-in" else "no_show"
        changed = (
            await Booking.update({Booking.status: status})
            .where(
                (Booking.id == booking_id)
                & Booking.status.is_in(["confirmed", "checked_in", "no_show"])
            )
            .returning(Booking.id)
        )
        if not changed:
            raise Conflict("Seul un rendez-vous confirmé peut être pointé.")
        return appointment_out(await booking.get_booking(booking_id))

    @post("/sites/{site_id:uuid}/blocks", operation_id="blockSlot", status_code=HTTP_201_CREATED)
    async def block(
        self, site_id: FromPath[UUID], data: JSONBody[BlockIn], commune_id: NamedDependency[UUID]
    ) -> AppointmentOut:
        """Take a period of a counter out of booking (refused if someone is booked then)."""
        await _site(commune_id, site_id)
        await _counter(commune_id, data.counter_id)
        start = data.start.astimezone(UTC)
        end = start + timedelta(minutes=data.minutes)
        block_id = uuid4()
        try:
            async with transaction():
                await Booking.insert(
                    Booking(
                        id=block_id,
                        site=site_id,
                        counter=data.counter_id,
                        starts_at=start,
                        ends_at=end,
                        reason="BLOCK",
                        persons=0,
                        status="blocked",
                        source="staff",
                    )
                )
                await BookingUnit.insert(
                    *[
                        BookingUnit(booking=block_id, unit_key=k)
                        for k in booking.units_of(data.counter_id, start, end)
                    ]
                )
        except Exception as exc:
            if is_unique_violation(exc):
                raise Conflict(
                    "Un rendez-vous occupe déjà cette période : déplacez-le d'abord."
                ) from exc
            raise
        return appointment_out(await booking.get_booking(block_id))

    @post(
        "/sites/{site_id:uuid}/bookings", operation_id="bookOnBehalf", status_code=HTTP_201_CREATED
    )
    async def on_behalf(
        self,
        request: Request[Any, Any, Any],
        site_id: FromPath[UUID],
        data: JSONBody[OnBehalfIn],
        commune_id: NamedDependency[UUID],
        settings: NamedDependency[Settings],
    ) -> ConfirmedOut:
        """Book for a resident who phoned: the same checks as in the app."""
        await _site(commune_id, site_id)
        who = Identity(None, None, staff=True)
        held = await booking.hold(
            site_id, data.start, data.reason, data.persons, who, counter_id=data.counter_id
        )
        result = await booking.confirm(
            held["id"],
            who,
            data.ants_ids,
            Contact(data.name, data.email, data.phone),
            client=request.app.state.ants,
            outage_policy=settings.ants_outage_policy,
            limit=settings.appointment_limit_per_person,
            public_url=settings.public_url,
            organiser=settings.mail_from,
        )
        return ConfirmedOut(appointment=appointment_out(result.booking), manage_token=result.token)
