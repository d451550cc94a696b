#!/usr/bin/env bash
# Set up and run Qunyun's test suite: a virtualenv with the pinned dependencies, a throwaway
# PostgreSQL on loopback for the PostgreSQL half of the tests, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e ".[dev]"

source scripts/postgres.sh
start_test_postgres || echo "PostgreSQL 不可用，跳过 PostgreSQL 测试 (PostgreSQL unavailable; its tests skip)"

export GX_ANALYTICS_ENABLED=False
export PREFECT_SERVER_ANALYTICS_ENABLED=false
.venv/bin/ruff check qunyun tasks flows tests bench
.venv/bin/pytest "$@"
