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
    log.info("worker started with %d job(s): %s", len(JOBS), ", ".join(j.name for j in JOBS))
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        await database.stop(engine)
        log.info("worker stopped")
