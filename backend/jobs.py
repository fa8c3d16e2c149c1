"""The worker's scheduled jobs: short, idempotent ticks that read due work from our tables."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from alerts.places import purge_stale_live_positions
from backend.accounts.tables import RefreshToken
from backend.appointments.ants import AntsClient
from backend.appointments.jobs import expire_holds, offer_waitlist, send_reminders, sync_ants
from backend.demandes.jobs import close_resolved, fill_missing_addresses, remind_overdue
from backend.idempotency.middleware import purge_expired
from backend.mail.sender import mail_job
from backend.news.service import publish_due
from backend.settings import Settings
from geo import make_geocoder

log = logging.getLogger("relais.jobs")


@dataclass(frozen=True)
class Job:
    """A job of the worker: a name, a period and the coroutine to run."""

    name: str
    seconds: int
    run: Callable[[Settings], Awaitable[int]]


async def purge_idempotency_records(settings: Settings) -> int:
    """Forget stored answers older than the idempotency TTL."""
    return await purge_expired(settings.idempotency_ttl)


async def purge_dead_refresh_tokens(settings: Settings) -> int:
    """Delete refresh tokens expired or revoked for more than a day (retention of sessions)."""
    cutoff = datetime.now(UTC) - timedelta(days=1)
    deleted = (
        await RefreshToken.delete()
        .where((RefreshToken.expires_at < cutoff) | (RefreshToken.revoked_at < cutoff))
        .returning(RefreshToken.id)
    )
    return len(deleted)


async def purge_live_positions(settings: Settings) -> int:
    """Forget live positions not refreshed for 48 hours (no lingering location data)."""
    return await purge_stale_live_positions()


async def remind_overdue_demandes(settings: Settings) -> int:
    """Relances to services about demandes past their due date."""
    return await remind_overdue()


async def close_resolved_demandes(settings: Settings) -> int:
    """Close resolved demandes past the reopening period."""
    return await close_resolved(settings.reopen_days)


async def fill_report_addresses(settings: Settings) -> int:
    """Addresses of reports filed while the geocoder was down."""
    geocoder = make_geocoder(
        settings.geocoder, settings.geocoder_url or None, settings.geocoder_timeout
    )
    return await fill_missing_addresses(geocoder)


async def publish_scheduled_news(settings: Settings) -> int:
    """Publish scheduled news and events whose time has come; unpublish expired ones."""
    return await publish_due(settings.daily_push_cap)


async def appointment_reminders(settings: Settings) -> int:
    """48 h and 2 h reminders of appointments."""
    return await send_reminders()


async def appointment_holds(settings: Settings) -> int:
    """Give the slots of expired holds back."""
    return await expire_holds()


async def appointment_ants_sync(settings: Settings) -> int:
    """Declare and remove appointments at the ANTS coordination API."""
    client = AntsClient(settings.ants_url, settings.ants_token)
    try:
        return await sync_ants(client)
    finally:
        await client.aclose()


async def appointment_waitlist(settings: Settings) -> int:
    """Offer freed earlier slots to the waiting list."""
    return await offer_waitlist()


JOBS: list[Job] = [
    Job("appointment-reminders", 300, appointment_reminders),
    Job("appointment-holds", 60, appointment_holds),
    Job("appointment-ants-sync", 30, appointment_ants_sync),
    Job("appointment-waitlist", 600, appointment_waitlist),
    Job("publish-scheduled-news", 30, publish_scheduled_news),
    mail_job(),
    Job("remind-overdue-demandes", 3600, remind_overdue_demandes),
    Job("close-resolved-demandes", 3600, close_resolved_demandes),
    Job("fill-report-addresses", 300, fill_report_addresses),
    Job("purge-live-positions", 3600, purge_live_positions),
    Job("purge-idempotency-records", 3600, purge_idempotency_records),
    Job("purge-dead-refresh-tokens", 6 * 3600, purge_dead_refresh_tokens),
]
