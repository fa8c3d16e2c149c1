"""The single Piccolo app gathering every table, so migrations have one order."""

from pathlib import Path

from piccolo.conf.apps import AppConfig, table_finder

TABLE_MODULES = [
    "backend.organisation.tables",
    "backend.accounts.tables",
    "backend.idempotency.tables",
    "backend.audit.tables",
    "alerts.tables",
    "backend.mail.tables",
    "backend.demandes.tables",
    "backend.news.tables",
    "backend.appointments.tables",
]

APP_CONFIG = AppConfig(
    app_name="relais",
    migrations_folder_path=str(Path(__file__).resolve().parent.parent / "migrations"),
    table_classes=table_finder(modules=TABLE_MODULES, exclude_imported=True),
    migration_dependencies=[],
    commands=[],
)
