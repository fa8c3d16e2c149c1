"""Residents file and follow demandes; reports carry a place and photos."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from backend.auth import Principal
from backend.demandes import reports, service, workflow
from backend.demandes.categories import category_tree
from backend.demandes.statuses import LABELS
from backend.demandes.tables import Demande
from backend.exceptions import FieldError, InvalidInput, NotFound, Unauthenticated
from backend.idempotency.keys import current_idempotency_key
from backend.organisation.tables import Service
from backend.settings import Settings
from geo import Geocoder, GeocodingUnavailable
from media import Limits, MediaStorage
from mobile_api.demande_schemas import (
    CategoryOut,
    CategoryTree,
    DemandeIn,
    DemandeOut,
    DemandeSummary,
    NearbyReport,
    PhotoOut,
    PublicReport,
    ReopenIn,
    ReportForm,
    TimelineItem,
)

# Five phone photos (3–5 MB each) and the form fit; above this the upload is refused before
# being read, so a 30 MB upload costs the server nothing.
REPORT_MAX_BODY = 25 * 1024 * 1024


def photo_out(storage: MediaStorage, row: dict[str, Any]) -> PhotoOut:
    """A stored photo's public URLs."""
    return PhotoOut(
        id=row["id"],
        url=storage.url_for(row["display_key"]),
        thumbnail_url=storage.url_for(row["thumb_key"]),
        width=row["width"],
        height=row["height"],
    )


async def demande_out(row: dict[str, Any], storage: MediaStorage, settings: Settings) -> DemandeOut:
    """The requester's view of a demande: public timeline only."""
    service_row = await Service.select(Service.name).where(Service.id == row["service"]).first()
    resolved_at = row["resolved_at"]
    can_reopen = (
        row["status"] == "resolved"
        and resolved_at is not None
        and datetime.now(UTC) - resolved_at <= timedelta(days=settings.reopen_days)
    )
    entries = await service.timeline(row["id"], include_internal=False)
    return DemandeOut(
        id=row["id"],
        reference=row["reference"],
        channel=row["channel"],
        category_id=row["category"],
        description=row["description"],
        status=row["status"],
        status_label=LABELS[row["status"]],
        service_name=service_row["name"] if service_row else "",
        lat=row["lat"],
        lon=row["lon"],
        address=row["address"],
        due_at=row["due_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        can_reopen=can_reopen,
        photos=[photo_out(storage, p) for p in await service.photos_of(row["id"])],
        timeline=[
            TimelineItem(
                kind=e["kind"],
                text=e["text"],
                status_from=e["status_from"],
                status_to=e["status_to"],
                created_at=e["created_at"],
            )
            for e in entries
        ],
        followers=await service.followers_count(row["id"]),
    )


def _identity(principal: Principal) -> tuple[UUID | None, UUID | None]:
    if principal.account_id is None and principal.device_id is None:
        raise Unauthenticated(
            "Connectez-vous ou enregistrez l'appareil (X-Device-Token) pour suivre vos demandes."
        )
    return principal.account_id, principal.device_id


async def _address(geocoder: Geocoder, lat: float | None, lon: float | None) -> str:
    # A geocoder outage never blocks a report: the address is filled in later by a job.
    if lat is None or lon is None:
        return ""
    try:
        found = await geocoder.reverse(lat, lon)
    except GeocodingUnavailable:
        return ""
    return found.label if found else "-"


class CategoryController(Controller):
    """The categories residents choose from."""

    path = "/categories"
    tags = ["Demandes"]

    @get("/", operation_id="listCategories")
    async def list_categories(
        self,
        request: Request[Any, Any, Any],
        commune_id: Annotated[UUID, QueryParameter(name="communeId")],
    ) -> Response[CategoryTree | None]:
        """The category tree of a commune (ETag: the app caches it until it changes)."""
        rows, version = await category_tree(commune_id)
        etag = f'"{version}"'
        if request.headers.get("if-none-match") == etag:
            return Response(None, status_code=304, headers={"ETag": etag})
        tree = CategoryTree(
            version=version,
            categories=[
                CategoryOut(
                    id=r["id"],
                    parent_id=r["parent"],
                    name=r["name"],
                    description=r["description"],
                    needs_location=r["needs_location"],
                    allows_anonymous=r["allows_anonymous"],
                    sla_days=r["sla_days"],
                )
                for r in rows
            ],
        )
        return Response(tree, headers={"ETag": etag, "Cache-Control": "no-cache"})


class DemandeController(Controller):
    """File a demande, list and read one's own, reopen, follow."""

    path = "/demandes"
    tags = ["Demandes"]

    @post("/", operation_id="fileDemande", status_code=HTTP_201_CREATED, opt={"idempotent": True})
    async def file(
        self,
        data: JSONBody[DemandeIn],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        geocoder: NamedDependency[Geocoder],
        storage: NamedDependency[MediaStorage],
    ) -> DemandeOut:
        """File a demande (with or without a place); the acknowledgments are sent at once."""
        row = await service.file_demande(
            service.NewDemande(
                commune_id=data.commune_id,
                category_id=data.category_id,
                description=data.description,
                channel=data.channel,
                requester_id=principal.account_id,
                device_id=principal.device_id,
                contact_name=data.contact_name,
                contact_email=data.contact_email,
                contact_phone=data.contact_phone,
                anonymous=data.anonymous,
                lat=data.lat,
                lon=data.lon,
                location_source="pin" if data.lat is not None else "",
                address=await _address(geocoder, data.lat, data.lon),
                idempotency_key=current_idempotency_key(),
            ),
            settings.daily_push_cap,
        )
        return await demande_out(row, storage, settings)

    @get("/", operation_id="listMyDemandes")
    async def mine(self, principal: NamedDependency[Principal]) -> list[DemandeSummary]:
        """The resident's demandes (by account and by this device), newest first."""
        account_id, device_id = _identity(principal)
        return [
            DemandeSummary(
                id=r["id"],
                reference=r["reference"],
                status=r["status"],
                status_label=LABELS[r["status"]],
                description=r["description"][:200],
                created_at=r["created_at"],
            )
            for r in await service.demandes_of_resident(account_id, device_id)
        ]

    @get("/{demande_id:uuid}", operation_id="getMyDemande")
    async def get_one(
        self,
        demande_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        storage: NamedDependency[MediaStorage],
    ) -> DemandeOut:
        """One of the resident's demandes with its public timeline."""
        account_id, device_id = _identity(principal)
        row = await service.demande_for_resident(demande_id, account_id, device_id)
        return await demande_out(row, storage, settings)

    @post("/{demande_id:uuid}/reopen", operation_id="reopenDemande", status_code=200)
    async def reopen(
        self,
        demande_id: FromPath[UUID],
        data: JSONBody[ReopenIn],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        storage: NamedDependency[MediaStorage],
    ) -> DemandeOut:
        """Not fixed after all: reopen a resolved demande (within the reopening period)."""
        account_id, device_id = _identity(principal)
        row = await service.demande_for_resident(demande_id, account_id, device_id)
        row = await workflow.reopen(row, data.reason, settings.reopen_days, settings.daily_push_cap)
        return await demande_out(row, storage, settings)


class ReportController(Controller):
    """Reports on the map: file one with photos, find duplicates nearby, follow one."""

    path = "/reports"
    tags = ["Signalements"]

    @post(
        "/",
        operation_id="fileReport",
        status_code=HTTP_201_CREATED,
        opt={"idempotent": True},
        request_max_body_size=REPORT_MAX_BODY,
    )
    async def file(
        self,
        data: MultipartBody[ReportForm],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        geocoder: NamedDependency[Geocoder],
        storage: NamedDependency[MediaStorage],
    ) -> DemandeOut:
        """File a report: position from GPS or a pin, else from the first photo's EXIF GPS."""
        uploads = [(p.filename or "", await p.read()) for p in data.photos]
        processed = await reports.process_photos(
            uploads, Limits(max_bytes=settings.media_max_bytes)
        )
        lat, lon = data.lat, data.lon
        source: str = data.location_source
        if (lat is None or lon is None) and (hint := reports.gps_of(processed)) is not None:
            lat, lon, source = hint[0], hint[1], "photo"
        service.checked_location(lat, lon)  # refuse a bad position before storing anything
        stored = await reports.store_photos(storage, processed)
        try:
            row = await service.file_demande(
                service.NewDemande(
                    commune_id=data.commune_id,
                    category_id=data.category_id,
                    description=data.description,
                    channel="app",
                    requester_id=principal.account_id,
                    device_id=principal.device_id,
                    contact_name=data.contact_name,
                    contact_email=data.contact_email,
                    contact_phone=data.contact_phone,
                    anonymous=data.anonymous,
                    lat=lat,
                    lon=lon,
                    location_source=source,
                    address=await _address(geocoder, lat, lon),
                    photos=stored.photos,
                    idempotency_key=current_idempotency_key(),
                ),
                settings.daily_push_cap,
            )
        except BaseException:
            # Nothing half-written: the files of a report that was not filed are removed.
            await reports.discard_photos(storage, stored)
            raise
        return await demande_out(row, storage, settings)

    @get("/nearby", operation_id="nearbyReports")
    async def nearby(
        self,
        commune_id: Annotated[UUID, QueryParameter(name="communeId")],
        category_id: Annotated[UUID, QueryParameter(name="categoryId")],
        lat: Annotated[float, QueryParameter(ge=-90, le=90)],
        lon: Annotated[float, QueryParameter(ge=-180, le=180)],
        storage: NamedDependency[MediaStorage],
    ) -> list[NearbyReport]:
        """Open reports of the same category nearby, nearest first (before sending)."""
        rows = await reports.nearby_open(commune_id, category_id, lat, lon)
        thumbs = await reports.first_thumbs([r["id"] for r in rows])
        return [
            NearbyReport(
                id=r["id"],
                reference=r["reference"],
                description=r["description"][:200],
                status=r["status"],
                distance_m=r["distance_m"],
                thumbnail_url=storage.url_for(thumbs[r["id"]]) if r["id"] in thumbs else None,
                created_at=r["created_at"],
            )
            for r in rows
        ]

    @get("/map", operation_id="reportsMap")
    async def map(
        self,
        bbox: FromQuery[str],
        commune_id: Annotated[UUID | None, QueryParameter(name="communeId")] = None,
        category_id: Annotated[UUID | None, QueryParameter(name="categoryId")] = None,
        status: FromQuery[str | None] = None,
        max_age_days: Annotated[int, QueryParameter(name="maxAgeDays", ge=1, le=3650)] = 180,
        limit: Annotated[int, QueryParameter(ge=1, le=reports.MAP_CAP)] = reports.MAP_CAP,
    ) -> Response[dict[str, Any]]:
        """Public reports in a box (`bbox=west,south,east,north`) as GeoJSON, no personal data."""
        try:
            west, south, east, north = (float(v) for v in bbox.split(","))
        except ValueError as exc:
            message = "bbox attend quatre nombres : ouest,sud,est,nord."
            raise InvalidInput(message, errors=[FieldError("bbox", message)]) from exc
        statuses = tuple(s for s in (status or "").split(",") if s)
        if any(s not in LABELS for s in statuses):
            raise InvalidInput("Statut inconnu.", errors=[FieldError("status", "Statut inconnu.")])
        rows, truncated = await reports.public_map(
            commune_id,
            reports.MapQuery(west, south, east, north, category_id, statuses, max_age_days, limit),
        )
        features = [
            {
                "type": "Feature",
                "id": str(r["id"]),
                "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
                "properties": {
                    "reference": r["reference"],
                    "categoryId": str(r["category"]),
                    "status": r["status"],
                    "statusLabel": LABELS[r["status"]],
                    "createdAt": r["created_at"].isoformat(),
                },
            }
            for r in rows
        ]
        body = {"type": "FeatureCollection", "features": features, "truncated": truncated}
        return Response(body, media_type="application/geo+json")

    @get("/{report_id:uuid}", operation_id="getPublicReport")
    async def public(
        self, report_id: FromPath[UUID], storage: NamedDependency[MediaStorage]
    ) -> PublicReport:
        """A public report (what the map shows when tapped): no name, no contact."""
        row = await Demande.select().where(Demande.id == report_id).first()
        if row is None or not row["public"] or row["hidden"]:
            raise NotFound("Ce signalement est introuvable.")
        return PublicReport(
            id=row["id"],
            reference=row["reference"],
            category_id=row["category"],
            status=row["status"],
            status_label=LABELS[row["status"]],
            description=row["description"],
            lat=row["lat"],
            lon=row["lon"],
            address=row["address"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            photos=[photo_out(storage, p) for p in await service.photos_of(row["id"])],
            followers=await service.followers_count(row["id"]),
        )

    @put("/{report_id:uuid}/follow", operation_id="followReport", status_code=HTTP_204_NO_CONTENT)
    async def follow(
        self, report_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> None:
        """ "Moi aussi": be told of every step of this report."""
        account_id, device_id = _identity(principal)
        await service.follow(report_id, account_id, device_id)
