"""The citizen app's API, `/api/v1`."""

from litestar import Router

from mobile_api.controllers.alerts import InboxController, ResidentAlertController
from mobile_api.controllers.appointments import AppointmentController
from mobile_api.controllers.auth import AuthController
from mobile_api.controllers.demandes import (
    CategoryController,
    DemandeController,
    ReportController,
)
from mobile_api.controllers.devices import DeviceController, PushKeyController
from mobile_api.controllers.following import PlaceController, ZoneController
from mobile_api.controllers.me import MeController
from mobile_api.controllers.news import AgendaController, NewsController


def api_router() -> Router:
    """Every citizen-facing controller under /api/v1."""
    return Router(
        path="/api/v1",
        route_handlers=[
            AuthController,
            MeController,
            DeviceController,
            PushKeyController,
            PlaceController,
            ZoneController,
            ResidentAlertController,
            InboxController,
            CategoryController,
            DemandeController,
            ReportController,
            NewsController,
            AgendaController,
            AppointmentController,
        ],
    )
