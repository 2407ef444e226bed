"""0010: proxy claims get a region. Upgrade fills it from the roster for claims of a beneficiary's number (the
migration holds no key, so other claims keep ''); downgrade drops it; both databases, no drift."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, insert, inspect, text
from sqlalchemy.orm import Session

from alembic import command
from service.features.proxy.models import ProxyOperator
from service.infra.db.migrate import alembic_config, upgrade
from service.infra.security import Keyring
from service.schema import metadata
from tests.service import factories
from tests.service.live import migrated_database


def _claims_at_0009(engine: Engine) -> tuple[str, str]:
    """Two verification claims as 0009 stored them: one of a number on the roster, one of a number it lacks."""
    keyring = Keyring(secrets.token_bytes(32), "k")
    with Session(engine) as db:
        roster = factories.beneficiary_at_revision(db, keyring, region="110105")
        # The columns 0009 had (a later column, such as 0022's client, is not in its table yet).
        db.execute(insert(ProxyOperator).values(id="op-1", channel="wechat", channel_hash="op-1", token_hash="op-1"))
        db.flush()
        sids = []
        for id_hash in (roster.id_hash, keyring.id_hash(factories.id_number("420106"))):
            sid = str(uuid.uuid4())
            db.add(factories.session_row(None, id=sid))
            db.flush()
            db.execute(
                text(
                    "INSERT INTO proxy_claims (session_id, operator_id, id_hash, id_enc, id_masked, name, created_at)"
                    " VALUES (:sid, 'op-1', :h, 'enc', '4201**********0001', '李建国', CURRENT_TIMESTAMP)"
                ),
                {"sid": sid, "h": id_hash},
            )
            sids.append(sid)
        db.commit()
    return sids[0], sids[1]


def _regions(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {str(r[0]): str(r[1]) for r in conn.execute(text("SELECT session_id, region FROM proxy_claims"))}


def test_0010_fills_claim_regions_from_the_roster_and_goes_back(backend_urls: dict[str, str], tmp_path: Path) -> None:
    url = migrated_database(backend_urls, tmp_path, "0009")
    engine = create_engine(url)
    try:
        on_roster, unknown = _claims_at_0009(engine)
        upgrade(url)
        assert _regions(engine) == {on_roster: "110105", unknown: ""}
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []

        command.downgrade(alembic_config(url), "0009")
        assert "region" not in {c["name"] for c in inspect(engine).get_columns("proxy_claims")}
        upgrade(url)
        assert _regions(engine) == {on_roster: "110105", unknown: ""}
    finally:
        engine.dispose()
