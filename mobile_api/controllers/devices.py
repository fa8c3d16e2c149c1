"""App installations: register, read and update the calling device."""

from __future__ import annotations

from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_201_CREATED

from alerts import devices
from backend.auth import Principal
from backend.guards import device_required
from mobile_api.schemas import (
    DeviceOut,
    DeviceRegistered,
    DeviceRegistration,
    DeviceUpdate,
    changes,
)


class DeviceController(Controller):
    """A device can follow places and receive alerts without any account."""

    path = "/devices"
    tags = ["Appareils"]

    @post(
        "/", operation_id="registerDevice", status_code=HTTP_201_CREATED, opt={"idempotent": True}
    )
    async def register(
        self, data: JSONBody[DeviceRegistration], principal: NamedDependency[Principal]
    ) -> DeviceRegistered:
        """Register this installation; keep the returned token and send it as X-Device-Token."""
        registered = await devices.register_device(
            data.platform, data.locale, data.app_version, principal.account_id
        )
        return DeviceRegistered(
            device=DeviceOut.from_row(registered.device), device_token=registered.token
        )

    @get("/me", operation_id="getDevice", guards=[device_required])
    async def get_device(self, principal: NamedDependency[Principal]) -> DeviceOut:
        """The calling device."""
        assert principal.device_id is not None
        return DeviceOut.from_row(await devices.get_device(principal.device_id))

    @patch("/me", operation_id="updateDevice", guards=[device_required])
    async def update_device(
        self, data: JSONBody[DeviceUpdate], principal: NamedDependency[Principal]
    ) -> DeviceOut:
        """Change the device's language or app version."""
        assert principal.device_id is not None
        return DeviceOut.from_row(await devices.update_device(principal.device_id, changes(data)))
