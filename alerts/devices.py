"""Devices: an app installation registers once and can then act without an account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from alerts.tables import Delivery, Device, TopicFollow
from backend.accounts.tokens import digest, new_secret
from backend.database import is_unique_violation, transaction
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
    for attempt in range(3):
        token = new_secret("dev")
        device = Device(
            token_hash=digest(token),
            platform=platform,
            locale=locale,
            app_version=app_version,
            account=account_id,
        )
        try:
            await device.save()
            break
        except Exception as exc:
            # A new random id whose first 63 bits (`int_id`) another device already has: once
            # in billions of registrations. Draw another.
            if attempt == 2 or not is_unique_violation(exc):
                raise
    return RegisteredDevice(await get_device(device.id), token)


async def get_device(device_id: UUID) -> dict[str, Any]:
    """The device row, or NotFound."""
    row = await Device.select().where(Device.id == device_id).first()
    if row is None:
        raise NotFound("Cet appareil n'est pas enregistré.")
    return row


async def forget_device(device_id: UUID) -> None:
    """Delete the device and everything it received or follows, in one transaction.

    Places and follows go with it by foreign key; its deliveries (outbox rows and inbox) have
    none, so that writing an alert's outbox does not lock every targeted device row, and are
    deleted here.
    """
    async with transaction():
        await Delivery.delete().where(Delivery.device == device_id)
        await Device.delete().where(Device.id == device_id)


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
    """Change the device's locale, app version or quiet hours."""
    allowed = {"locale", "app_version", "quiet_start", "quiet_end"}
    values = {getattr(Device, k): v for k, v in changes.items() if k in allowed}
    if values:
        await Device.update(values).where(Device.id == device_id)
    return await get_device(device_id)


async def set_push_credential(
    device_id: UUID,
    kind: str,
    token: str,
    p256dh: str | None = None,
    auth: str | None = None,
) -> dict[str, Any]:
    """Register or replace the device's push credential (FCM token or Web Push subscription).

    A credential moves to the newest device presenting it: an app reinstalled on the same
    phone keeps one registration, and nobody receives the same push twice.
    """
    async with transaction():
        await Device.update(
            {
                Device.push_kind: None,
                Device.push_token: None,
                Device.push_p256dh: None,
                Device.push_auth: None,
            }
        ).where((Device.push_token == token) & (Device.id != device_id))
        await Device.update(
            {
                Device.push_kind: kind,
                Device.push_token: token,
                Device.push_p256dh: p256dh,
                Device.push_auth: auth,
                Device.push_updated_at: datetime.now(UTC),
            }
        ).where(Device.id == device_id)
    return await get_device(device_id)


async def clear_push_credential(device_id: UUID) -> None:
    """Forget the device's push credential (notifications stay in the in-app inbox)."""
    await Device.update(
        {
            Device.push_kind: None,
            Device.push_token: None,
            Device.push_p256dh: None,
            Device.push_auth: None,
            Device.push_updated_at: datetime.now(UTC),
        }
    ).where(Device.id == device_id)


async def set_topics(device_id: UUID, topics: list[str]) -> list[str]:
    """Replace the topics the device follows."""
    wanted = sorted({t.strip().lower() for t in topics if t.strip()})
    async with transaction():
        await TopicFollow.delete().where(TopicFollow.device == device_id)
        for topic in wanted:
            await TopicFollow.insert(
                TopicFollow(device=device_id, topic=topic, follow_key=f"{device_id}:{topic}")
            )
    return wanted


async def topics_of(device_id: UUID) -> list[str]:
    """The topics the device follows."""
    rows = await TopicFollow.select(TopicFollow.topic).where(TopicFollow.device == device_id)
    return sorted(r["topic"] for r in rows)
