"""App installations: register, read and update the calling device, its push credential."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_201_CREATED

from alerts import devices
from alerts.push_setup import vapid_public_key
from backend.auth import Principal
from backend.exceptions import FieldError, InvalidInput
from backend.guards import device_required
from backend.settings import Settings
from mobile_api.schemas import (
    DeviceOut,
    DevicePreferences,
    DeviceRegistered,
    DeviceRegistration,
    PushCredentialIn,
    PushStatus,
    VapidKey,
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
        self, data: JSONBody[DevicePreferences], principal: NamedDependency[Principal]
    ) -> DeviceOut:
        """Change the device's language, app version or quiet hours."""
        assert principal.device_id is not None
        values = changes(data)
        if ("quiet_start" in values) != ("quiet_end" in values) or (
            values.get("quiet_start") is None
        ) != (values.get("quiet_end") is None):
            message = "Indiquez le début et la fin des heures calmes, ou aucun des deux."
            raise InvalidInput(message, errors=[FieldError("quietEnd", message)])
        return DeviceOut.from_row(await devices.update_device(principal.device_id, values))

    @put("/me/push", operation_id="setPushCredential", guards=[device_required])
    async def set_push(
        self, data: JSONBody[PushCredentialIn], principal: NamedDependency[Principal]
    ) -> PushStatus:
        """Register or replace the device's FCM token or Web Push subscription."""
        assert principal.device_id is not None
        if data.kind == "fcm":
            if not data.token:
                message = "Le jeton FCM est obligatoire."
                raise InvalidInput(message, errors=[FieldError("token", message)])
            row = await devices.set_push_credential(principal.device_id, "fcm", data.token)
        else:
            if not data.endpoint or data.keys is None:
                message = "Un abonnement Web Push comprend endpoint et keys (p256dh, auth)."
                raise InvalidInput(message, errors=[FieldError("endpoint", message)])
            row = await devices.set_push_credential(
                principal.device_id, "webpush", data.endpoint, data.keys.p256dh, data.keys.auth
            )
        return PushStatus(kind=row["push_kind"], updated_at=row["push_updated_at"])

    @delete("/me/push", operation_id="clearPushCredential", guards=[device_required])
    async def clear_push(self, principal: NamedDependency[Principal]) -> None:
        """Stop pushes to this device (notifications stay in the in-app inbox)."""
        assert principal.device_id is not None
        await devices.clear_push_credential(principal.device_id)


class PushKeyController(Controller):
    """What a PWA needs before subscribing to Web Push."""

    path = "/push"
    tags = ["Appareils"]

    @get("/vapid-public-key", operation_id="getVapidPublicKey", status_code=200)
    async def vapid_key(self, settings: NamedDependency[Settings]) -> VapidKey:
        """The VAPID application server key (base64url)."""
        return VapidKey(public_key=vapid_public_key(settings.vapid_private_key, settings.var_dir))
