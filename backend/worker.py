"""`relais worker`: the APScheduler clock that runs the jobs of `backend.jobs`.

APScheduler is only the clock: each tick reads due work from our tables, so a restarted worker
simply resumes, and several workers may run against PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from alerts.delivery import DeliveryWorker
from alerts.push_setup import build_transports
from backend import database
from backend.jobs import JOBS, Job
from backend.settings import Settings

log = logging.getLogger("relais.worker")


async def _tick(job: Job, settings: Settings) -> None:
    try:
        count = await job.run(settings)
    except Exception:
        log.exception("job %s failed; it will run again at its next tick", job.name)
        return
    if count:
        log.info("job %s handled %d item(s)", job.name, count)


def build_scheduler(settings: Settings, jobs: list[Job] | None = None) -> AsyncIOScheduler:
    """A scheduler with one interval job per Relais job (no overlap, missed ticks coalesced)."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    for job in JOBS if jobs is None else jobs:
        scheduler.add_job(
            _tick,
            "interval",
            seconds=job.seconds,
            args=[job, settings],
            id=job.name,
            max_instances=1,
            coalesce=True,
            # First run at start-up: work that fell due while no worker ran is done now.
            next_run_time=datetime.now(UTC),
        )
    return scheduler


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or `stop` is set), then shut the scheduler down cleanly."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    engine = database.engine_from_url(settings.database_url)
    database.bind_engine(engine)
    await database.start(engine)
    scheduler = build_scheduler(settings)
    scheduler.start()
    transports = build_transports(
        var_dir=settings.var_dir,
        vapid_key=settings.vapid_private_key,
        vapid_subject=settings.vapid_subject,
        fcm_project_id=settings.fcm_project_id,
        fcm_credentials=settings.fcm_credentials,
        fcm_endpoint=settings.fcm_endpoint,
    )
    delivery = DeliveryWorker(
        transports,
        batch_size=settings.delivery_batch,
        max_attempts=settings.delivery_max_attempts,
        lease_seconds=settings.delivery_lease_seconds,
    )
    # Delivery is a tight loop rather than an APScheduler interval: the first push of an alert
    # must leave within a second of "send", and a busy outbox is drained batch after batch.
    delivering = asyncio.create_task(delivery.run(stop, settings.delivery_poll_seconds))
    log.info(
        "worker started with delivery (%s) and %d job(s): %s",
        ", ".join(transports),
        len(JOBS),
        ", ".join(j.name for j in JOBS),
    )
    try:
        await stop.wait()
        await delivering
    finally:
        scheduler.shutdown(wait=False)
        for transport in transports.values():
            await transport.aclose()
        await database.stop(engine)
        log.info("worker stopped")
