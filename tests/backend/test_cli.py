"""The `relais` command line: migrations agree with the tables, demo data, staff, worker."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest
from piccolo.apps.migrations.commands.new import AutoMigrationManager

from backend import database
from backend.piccolo_app import APP_CONFIG
from tests.conftest import PG_BASE

RELAIS = [sys.executable, "-c", "from backend.cli import main; main()"]


def _run(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        RELAIS + args, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout
    )


def _expected_columns() -> dict[str, set[str]]:
    return {
        t._meta.tablename: {c._meta.db_column_name for c in t._meta.columns}
        for t in database.all_tables()
    }


async def test_migrations_describe_exactly_the_tables() -> None:
    # What `piccolo migrations new --auto` would generate now: nothing.
    statements = await AutoMigrationManager(auto_input="y").get_alter_statements(APP_CONFIG)
    assert sum(len(s.statements) for s in statements) == 0


def test_migrate_builds_the_schema_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    result = _run(["migrate"], {"RELAIS_DATABASE_URL": url, "RELAIS_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "fresh.sqlite3") as conn:
        for table, columns in _expected_columns().items():
            found = {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}
            assert found == columns, table


async def test_migrate_builds_the_schema_on_postgresql(tmp_path: Path) -> None:
    name = f"relais_mig_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{PG_BASE}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {"RELAIS_DATABASE_URL": f"{PG_BASE}/{name}", "RELAIS_VAR_DIR": str(tmp_path)}
        result = await asyncio.to_thread(_run, ["migrate"], env)
        assert result.returncode == 0, result.stderr
        conn = await asyncpg.connect(f"{PG_BASE}/{name}")
        rows = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        )
        await conn.close()
        found: dict[str, set[str]] = {}
        for row in rows:
            found.setdefault(row["table_name"], set()).add(row["column_name"])
        for table, columns in _expected_columns().items():
            assert found.get(table) == columns, table
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def test_demo_loads_once_and_prints_credentials(tmp_path: Path) -> None:
    env = {"RELAIS_VAR_DIR": str(tmp_path), "RELAIS_DATABASE_URL": ""}
    first = _run(["demo"], env)
    assert first.returncode == 0, first.stderr
    assert "admin@breal-demo.fr" in first.stdout
    assert "citoyen@breal-demo.fr" in first.stdout
    assert "Relais-demo-2026" in first.stdout
    assert (tmp_path / "relais.sqlite3").exists()
    second = _run(["demo"], env)
    assert second.returncode == 0
    assert "already loaded" in second.stdout


def test_create_staff_generates_a_password(tmp_path: Path) -> None:
    env = {"RELAIS_VAR_DIR": str(tmp_path), "RELAIS_DATABASE_URL": ""}
    assert _run(["demo"], env).returncode == 0
    result = _run(
        [
            "create-staff",
            "--email",
            "voirie2@breal-demo.fr",
            "--role",
            "agent",
            "--commune",
            "35037",
            "--service",
            "voirie",
        ],
        env,
    )
    assert result.returncode == 0, result.stderr
    assert "Initial password" in result.stdout
    unknown = _run(
        ["create-staff", "--email", "x@breal-demo.fr", "--role", "agent", "--commune", "99999"],
        env,
    )
    assert unknown.returncode != 0
    assert "No commune" in unknown.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_worker_starts_and_stops_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    env = {**os.environ, "RELAIS_VAR_DIR": str(tmp_path), "RELAIS_DATABASE_URL": ""}
    assert _run(["migrate"], env).returncode == 0
    proc = subprocess.Popen(
        [*RELAIS, "worker"], env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    seen = ""
    while "worker started" not in seen:
        line = proc.stderr.readline()
        assert line, f"worker exited early: {seen}"
        seen += line
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "worker stopped" in err


def test_import_zones_reports_progress_and_problems(tmp_path: Path) -> None:
    import json

    env = {"RELAIS_VAR_DIR": str(tmp_path), "RELAIS_DATABASE_URL": ""}
    assert _run(["demo"], env).returncode == 0
    square = [[[-1.87, 48.04], [-1.86, 48.04], [-1.86, 48.05], [-1.87, 48.05], [-1.87, 48.04]]]
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"nom": "La Gare", "code": "gare"},
                "geometry": {"type": "Polygon", "coordinates": square},
            },
            {
                "type": "Feature",
                "properties": {"nom": "Cassée", "code": "x"},
                "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]},
            },
        ],
    }
    path = tmp_path / "quartiers.geojson"
    path.write_text(json.dumps(collection))
    result = _run(["import-zones", str(path), "--commune", "35037"], env)
    assert result.returncode == 0, result.stderr
    assert "1 zone(s) created, 0 updated." in result.stdout
    assert "skipped" in result.stdout and "Cassée" in result.stdout
    again = _run(["import-zones", str(path), "--commune", "35037"], env)
    assert "0 zone(s) created, 1 updated." in again.stdout
    missing = _run(["import-zones", str(tmp_path / "absent.geojson"), "--commune", "35037"], env)
    assert missing.returncode != 0
    assert "Cannot read" in missing.stderr
