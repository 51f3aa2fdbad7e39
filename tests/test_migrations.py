"""Migrations: `chatbook db upgrade` builds exactly the schema the models describe, idempotently."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from core.db import Database
from core.migrate import alembic_config, current_revision, upgrade
from core.models import Base


async def test_upgrade_matches_models_and_is_idempotent(db_url: str) -> None:
    db = Database(db_url)
    try:
        assert await current_revision(db) is None
        await upgrade(db)
        await upgrade(db)  # a second serve process, or a restart: nothing to do, no error

        def diff(connection: Connection) -> list[Any]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences: list[Any] = compare_metadata(context, Base.metadata)
            return differences

        async with db.engine.connect() as conn:
            differences = await conn.run_sync(diff)
        assert differences == []
        heads = ScriptDirectory.from_config(alembic_config()).get_heads()
        assert len(heads) == 1, f"migrations must form one chain (down_revision), heads: {heads}"
        assert await current_revision(db) == heads[0]
    finally:
        await db.dispose()
