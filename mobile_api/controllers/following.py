"""What a device follows: places (and an opt-in live position), zones, topics."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED

from alerts import devices, places, zones
from backend.auth import Principal
from backend.guards import device_required
from geo import Geocoder
from mobile_api.schemas import LivePosition, PlaceIn, PlaceOut, Topics, ZoneOut


class PlaceController(Controller):
    """Places the device follows: alerts for an area reach every device with a place inside."""

    path = "/devices/me"
    tags = ["Lieux suivis"]
    guards = [device_required]

    @get("/places", operation_id="listPlaces")
    async def list_places(self, principal: NamedDependency[Principal]) -> list[PlaceOut]:
        """The device's places (and live position, if shared)."""
        assert principal.device_id is not None
        return [PlaceOut.from_row(r) for r in await places.list_places(principal.device_id)]

    @post(
        "/places", operation_id="addPlace", status_code=HTTP_201_CREATED, opt={"idempotent": True}
    )
    async def add_place(
        self,
        data: JSONBody[PlaceIn],
        principal: NamedDependency[Principal],
        geocoder: NamedDependency[Geocoder],
    ) -> PlaceOut:
        """Follow a place given by coordinates or by an address (geocoded with the BAN)."""
        assert principal.device_id is not None
        point, address = await places.resolve_point(data.lat, data.lon, data.address, geocoder)
        row = await places.add_place(principal.device_id, data.label, point, address)
        return PlaceOut.from_row(row)

    @delete("/places/{place_id:uuid}", operation_id="deletePlace")
    async def delete_place(
        self, place_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> None:
        """Stop following a place."""
        assert principal.device_id is not None
        await places.delete_place(principal.device_id, place_id)

    @put("/live-position", operation_id="setLivePosition")
    async def set_live(
        self, data: JSONBody[LivePosition], principal: NamedDependency[Principal]
    ) -> PlaceOut:
        """Share the current position (opt-in; only the latest is kept, 48 hours at most)."""
        assert principal.device_id is not None
        point = places.checked_point(data.lat, data.lon)
        return PlaceOut.from_row(await places.set_live_position(principal.device_id, point))

    @delete("/live-position", operation_id="clearLivePosition")
    async def clear_live(self, principal: NamedDependency[Principal]) -> None:
        """Stop sharing the position: it is deleted at once."""
        assert principal.device_id is not None
        await places.clear_live_position(principal.device_id)

    @get("/zones", operation_id="listFollowedZones")
    async def followed(self, principal: NamedDependency[Principal]) -> list[ZoneOut]:
        """Zones the device follows."""
        assert principal.device_id is not None
        return [ZoneOut.from_row(r) for r in await zones.followed_zones(principal.device_id)]

    @put("/zones/{zone_id:uuid}", operation_id="followZone")
    async def follow(
        self, zone_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> list[ZoneOut]:
        """Follow a zone (a quartier, the whole commune)."""
        assert principal.device_id is not None
        await zones.follow_zone(principal.device_id, zone_id)
        return [ZoneOut.from_row(r) for r in await zones.followed_zones(principal.device_id)]

    @delete("/zones/{zone_id:uuid}", operation_id="unfollowZone")
    async def unfollow(
        self, zone_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> None:
        """Stop following a zone."""
        assert principal.device_id is not None
        await zones.unfollow_zone(principal.device_id, zone_id)

    @get("/topics", operation_id="getTopics")
    async def get_topics(self, principal: NamedDependency[Principal]) -> Topics:
        """Topics the device follows."""
        assert principal.device_id is not None
        return Topics(topics=await devices.topics_of(principal.device_id))

    @put("/topics", operation_id="setTopics")
    async def set_topics(
        self, data: JSONBody[Topics], principal: NamedDependency[Principal]
    ) -> Topics:
        """Replace the topics the device follows."""
        assert principal.device_id is not None
        return Topics(topics=await devices.set_topics(principal.device_id, data.topics))


class ZoneController(Controller):
    """Zones residents can choose from."""

    path = "/zones"
    tags = ["Lieux suivis"]

    @get("/", operation_id="listZones")
    async def list_zones(
        self, commune_id: Annotated[UUID | None, QueryParameter(name="communeId")] = None
    ) -> list[ZoneOut]:
        """Named zones (quartiers, communes), optionally of one commune."""
        return [ZoneOut.from_row(r) for r in await zones.list_zones(commune_id)]
