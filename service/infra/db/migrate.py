"""Run the Alembic migrations programmatically (scale-out deployments and the PostgreSQL test variant), and tell
whether a database is where this version's migrations leave it."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, inspect

from alembic import command

ROOT = Path(__file__).resolve().parents[3]
# What the operator runs (docker-compose.yml and scripts/services.sh run the same before `serve`).
MIGRATE_COMMAND = "`alembic upgrade head` (in the folder holding alembic.ini, with the same PENSION_CERT_DATABASE_URL)"


class SchemaNotMigratedError(Exception):
    """The database is not at this version's migrations: the one line the CLI prints (exit 4, the settings'),
    naming the variable and the command that fixes it."""

    code = "SCHEMA_NOT_MIGRATED"

    def __init__(self, problem: str) -> None:
        super().__init__(f"PENSION_CERT_DATABASE_URL: {problem}")


def alembic_config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "alembic"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def schema_problem(engine: Engine, metadata: MetaData) -> str:
    """Why a database cannot be used by this version ('' when it can); see ``schema_state``."""
    return schema_state(engine, metadata)[0]


def schema_state(engine: Engine, metadata: MetaData) -> tuple[str, bool]:
    """(why this version cannot use the database, '' when it can; whether Alembic manages it). Refused: none of
    `metadata`'s tables (an unrelated one, PostGIS's spatial_ref_sys, does not count), or an Alembic revision other
    than this version's head: an older one needs the migrations; a newer one (a rollback of the code) would have
    this code ignore the newer version's safety tables (0017's evidence holds: held media purged), so the database
    is stepped back first. A database the commands' create_all made before (its tables, no Alembic version) is
    create_all's, and so is an embedded SQLite file without a version (the pilot's, or a new empty one: brought up
    by service/infra/db/engine.py). A SQLite file with a version is Alembic's, as on PostgreSQL: bringing it up
    here instead would re-add what its migrations will add, so that its `alembic upgrade head` fails on each."""
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
        tables = set(inspect(conn).get_table_names())
    if not current:
        if tables & set(metadata.tables) or engine.dialect.name == "sqlite":
            return "", False
        return f"the database has no tables of this service: make them with the migrations, {MIGRATE_COMMAND}", False
    script = ScriptDirectory.from_config(alembic_config(""))
    heads = set(script.get_heads())
    if current == heads:
        return "", True
    at, needs = ", ".join(sorted(current)), ", ".join(sorted(heads))
    known = {rev.revision for rev in script.walk_revisions()}
    if not current <= known:
        return (
            f"the database is at migration {at}, which this version (head {needs}) does not know: a newer version "
            f"migrated it; run that version, or step the database back first with the newer version's code, "
            f"`alembic downgrade {needs}` (in its folder holding alembic.ini, with the same PENSION_CERT_DATABASE_URL)"
        ), True
    return f"the database is at migration {at}, this version needs {needs}: run {MIGRATE_COMMAND}", True
