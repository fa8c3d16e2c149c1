"""`relais` command line: serve, worker, migrate, demo, create-staff."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from collections.abc import Sequence

from backend.settings import Settings, get_settings

os.environ.setdefault("PICCOLO_CONF", "backend.piccolo_conf")


async def migrate(settings: Settings) -> None:
    """Apply every pending migration to the configured database."""
    from piccolo.apps.migrations.commands.forwards import run_forwards

    from backend import database

    engine = database.engine_from_url(settings.database_url)
    database.bind_engine(engine)
    await database.start(engine)
    try:
        result = await run_forwards(app_name="relais", migration_id="all")
        if not result.success:
            raise SystemExit(f"Migrations failed: {result.message}")
    finally:
        await database.stop(engine)


async def _with_db(settings: Settings, action: str, args: argparse.Namespace) -> None:
    from backend import database

    engine = database.engine_from_url(settings.database_url)
    database.bind_engine(engine)
    await database.start(engine)
    try:
        if action == "demo":
            await _demo(settings)
        elif action == "create-staff":
            await _create_staff(settings, args)
        elif action == "import-zones":
            await _import_zones(args)
        elif action == "create-open311-key":
            await _create_open311_key(args)
    finally:
        await database.stop(engine)


async def _demo(settings: Settings) -> None:
    from backend.demo import load_demo

    accounts = await load_demo(settings)
    if accounts is None:
        print("Demo data already loaded (accounts below use the password Relais-demo-2026).")
        return
    print(
        "Demo data loaded: commune Bréal-sous-Montfort with its services, report categories, "
        "three reports on the map, two zones (the commune, its centre), an ID-card and passport "
        "desk, and these accounts:"
    )
    for account in accounts:
        print(f"  {account.role:<14} {account.email:<30} password: {account.password}")


async def _create_staff(settings: Settings, args: argparse.Namespace) -> None:
    from backend.accounts.service import TokenSettings, create_account
    from backend.organisation import service as organisation
    from backend.organisation.tables import Commune, Service

    commune = await Commune.select().where(Commune.insee_code == args.commune).first()
    if commune is None:
        raise SystemExit(f"No commune with INSEE code {args.commune}.")
    service_ids = []
    for slug in args.service or []:
        row = (
            await Service.select(Service.id)
            .where((Service.commune == commune["id"]) & (Service.slug == slug))
            .first()
        )
        if row is None:
            raise SystemExit(f"No service {slug!r} in {commune['name']}.")
        service_ids.append(row["id"])
    password = args.password or secrets.token_urlsafe(12) + "7a"
    ts = TokenSettings(
        settings.secret_key,
        settings.access_token_ttl,
        settings.refresh_token_ttl,
        settings.argon2_memory_kib,
    )
    if args.role == "admin":
        account = await create_account(
            email=args.email,
            password=password,
            display_name=args.name,
            role="admin",
            settings=ts,
            commune_id=commune["id"],
        )
    else:
        account = await organisation.create_staff(
            commune_id=commune["id"],
            actor_id=None,
            email=args.email,
            password=password,
            display_name=args.name,
            role=args.role,
            service_ids=service_ids,
            settings=ts,
        )
    print(f"Created {args.role} {account['email']} in {commune['name']}.")
    if not args.password:
        print(f"Initial password (hand it over securely): {password}")


async def _import_zones(args: argparse.Namespace) -> None:
    from pathlib import Path

    from rich.progress import Progress

    from alerts.zones import import_zones
    from backend.organisation.tables import Commune
    from geo import GeoError

    commune = await Commune.select().where(Commune.insee_code == args.commune).first()
    if commune is None:
        raise SystemExit(f"No commune with INSEE code {args.commune}.")
    try:
        data = await asyncio.to_thread(Path(args.file).read_bytes)
    except OSError as exc:
        raise SystemExit(f"Cannot read {args.file}: {exc.strerror}.") from exc
    with Progress(transient=False) as progress:
        task = progress.add_task(f"Importing zones into {commune['name']}", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            created, updated, problems = await import_zones(commune["id"], data, args.kind, advance)
        except GeoError as exc:
            raise SystemExit(f"Not a GeoJSON FeatureCollection of zones: {exc}") from exc
    print(f"{created} zone(s) created, {updated} updated.")
    for problem in problems:
        print(f"  skipped: {problem}")


async def _create_open311_key(args: argparse.Namespace) -> None:
    from backend.exceptions import DomainError
    from backend.interop.open311_service import create_api_key
    from backend.organisation.tables import Commune

    commune = await Commune.select().where(Commune.insee_code == args.commune).first()
    if commune is None:
        raise SystemExit(f"No commune with INSEE code {args.commune}.")
    try:
        key = await create_api_key(commune["id"], args.name)
    except DomainError as exc:
        raise SystemExit(exc.detail) from exc
    print(f"Open311 API key for {args.name!r} in {commune['name']} (shown once, keep it now):")
    print(key)


def _serve(settings: Settings, demo: bool) -> None:
    import uvicorn

    from backend.request_context import configure_logging

    asyncio.run(migrate(settings))
    if demo:
        asyncio.run(_with_db(settings, "demo", argparse.Namespace()))
    print(f"Relais API on http://{settings.host}:{settings.port}  (docs: /docs)", flush=True)
    configure_logging(settings.log_level)
    uvicorn.run(
        "backend.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        access_log=False,  # our own access log carries the request id
        log_config=None,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `relais` command."""
    parser = argparse.ArgumentParser(prog="relais", description="Relais: backend of the app.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="apply migrations and serve the API")
    serve.add_argument("--demo", action="store_true", help="load demo data the first time")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    sub.add_parser("worker", help="run the scheduled jobs (delivery, reminders, purges)")
    sub.add_parser("migrate", help="apply pending migrations")
    sub.add_parser("demo", help="load demo data (once)")
    staff = sub.add_parser("create-staff", help="create a staff account")
    staff.add_argument("--email", required=True)
    staff.add_argument("--role", required=True, choices=["agent", "communication", "admin"])
    staff.add_argument("--commune", required=True, help="INSEE code of the commune")
    staff.add_argument("--service", action="append", help="service slug (repeatable)")
    staff.add_argument("--name", default="")
    staff.add_argument("--password", help="initial password (generated when absent)")
    zones = sub.add_parser("import-zones", help="import named zones from a GeoJSON file")
    zones.add_argument("file", help="GeoJSON FeatureCollection (Polygon/MultiPolygon features)")
    zones.add_argument("--commune", required=True, help="INSEE code of the commune")
    zones.add_argument("--kind", default="quartier", help="quartier, commune, secteur...")
    o311 = sub.add_parser("create-open311-key", help="create an Open311 API key for a client app")
    o311.add_argument("--commune", required=True, help="INSEE code of the commune")
    o311.add_argument("--name", required=True, help="the client application, e.g. FixMyStreet")
    args = parser.parse_args(argv)

    settings = get_settings()
    if args.command == "serve":
        changes: dict[str, object] = {}
        if args.host:
            changes["host"] = args.host
        if args.port:
            changes["port"] = args.port
        _serve(settings.with_(**changes), args.demo)
    elif args.command == "worker":
        from backend.request_context import configure_logging
        from backend.worker import run_worker

        configure_logging(settings.log_level)
        asyncio.run(run_worker(settings))
    elif args.command == "migrate":
        asyncio.run(migrate(settings))
        print("Migrations applied.")
    elif args.command in {"demo", "create-staff", "import-zones", "create-open311-key"}:
        asyncio.run(migrate(settings))
        asyncio.run(_with_db(settings, args.command, args))
    else:  # pragma: no cover - argparse refuses unknown commands
        parser.print_help()
        sys.exit(2)
