"""Engine creation and schema migration for the app database (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event

from qunyun.workspace import PROJECT_ROOT


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the sender write while a report reads; NORMAL is durable at each checkpoint
    # and keeps the per-row status commits cheap.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


@cache
def engine_for(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False},
            pool_size=20, max_overflow=10,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str) -> Engine:
    """Bring the database at `url` to the newest schema and return its engine."""
    engine = engine_for(url)
    with engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return engine


@contextmanager
def large_write_cache(conn: Connection, mebibytes: int = 256) -> Iterator[None]:
    """A bigger SQLite page cache while one connection writes a lot (a plan, an import).

    Random inserts into unique keys and indexes reread index pages through SQLite's default
    2 MB cache. PostgreSQL sizes its own buffers, so this does nothing there.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    # On the driver connection: a pragma must not open the SQLAlchemy transaction.
    driver = conn.connection.dbapi_connection
    driver.execute(f"PRAGMA cache_size=-{mebibytes * 1024}")
    try:
        yield
    finally:
        driver.execute("PRAGMA cache_size=-2000")
