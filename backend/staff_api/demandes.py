"""Staff HTTP API for categories and demandes: inboxes, processing, moderation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from backend.auth import Principal
from backend.demandes import categories, service, workflow
from backend.demandes.statuses import LABELS, OPEN
from backend.demandes.workflow import InboxFilter, StaffScope
from backend.guards import staff_required
from backend.idempotency.keys import current_idempotency_key
from backend.settings import Settings
from backend.staff_api.demande_schemas import (
    Assignment,
    BulkStatusChange,
    CategoryIn,
    CategoryUpdate,
    InboxPage,
    ModerationIn,
    RecordedDemandeIn,
    RedactionIn,
    RoutingRuleIn,
    StaffCategoryOut,
    StaffDemandeOut,
    StatusChange,
    TextIn,
)
from media import MediaStorage
from mobile_api.controllers.demandes import photo_out
from mobile_api.demande_schemas import TimelineItem
from mobile_api.schemas import changes


async def provide_scope(
    commune_id: NamedDependency[UUID], principal: NamedDependency[Principal]
) -> StaffScope:
    """The demandes this staff member may read: the whole commune (admin) or their services."""
    assert principal.account_id is not None and principal.role is not None
    return await workflow.staff_scope(commune_id, principal.account_id, principal.role)


def _category(row: dict[str, Any]) -> StaffCategoryOut:
    return StaffCategoryOut(
        id=row["id"],
        parent_id=row["parent"],
        name=row["name"],
        slug=row["slug"],
        service_id=row["service"],
        sla_days=row["sla_days"],
        needs_location=row["needs_location"],
        public=row["public"],
        allows_anonymous=row["allows_anonymous"],
        duplicate_radius_m=row["duplicate_radius_m"],
        active=row["active"],
    )


async def staff_demande(
    row: dict[str, Any], storage: MediaStorage | None = None
) -> StaffDemandeOut:
    """Staff view; with `storage`, also photos (redacted included) and the whole timeline."""
    out = StaffDemandeOut(
        id=row["id"],
        reference=row["reference"],
        channel=row["channel"],
        category_id=row["category"],
        description=row["description"],
        status=row["status"],
        status_label=LABELS[row["status"]],
        service_id=row["service"],
        agent_id=row["agent"],
        requester_id=row["requester"],
        contact_name=row["contact_name"],
        contact_email=row["contact_email"],
        contact_phone=row["contact_phone"],
        anonymous=row["anonymous"],
        lat=row["lat"],
        lon=row["lon"],
        address=row["address"],
        due_at=row["due_at"],
        overdue=row["status"] in OPEN and row["due_at"] < datetime.now(UTC),
        hidden=row["hidden"],
        duplicate_of=row["duplicate_of"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
    if storage is not None:
        photos = await service.photos_of(row["id"], include_redacted=True)
        entries = await service.timeline(row["id"], include_internal=True)
        out.photos = [photo_out(storage, p) for p in photos]
        out.timeline = [
            TimelineItem(
                kind=e["kind"],
                text=e["text"],
                status_from=e["status_from"],
                status_to=e["status_to"],
                created_at=e["created_at"],
                public=e["public"],
                data=e["data"] if isinstance(e["data"], dict) else {},
            )
            for e in entries
        ]
    return out


class StaffCategoryController(Controller):
    """Categories and routing (admins manage, agents read)."""

    path = "/categories"
    tags = ["Demandes"]
    guards = [staff_required("agent")]

    @get("/", operation_id="staffListCategories")
    async def list_categories(self, commune_id: NamedDependency[UUID]) -> list[StaffCategoryOut]:
        """Every active category of the commune."""
        rows, _ = await categories.category_tree(commune_id)
        return [_category(r) for r in rows]

    @post(
        "/",
        operation_id="createCategory",
        status_code=HTTP_201_CREATED,
        guards=[staff_required("admin")],
    )
    async def create(
        self, data: JSONBody[CategoryIn], commune_id: NamedDependency[UUID]
    ) -> StaffCategoryOut:
        """Create a category."""
        fields = {k: v for k, v in changes(data).items() if v is not None}
        return _category(await categories.create_category(commune_id, fields))

    @patch("/{category_id:uuid}", operation_id="updateCategory", guards=[staff_required("admin")])
    async def update(
        self,
        category_id: FromPath[UUID],
        data: JSONBody[CategoryUpdate],
        commune_id: NamedDependency[UUID],
    ) -> StaffCategoryOut:
        """Change a category."""
        return _category(await categories.update_category(commune_id, category_id, changes(data)))

    @post(
        "/{category_id:uuid}/routing-rules",
        operation_id="addRoutingRule",
        status_code=HTTP_201_CREATED,
        guards=[staff_required("admin")],
    )
    async def add_rule(
        self,
        category_id: FromPath[UUID],
        data: JSONBody[RoutingRuleIn],
        commune_id: NamedDependency[UUID],
    ) -> dict[str, str]:
        """Route this category's demandes inside a zone to a service."""
        await categories.add_routing_rule(
            commune_id, category_id, data.zone_id, data.service_id, data.priority
        )
        return {"status": "ok"}


class StaffDemandeController(Controller):
    """Service inboxes and the processing of demandes."""

    path = "/demandes"
    tags = ["Demandes"]
    guards = [staff_required("agent")]
    dependencies = {"staff_scope": Provide(provide_scope)}

    @get("/", operation_id="serviceInbox")
    async def inbox(
        self,
        staff_scope: NamedDependency[StaffScope],
        status: FromQuery[str | None] = None,
        service_id: Annotated[UUID | None, QueryParameter(name="serviceId")] = None,
        category_id: Annotated[UUID | None, QueryParameter(name="categoryId")] = None,
        channel: FromQuery[str | None] = None,
        overdue: FromQuery[bool] = False,
        q: FromQuery[str | None] = None,
        cursor: FromQuery[datetime | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> InboxPage:
        """Demandes of the agent's services (the whole commune for admins), filtered."""
        filters = InboxFilter(
            statuses=tuple(s for s in (status or "").split(",") if s),
            service_id=service_id,
            category_id=category_id,
            channel=channel,
            overdue=overdue,
            query=q or "",
        )
        rows, next_cursor = await workflow.inbox(staff_scope, filters, cursor, limit)
        return InboxPage(items=[await staff_demande(r) for r in rows], next_cursor=next_cursor)

    @get("/overdue", operation_id="overdueDemandes")
    async def overdue(self, staff_scope: NamedDependency[StaffScope]) -> list[StaffDemandeOut]:
        """Open demandes past their due date, oldest due first."""
        return [await staff_demande(r) for r in await workflow.overdue(staff_scope)]

    @post("/", operation_id="recordDemande", status_code=HTTP_201_CREATED, opt={"idempotent": True})
    async def record(
        self,
        data: JSONBody[RecordedDemandeIn],
        commune_id: NamedDependency[UUID],
        principal: NamedDependency[Principal],
        staff_scope: NamedDependency[StaffScope],
        settings: NamedDependency[Settings],
        storage: NamedDependency[MediaStorage],
    ) -> StaffDemandeOut:
        """Record a demande received by e-mail, phone, at the counter or by paper mail."""
        row = await service.file_demande(
            service.NewDemande(
                commune_id=commune_id,
                category_id=data.category_id,
                description=data.description,
                channel=data.channel,
                requester_id=data.requester_account_id,
                contact_name=data.contact_name,
                contact_email=data.contact_email,
                contact_phone=data.contact_phone,
                lat=data.lat,
                lon=data.lon,
                location_source="address" if data.lat is not None else "",
                address=data.address,
                recorded_by=principal.account_id,
                idempotency_key=current_idempotency_key(),
            ),
            settings.daily_push_cap,
        )
        return await staff_demande(row, storage)

    @get("/{demande_id:uuid}", operation_id="staffGetDemande")
    async def get_one(
        self,
        demande_id: FromPath[UUID],
        staff_scope: NamedDependency[StaffScope],
        storage: NamedDependency[MediaStorage],
    ) -> StaffDemandeOut:
        """A demande with its whole timeline (internal notes included) and every photo."""
        return await staff_demande(
            await workflow.demande_for_staff(staff_scope, demande_id), storage
        )

    @post("/{demande_id:uuid}/status", operation_id="changeDemandeStatus", status_code=HTTP_200_OK)
    async def change_status(
        self,
        demande_id: FromPath[UUID],
        data: JSONBody[StatusChange],
        staff_scope: NamedDependency[StaffScope],
        settings: NamedDependency[Settings],
    ) -> StaffDemandeOut:
        """Move the demande along its workflow (the resident and followers are told)."""
        row = await workflow.change_status(
            staff_scope,
            demande_id,
            data.status,
            message=data.message,
            reason=data.reason,
            duplicate_of=data.duplicate_of,
            daily_cap=settings.daily_push_cap,
        )
        return await staff_demande(row)

    @post("/status", operation_id="changeStatusInBulk", status_code=HTTP_200_OK)
    async def change_many(
        self,
        data: JSONBody[BulkStatusChange],
        staff_scope: NamedDependency[StaffScope],
        settings: NamedDependency[Settings],
    ) -> dict[str, str]:
        """The same status change for several demandes: id → "ok" or why it was refused."""
        return await workflow.change_status_many(
            staff_scope,
            data.ids,
            data.status,
            message=data.message,
            reason=data.reason,
            daily_cap=settings.daily_push_cap,
        )

    @post("/{demande_id:uuid}/assign", operation_id="assignDemande", status_code=HTTP_200_OK)
    async def assign(
        self,
        demande_id: FromPath[UUID],
        data: JSONBody[Assignment],
        staff_scope: NamedDependency[StaffScope],
    ) -> StaffDemandeOut:
        """Hand the demande to another service and/or an agent."""
        row = await workflow.assign(staff_scope, demande_id, data.agent_id, data.service_id)
        return await staff_demande(row)

    @post(
        "/{demande_id:uuid}/replies", operation_id="replyToDemande", status_code=HTTP_204_NO_CONTENT
    )
    async def reply(
        self,
        demande_id: FromPath[UUID],
        data: JSONBody[TextIn],
        staff_scope: NamedDependency[StaffScope],
        settings: NamedDependency[Settings],
    ) -> None:
        """A public reply to the requester and followers."""
        await workflow.reply(staff_scope, demande_id, data.text, settings.daily_push_cap)

    @post("/{demande_id:uuid}/notes", operation_id="noteOnDemande", status_code=HTTP_204_NO_CONTENT)
    async def note(
        self,
        demande_id: FromPath[UUID],
        data: JSONBody[TextIn],
        staff_scope: NamedDependency[StaffScope],
    ) -> None:
        """An internal note, never shown to the resident."""
        await workflow.note(staff_scope, demande_id, data.text)

    @post(
        "/{demande_id:uuid}/moderation",
        operation_id="moderateReport",
        status_code=HTTP_204_NO_CONTENT,
    )
    async def moderate(
        self,
        demande_id: FromPath[UUID],
        data: JSONBody[ModerationIn],
        staff_scope: NamedDependency[StaffScope],
    ) -> None:
        """Hide a report from the public map, or show it again."""
        await workflow.moderate(staff_scope, demande_id, data.hidden, data.reason)

    @post(
        "/photos/{photo_id:uuid}/redact",
        operation_id="redactPhoto",
        status_code=HTTP_204_NO_CONTENT,
    )
    async def redact(
        self,
        photo_id: FromPath[UUID],
        data: JSONBody[RedactionIn],
        staff_scope: NamedDependency[StaffScope],
    ) -> None:
        """Take a photo out of public view (a face, a licence plate)."""
        await workflow.redact_photo(staff_scope, photo_id, data.reason)
