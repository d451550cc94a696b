"""The Alembic migrations build exactly the schema the models declare, and can be undone."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from qunyun import db
from qunyun.models import Base


def test_migrated_schema_matches_the_models(db_url):
    engine = db.engine_for(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_downgrade_to_base_and_upgrade_again(db_url):
    engine = db.engine_for(db_url)
    with engine.begin() as conn:
        cfg = db.alembic_config(db_url)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert not inspect(engine).has_table("deliveries")
    db.migrate(db_url)
    assert inspect(engine).has_table("deliveries")
