"""0020: wechat_notices carry `claimed_at` (a notice whose process died between the claim and the send is told apart
from one being sent now: service/features/wechat/notice_send.py, answer_unknown). Migrated (both databases, down and
up, no drift); a notice left `sending` by the code before the upgrade has no claim time and is answer-unknown at once
(its process is gone), a pending one is untouched; an embedded database made at 0019 gets the column from
create_all, its notices kept."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from alembic import command
from service.certification.models import utcnow
from service.features.wechat.models import WeChatNotice
from service.features.wechat.notice_send import answer_unknown
from service.infra.db.migrate import alembic_config, upgrade
from tests.service.live import create_all_at, insert_rows, migrated_database, schema_drift, table_columns

ROWS = (
    "INSERT INTO wechat_notices (id, kind, ref, openid, status, attempts, created_at)"
    " VALUES (1, 'due_soon', '7:2026-12-09', 'o-died', 'sending', 1, '2026-11-22 02:00:00')",
    "INSERT INTO wechat_notices (id, kind, ref, openid, status, attempts, created_at)"
    " VALUES (2, 'due_soon', '8:2026-12-09', 'o-wait', 'pending', 0, '2026-11-22 02:00:00')",
)


def _old_sending_is_answer_unknown(url: str) -> None:
    engine = create_engine(url)
    try:
        with Session(engine) as db:
            rows = db.execute(select(WeChatNotice.id, WeChatNotice.status, WeChatNotice.claimed_at)).all()
            assert sorted((i, s, c) for i, s, c in rows) == [(1, "sending", None), (2, "pending", None)]
            assert db.scalars(select(WeChatNotice.id).where(answer_unknown(utcnow()))).all() == [1]
    finally:
        engine.dispose()


def test_0020_adds_the_claim_time_down_and_up(backend_urls: dict[str, str], tmp_path: Path) -> None:
    url = migrated_database(backend_urls, tmp_path)
    assert "claimed_at" in table_columns(url, "wechat_notices")
    command.downgrade(alembic_config(url), "0019")
    assert "claimed_at" not in table_columns(url, "wechat_notices")
    insert_rows(url, ROWS, False)
    upgrade(url)
    assert schema_drift(url) == []
    _old_sending_is_answer_unknown(url)


def test_an_embedded_database_from_0019_gets_the_claim_time_empty(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0019")
    insert_rows(url, ROWS, 0)
    assert "claimed_at" not in table_columns(url, "wechat_notices")
    create_all_at(url)
    assert "claimed_at" in table_columns(url, "wechat_notices")
    _old_sending_is_answer_unknown(url)
