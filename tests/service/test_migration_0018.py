"""0018: certifications carry `notice_state` (telling the person of a revocation stays due until the WeChat schedule
settles it: service/features/wechat/revoked.py). Migrated (both databases, down and up, no drift, the index the
schedule's look-up uses); a certification revoked before the migration has no state, and the schedule leaves it as
the older code did after its week (not told now); an embedded database made at 0017 gets the column from
create_all. 0018 also indexes wechat_notices (kind, sent_at): the count of today's reminders sent, every minute."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import create_engine, inspect, select
from sqlalchemy.orm import Session

from alembic import command
from service.certification.models import Certification, utcnow
from service.features.wechat.revoked import revocations_to_tell
from service.infra.db.migrate import alembic_config, upgrade
from tests.service.live import create_all_at, insert_rows, migrated_database, schema_drift, table_columns

ROWS = (
    "INSERT INTO beneficiaries (id, external_id, id_hash, id_enc, id_masked, name, region, benefit_types, status,"
    " template_consent, roster_digest, created_at, updated_at)"
    " VALUES (1, 'old', 'old', 'x', '1101**********002X', '张三', '110105', '[]', 'active', :f, '',"
    " '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
    "INSERT INTO cert_sessions (id, beneficiary_id, channel, token_hash, actions, nonce, nonce_expires_at, expires_at,"
    " template_consent, state, job_attempts, reasons, created_at)"
    " VALUES ('s-old', 1, 'self', '-', '[]', 'n-old', '2026-01-02 00:00:00', '2026-01-02 00:00:00', :f, 'decided', 0,"
    " '[]', '2026-01-02 00:00:00')",
    "INSERT INTO certifications (id, beneficiary_id, session_id, certified_on, valid_until, code, created_at,"
    " revoked_at, revoked_by, revoke_reason, revoke_note)"
    " VALUES (1, 1, 's-old', '2026-01-02', '2027-01-01', 'code-old', '2026-01-02 00:00:00', '2026-03-01 00:00:00',"
    " 'staff:sup1', 'wrong_accept', '复核发现受理有误')",
)


def _old_revocation_has_no_state_and_stays_so(url: str) -> None:
    engine = create_engine(url)
    try:
        indexes = {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("certifications")}
        assert indexes.get("ix_certifications_notice_state") == ["notice_state"]
        with Session(engine) as db:
            assert revocations_to_tell(db, utcnow() - dt.timedelta(days=7)) == []
            db.commit()
            cert = db.scalar(select(Certification).where(Certification.code == "code-old"))
            assert cert is not None and cert.revoked_at is not None and cert.notice_state is None
    finally:
        engine.dispose()


def _notice_indexes(url: str) -> dict[str, list[str]]:
    engine = create_engine(url)
    try:
        return {
            str(i["name"]): [str(c) for c in i["column_names"]] for i in inspect(engine).get_indexes("wechat_notices")
        }
    finally:
        engine.dispose()


def test_0018_adds_the_notice_state_down_and_up(backend_urls: dict[str, str], tmp_path: Path) -> None:
    url = migrated_database(backend_urls, tmp_path)
    assert "notice_state" in table_columns(url, "certifications")
    # The capped reminders' count of today's sends (wechat/quota.py) reads it every minute: no scan of every reminder.
    assert _notice_indexes(url).get("ix_wechat_notices_kind_sent_at") == ["kind", "sent_at"]
    command.downgrade(alembic_config(url), "0017")
    assert "notice_state" not in table_columns(url, "certifications")
    assert "ix_wechat_notices_kind_sent_at" not in _notice_indexes(url)
    insert_rows(url, ROWS, False)
    upgrade(url)
    assert schema_drift(url) == []
    _old_revocation_has_no_state_and_stays_so(url)


def test_an_embedded_database_from_0017_gets_the_notice_state_empty(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0017")
    insert_rows(url, ROWS, 0)
    create_all_at(url)
    assert "notice_state" in table_columns(url, "certifications")
    # An index of columns that were already there (no column added to bring it): made all the same.
    assert _notice_indexes(url).get("ix_wechat_notices_kind_sent_at") == ["kind", "sent_at"]
    _old_revocation_has_no_state_and_stays_so(url)
