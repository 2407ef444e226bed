"""Alembic environment: the URL is the configured ``sqlalchemy.url`` or the service settings'."""

from __future__ import annotations

from sqlalchemy import engine_from_config, pool

from alembic import context
from service.schema import metadata  # every model module, so autogenerate and compare see every table

config = context.config
if not config.get_main_option("sqlalchemy.url"):
    from service.infra.config import Settings

    config.set_main_option("sqlalchemy.url", Settings().effective_database_url)

target_metadata = metadata


def run_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
