"""Shared fixtures."""

import pytest
from prefect.testing.utilities import prefect_test_harness


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect server and database for the tests that run flows and tasks."""
    with prefect_test_harness(server_startup_timeout=60):
        yield


# --- app database, workspace and simulator fixtures -------------------------------------------

import os  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
from pathlib import Path  # noqa: E402

import yaml  # noqa: E402
from sqlalchemy import text  # noqa: E402

from qunyun import db  # noqa: E402
from qunyun.models import Base  # noqa: E402
from qunyun.simulator import WeComSimulator  # noqa: E402
from qunyun.workspace import PROJECT_ROOT  # noqa: E402

PG_URL = os.environ.get("QUNYUN_TEST_PG_URL")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_database(url: str) -> str:
    """Empty the database at `url` and migrate it to the newest schema."""
    engine = db.engine_for(url)
    if url.startswith("postgresql"):
        with engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    db.migrate(url)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """A fresh app database: SQLite in a temp folder, and PostgreSQL when the suite has one."""
    if request.param == "sqlite":
        return fresh_database(f"sqlite:///{tmp_path / 'app.db'}")
    if not PG_URL:
        pytest.skip("QUNYUN_TEST_PG_URL is not set (scripts/test.sh starts PostgreSQL)")
    return fresh_database(PG_URL)


@pytest.fixture
def workspace(tmp_path, monkeypatch, db_url):
    """A workspace whose config points the channels at a simulator on a free port."""
    home = tmp_path / "home"
    config_dir = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", config_dir)
    port = free_port()
    channels_file = config_dir / "channels.yaml"
    channels = yaml.safe_load(channels_file.read_text(encoding="utf-8"))
    for channel in channels["channels"].values():
        channel["base_url"] = f"http://127.0.0.1:{port}"
        channel["timeout_seconds"] = 2
    channels["simulator"]["port"] = port
    channels_file.write_text(yaml.safe_dump(channels, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("QUNYUN_HOME", str(home))
    monkeypatch.setenv("QUNYUN_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("QUNYUN_DATABASE_URL", db_url)
    from qunyun import workspace as ws

    return ws.current()


@pytest.fixture
def simulator(workspace):
    port = yaml.safe_load((workspace.config_dir / "channels.yaml").read_text())["simulator"]["port"]
    with WeComSimulator(workspace.inbox_path, port=port) as sim:
        yield sim


def set_config(workspace, name: str, data: dict) -> Path:
    path = Path(workspace.config_dir) / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path
