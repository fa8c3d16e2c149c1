"""Devices: an app installation registers once and can then act without an account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from alerts.tables import Device
from backend.accounts.tokens import digest, new_secret
from backend.exceptions import InvalidToken, NotFound

PLATFORMS = ("android", "ios", "web")
# Touching last_seen_at on every request would turn each read into a write.
_SEEN_GRANULARITY = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class RegisteredDevice:
    """A new device and its secret token (shown once)."""

    device: dict[str, Any]
    token: str


async def register_device(
    platform: str, locale: str, app_version: str, account_id: UUID | None
) -> RegisteredDevice:
    """Create a device; its token is returned once and only its hash is kept."""
    token = new_secret("dev")
    device = Device(
        token_hash=digest(token),
        platform=platform,
        locale=locale,
        app_version=app_version,
        account=account_id,
    )
    await device.save()
    return RegisteredDevice(await get_device(device.id), token)


async def get_device(device_id: UUID) -> dict[str, Any]:
    """The device row, or NotFound."""
    row = await Device.select().where(Device.id == device_id).first()
    if row is None:
        raise NotFound("Cet appareil n'est pas enregistré.")
    return row


async def authenticate_device(token: str) -> dict[str, Any]:
    """The device holding `token`; refreshes its last-seen time at most hourly."""
    row = await Device.select().where(Device.token_hash == digest(token)).first()
    if row is None:
        raise InvalidToken(
            "Cet appareil n'est plus reconnu. Réinstallez l'application ou enregistrez-le à "
            "nouveau."
        )
    now = datetime.now(UTC)
    if now - row["last_seen_at"] > _SEEN_GRANULARITY:
        await Device.update({Device.last_seen_at: now}).where(Device.id == row["id"])
    return row


async def attach_to_account(device_id: UUID, account_id: UUID) -> None:
    """Link the device to the account that just signed in on it."""
    await Device.update({Device.account: account_id}).where(Device.id == device_id)


async def update_device(device_id: UUID, changes: dict[str, Any]) -> dict[str, Any]:
    """Change the device's locale or app version."""
    allowed = {"locale", "app_version"}
    values = {getattr(Device, k): v for k, v in changes.items() if k in allowed}
    if values:
        await Device.update(values).where(Device.id == device_id)
    return await get_device(device_id)
