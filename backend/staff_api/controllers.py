"""Staff HTTP API: services of the commune and staff accounts (admin)."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, Router, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED

from backend.accounts.service import TokenSettings
from backend.auth import Principal
from backend.guards import staff_required
from backend.organisation import service as organisation
from backend.staff_api.alerts import StaffAlertController, StaffZoneController
from backend.staff_api.appointments import StaffAppointmentController
from backend.staff_api.demandes import StaffCategoryController, StaffDemandeController
from backend.staff_api.deps import STAFF_DEPENDENCIES
from backend.staff_api.news import StaffNewsController
from backend.staff_api.schemas import (
    ServiceIn,
    ServiceOut,
    ServiceUpdate,
    StaffIn,
    StaffOut,
    StaffUpdate,
)
from mobile_api.schemas import changes


class ServiceController(Controller):
    """Services of the commune: every staff member reads them, admins manage them."""

    path = "/services"
    tags = ["Personnel"]
    guards = [staff_required("agent", "communication")]

    @get("/", operation_id="listServices")
    async def list_services(self, commune_id: NamedDependency[UUID]) -> list[ServiceOut]:
        """The commune's services."""
        return [ServiceOut.from_row(r) for r in await organisation.list_services(commune_id)]

    @post(
        "/",
        operation_id="createService",
        status_code=HTTP_201_CREATED,
        guards=[staff_required("admin")],
        opt={"idempotent": True},
    )
    async def create_service(
        self,
        data: JSONBody[ServiceIn],
        commune_id: NamedDependency[UUID],
        principal: NamedDependency[Principal],
    ) -> ServiceOut:
        """Create a service."""
        fields = {k: v for k, v in changes(data).items() if v is not None}
        row = await organisation.create_service(commune_id, principal.account_id, fields)
        return ServiceOut.from_row(row)

    @patch("/{service_id:uuid}", operation_id="updateService", guards=[staff_required("admin")])
    async def update_service(
        self,
        service_id: FromPath[UUID],
        data: JSONBody[ServiceUpdate],
        commune_id: NamedDependency[UUID],
        principal: NamedDependency[Principal],
    ) -> ServiceOut:
        """Change a service."""
        row = await organisation.update_service(
            commune_id, service_id, principal.account_id, changes(data)
        )
        return ServiceOut.from_row(row)


class StaffController(Controller):
    """Staff accounts of the commune (admin only)."""

    path = "/staff"
    tags = ["Personnel"]
    guards = [staff_required("admin")]

    @get("/", operation_id="listStaff")
    async def list_staff(self, commune_id: NamedDependency[UUID]) -> list[StaffOut]:
        """Every staff member of the commune."""
        return [StaffOut.from_row(r) for r in await organisation.list_staff(commune_id)]

    @post("/", operation_id="createStaff", status_code=HTTP_201_CREATED, opt={"idempotent": True})
    async def create_staff(
        self,
        data: JSONBody[StaffIn],
        commune_id: NamedDependency[UUID],
        principal: NamedDependency[Principal],
        token_settings: NamedDependency[TokenSettings],
    ) -> StaffOut:
        """Create a staff account attached to services."""
        row = await organisation.create_staff(
            commune_id=commune_id,
            actor_id=principal.account_id,
            email=data.email,
            password=data.password,
            display_name=data.display_name,
            role=data.role,
            service_ids=data.service_ids,
            settings=token_settings,
        )
        return StaffOut.from_row(row)

    @get("/{account_id:uuid}", operation_id="getStaff")
    async def get_staff(
        self, account_id: FromPath[UUID], commune_id: NamedDependency[UUID]
    ) -> StaffOut:
        """One staff member."""
        return StaffOut.from_row(await organisation.get_staff(commune_id, account_id))

    @patch("/{account_id:uuid}", operation_id="updateStaff")
    async def update_staff(
        self,
        account_id: FromPath[UUID],
        data: JSONBody[StaffUpdate],
        commune_id: NamedDependency[UUID],
        principal: NamedDependency[Principal],
    ) -> StaffOut:
        """Change a staff member's role, services or active flag."""
        row = await organisation.update_staff(
            commune_id, account_id, principal.account_id, changes(data)
        )
        return StaffOut.from_row(row)


def staff_router() -> Router:
    """Every staff controller under /staff/v1."""
    return Router(
        path="/staff/v1",
        route_handlers=[
            ServiceController,
            StaffController,
            StaffZoneController,
            StaffAlertController,
            StaffCategoryController,
            StaffDemandeController,
            StaffNewsController,
            StaffAppointmentController,
        ],
        dependencies=STAFF_DEPENDENCIES,
    )
