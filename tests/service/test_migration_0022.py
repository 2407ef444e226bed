"""0022: proxy_operators carry `client`, the client whose logins the account answers (operators.login). Migrated
(both databases, down and up, no drift); an existing account gets the actor of its first login's audit entry (the
login that made it), one no entry names stays NULL (claimed by its next login)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from alembic import command
from service.features.proxy.models import ProxyOperator
from service.infra.db.migrate import alembic_config, upgrade
from tests.service.live import insert_rows, migrated_database, schema_drift, table_columns

ROWS = (
    "INSERT INTO proxy_operators (id, channel, channel_hash, token_hash, created_at)"
    " VALUES ('op-bank', 'phone', 'h1', 't1', '2026-11-22 02:00:00')",
    "INSERT INTO proxy_operators (id, channel, channel_hash, token_hash, created_at)"
    " VALUES ('op-h5', 'wechat', 'h2', 't2', '2026-11-22 02:00:00')",
    "INSERT INTO proxy_operators (id, channel, channel_hash, token_hash, created_at)"
    " VALUES ('op-none', 'wechat', 'h3', 't3', '2026-11-22 02:00:00')",
    # The first login made the account; a later one by another key (the takeover before 0022) must not own it.
    "INSERT INTO audit_entries (id, at, actor, action, target, detail) VALUES"
    " (1, '2026-11-22 02:00:00', 'api:aaaa1111', 'proxy.operator.login', 'op-bank', '{}'),"
    " (2, '2026-11-22 02:01:00', 'wechat-h5', 'proxy.operator.login', 'op-h5', '{}'),"
    " (3, '2026-11-22 02:02:00', 'api:bbbb2222', 'proxy.operator.login', 'op-bank', '{}'),"
    " (4, '2026-11-22 02:03:00', 'api:bbbb2222', 'proxy.operator.verify', 'op-none', '{}')",
)


def test_0022_gives_each_account_its_first_logins_client(backend_urls: dict[str, str], tmp_path: Path) -> None:
    url = migrated_database(backend_urls, tmp_path)
    assert "client" in table_columns(url, "proxy_operators")
    command.downgrade(alembic_config(url), "0021")
    assert "client" not in table_columns(url, "proxy_operators")
    insert_rows(url, ROWS, False)
    upgrade(url)
    assert schema_drift(url) == []
    engine = create_engine(url)
    try:
        with Session(engine) as db:
            rows = dict(db.execute(select(ProxyOperator.id, ProxyOperator.client)).all())
    finally:
        engine.dispose()
    assert rows == {"op-bank": "api:aaaa1111", "op-h5": "wechat-h5", "op-none": None}
