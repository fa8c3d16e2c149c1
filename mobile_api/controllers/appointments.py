"""Residents find free slots, hold one, confirm with their ANTS numbers, cancel or move."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from backend.appointments import booking
from backend.appointments.ants import AntsClient
from backend.appointments.booking import Contact, Identity
from backend.appointments.calendar import invitation
from backend.appointments.nearest import nearest_free_slots
from backend.appointments.schedule import free_slots, get_site, load_schedules
from backend.appointments.tables import Site
from backend.auth import Principal
from backend.exceptions import FieldError, InvalidInput, Unauthenticated
from backend.ratelimit import RateLimiter
from backend.settings import Settings
from geo import haversine_m
from mobile_api.appointment_schemas import (
    AppointmentOut,
    ConfirmedOut,
    ConfirmIn,
    HoldIn,
    MoveIn,
    NearestSite,
    Reason,
    SiteOut,
    SlotOut,
    WaitlistIn,
)
from mobile_api.deps import client_ip


def site_out(row: dict[str, Any]) -> SiteOut:
    """A site for the app."""
    return SiteOut(
        id=row["id"],
        name=row["name"],
        address=row["address"],
        zip_code=row["zip_code"],
        city=row["city"],
        lat=row["lat"],
        lon=row["lon"],
        phone=row["phone"],
    )


def appointment_out(row: dict[str, Any]) -> AppointmentOut:
    """An appointment for the app."""
    return AppointmentOut(
        id=row["id"],
        site_id=row["site"],
        counter_id=row["counter"],
        status=row["status"],
        reason=row["reason"],
        persons=row["persons"],
        start=row["starts_at"],
        end=row["ends_at"],
        hold_expires_at=row["hold_expires_at"],
        ants_ids=row["ants_ids"],
        name=row["name"],
        email=row["email"],
        sequence=row["sequence"],
    )


def identity(principal: Principal) -> Identity:
    """The resident (account and/or device); booking needs one of them."""
    if principal.account_id is None and principal.device_id is None:
        raise Unauthenticated(
            "Connectez-vous ou enregistrez l'appareil (X-Device-Token) pour réserver."
        )
    return Identity(principal.account_id, principal.device_id, staff=principal.is_staff)


class AppointmentController(Controller):
    """Passport and ID-card appointments."""

    path = "/appointments"
    tags = ["Rendez-vous"]

    @get("/sites", operation_id="listAppointmentSites")
    async def sites(self) -> list[SiteOut]:
        """Every site taking appointments."""
        rows = await Site.select().where(Site.active == True).order_by(Site.name)  # noqa: E712
        return [site_out(r) for r in rows]

    @get("/slots", operation_id="siteSlots")
    async def slots(
        self,
        request: Request[Any, Any, Any],
        limiter: NamedDependency[RateLimiter],
        settings: NamedDependency[Settings],
        site_id: Annotated[UUID, QueryParameter(name="siteId")],
        reason: Annotated[Reason, QueryParameter()],
        persons: Annotated[int, QueryParameter(ge=1, le=10)] = 1,
        first: Annotated[date | None, QueryParameter(name="from")] = None,
        last: Annotated[date | None, QueryParameter(name="to")] = None,
    ) -> list[SlotOut]:
        """Free slots of one site over a date range (default: the next 4 weeks)."""
        await limiter.hit(f"slots:ip:{client_ip(request)}", *settings.rate_slots_per_ip)
        now = datetime.now(UTC)
        first = first or now.date()
        last = last or first + timedelta(days=28)
        if last < first or (last - first).days > 92:
            message = "Choisissez une période de trois mois au plus, « to » après « from »."
            raise InvalidInput(message, errors=[FieldError("to", message)])
        site = await get_site(site_id)
        [schedule] = await load_schedules([site], first, last, now)
        return [
            SlotOut(site_id=site_id, counter_id=s.counter_id, start=s.start, end=s.end)
            for s in free_slots(schedule, reason, persons, first, last, now)
        ]

    @get("/nearest", operation_id="nearestSlots")
    async def nearest(
        self,
        request: Request[Any, Any, Any],
        limiter: NamedDependency[RateLimiter],
        settings: NamedDependency[Settings],
        reason: Annotated[Reason, QueryParameter()],
        lat: Annotated[float, QueryParameter(ge=-90, le=90)],
        lon: Annotated[float, QueryParameter(ge=-180, le=180)],
        persons: Annotated[int, QueryParameter(ge=1, le=10)] = 1,
        limit: Annotated[int, QueryParameter(ge=1, le=20)] = 5,
    ) -> list[NearestSite]:
        """The nearest sites with their next free slots (sites without any are left out)."""
        await limiter.hit(f"slots:ip:{client_ip(request)}", *settings.rate_slots_per_ip)
        now = datetime.now(UTC)
        sites = await Site.select().where(Site.active == True)  # noqa: E712
        sites.sort(key=lambda s: haversine_m(lat, lon, s["lat"], s["lon"]))
        return [
            NearestSite(
                site=site_out(site),
                distance_m=round(haversine_m(lat, lon, site["lat"], site["lon"])),
                next_slots=[
                    SlotOut(site_id=site["id"], counter_id=s.counter_id, start=s.start, end=s.end)
                    for s in free
                ],
            )
            for site, free in await nearest_free_slots(sites, reason, persons, limit, now)
        ]

    @post("/holds", operation_id="holdSlot", status_code=HTTP_201_CREATED)
    async def hold(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[HoldIn],
        principal: NamedDependency[Principal],
        limiter: NamedDependency[RateLimiter],
        settings: NamedDependency[Settings],
    ) -> AppointmentOut:
        """Hold a slot for a few minutes while the form is completed."""
        await limiter.hit(f"booking:ip:{client_ip(request)}", *settings.rate_booking_per_ip)
        who = identity(principal)
        row = await booking.hold(
            data.site_id, data.start, data.reason, data.persons, who, counter_id=data.counter_id
        )
        return appointment_out(row)

    @post(
        "/{appointment_id:uuid}/confirm",
        operation_id="confirmAppointment",
        status_code=HTTP_200_OK,
        opt={"idempotent": True},
    )
    async def confirm(
        self,
        request: Request[Any, Any, Any],
        appointment_id: FromPath[UUID],
        data: JSONBody[ConfirmIn],
        principal: NamedDependency[Principal],
        limiter: NamedDependency[RateLimiter],
        settings: NamedDependency[Settings],
    ) -> ConfirmedOut:
        """Confirm the held slot with one ANTS pre-request number per person."""
        await limiter.hit(f"booking:ip:{client_ip(request)}", *settings.rate_booking_per_ip)
        client: AntsClient = request.app.state.ants
        result = await booking.confirm(
            appointment_id,
            identity(principal),
            data.ants_ids,
            Contact(data.name, data.email, data.phone),
            client=client,
            outage_policy=settings.ants_outage_policy,
            limit=settings.appointment_limit_per_person,
            public_url=settings.public_url,
            organiser=settings.mail_from,
        )
        return ConfirmedOut(appointment=appointment_out(result.booking), manage_token=result.token)

    @get("/", operation_id="myAppointments")
    async def mine(self, principal: NamedDependency[Principal]) -> list[AppointmentOut]:
        """Upcoming appointments of the resident."""
        return [appointment_out(r) for r in await booking.my_bookings(identity(principal))]

    @get("/{appointment_id:uuid}", operation_id="getAppointment")
    async def get_one(
        self, appointment_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> AppointmentOut:
        """One of the resident's appointments."""
        return appointment_out(await booking.booking_for(appointment_id, identity(principal)))

    @delete("/{appointment_id:uuid}", operation_id="cancelAppointment", status_code=HTTP_200_OK)
    async def cancel(
        self,
        appointment_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> AppointmentOut:
        """Cancel: the slot is offered to others at once."""
        row = await booking.booking_for(appointment_id, identity(principal))
        row = await booking.cancel(
            row, public_url=settings.public_url, organiser=settings.mail_from
        )
        return appointment_out(row)

    @post("/{appointment_id:uuid}/move", operation_id="moveAppointment", status_code=HTTP_200_OK)
    async def move(
        self,
        appointment_id: FromPath[UUID],
        data: JSONBody[MoveIn],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> AppointmentOut:
        """Move to another slot of the same site (the calendar invitation is updated)."""
        row = await booking.booking_for(appointment_id, identity(principal))
        moved = await booking.move(
            row,
            data.start,
            counter_id=data.counter_id,
            public_url=settings.public_url,
            organiser=settings.mail_from,
        )
        return appointment_out(moved)

    @get("/by-token/{token:str}", operation_id="appointmentByLink")
    async def by_token(self, token: FromPath[str]) -> AppointmentOut:
        """The appointment of a link from the confirmation e-mail (no login needed)."""
        return appointment_out(await booking.booking_by_token(token))

    @post("/by-token/{token:str}/cancel", operation_id="cancelByLink", status_code=HTTP_200_OK)
    async def cancel_by_token(
        self, token: FromPath[str], settings: NamedDependency[Settings]
    ) -> AppointmentOut:
        """Cancel from the e-mail link, without logging in."""
        row = await booking.booking_by_token(token)
        row = await booking.cancel(
            row, public_url=settings.public_url, organiser=settings.mail_from
        )
        return appointment_out(row)

    @post("/by-token/{token:str}/move", operation_id="moveByLink", status_code=HTTP_200_OK)
    async def move_by_token(
        self, token: FromPath[str], data: JSONBody[MoveIn], settings: NamedDependency[Settings]
    ) -> AppointmentOut:
        """Move from the e-mail link, without logging in."""
        row = await booking.booking_by_token(token)
        moved = await booking.move(
            row,
            data.start,
            counter_id=data.counter_id,
            public_url=settings.public_url,
            organiser=settings.mail_from,
        )
        return appointment_out(moved)

    @get("/{appointment_id:uuid}/calendar.ics", operation_id="appointmentIcs")
    async def ics(
        self,
        appointment_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> Response[bytes]:
        """The appointment as an iCalendar file."""
        row = await booking.booking_for(appointment_id, identity(principal))
        site = await get_site(row["site"])
        body = invitation(
            row, site, organiser=settings.mail_from, cancelled=row["status"] == "cancelled"
        )
        return Response(body.encode(), media_type="text/calendar; charset=utf-8")

    @post("/waitlist", operation_id="joinWaitlist", status_code=HTTP_201_CREATED)
    async def waitlist(
        self, data: JSONBody[WaitlistIn], principal: NamedDependency[Principal]
    ) -> dict[str, str]:
        """Be told when a slot earlier than `before` frees up."""
        entry = await booking.join_waitlist(
            identity(principal), data.site_id, data.reason, data.persons, data.before, data.email
        )
        return {"id": str(entry["id"])}
