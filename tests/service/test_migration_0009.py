"""0009 (issue 20): relatives' verification sessions leave their `proxy_operator` beneficiary rows for
`proxy_claims`, and back; an embedded database from 0008 is carried over by create_all the same way."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, insert, inspect, select, text
from sqlalchemy.orm import Session

from alembic import command
from service.certification.models import Beneficiary, CertSession, VideoFingerprint
from service.features.proxy.models import ProxyClaim, ProxyOperator, ProxySession
from service.infra.db.engine import create_all
from service.infra.db.migrate import alembic_config, upgrade
from service.infra.security import Keyring
from service.schema import metadata
from tests.service import factories
from tests.service.live import embedded_file, migrated_database


@dataclass(frozen=True)
class At0008:
    relative: str  # the relative's verification session (their row: proxy_operator)
    pensioner_relative: str  # a relative who is on the roster: their verification pointed at their own row
    self_session: str  # an ordinary session of a beneficiary
    relative_hash: str
    relative_enc: str
    roster_id: int


def _session(db: Session, b: Beneficiary, kind: str | None, op: str) -> str:
    sid = str(uuid.uuid4())
    db.add(factories.session_row(b.id, id=sid, state="decided", decision="accept"))
    db.flush()
    db.add(VideoFingerprint(sha256=uuid.uuid4().hex, session_id=sid, beneficiary_id=b.id))
    if kind:
        db.add(ProxySession(session_id=sid, kind=kind, operator_id=op))
    db.flush()
    return sid


def _data_at_0008(engine: Engine) -> At0008:
    keyring = Keyring(secrets.token_bytes(32), "k")
    with Session(engine) as db:
        relative = factories.beneficiary_at_revision(
            db, keyring, external_id="OPERATOR-abc", status="proxy_operator", name="李建国"
        )
        roster = factories.beneficiary_at_revision(db, keyring, birth_date=dt.date(1970, 1, 1))
        for op in ("op-1", "op-2"):
            # The columns 0008 had (a later column, such as 0022's client, is not in its table yet).
            db.execute(insert(ProxyOperator).values(id=op, channel="wechat", channel_hash=op, token_hash=op))
        db.flush()
        data = At0008(
            relative=_session(db, relative, "verification", "op-1"),
            pensioner_relative=_session(db, roster, "verification", "op-2"),
            self_session=_session(db, roster, None, ""),
            relative_hash=relative.id_hash,
            relative_enc=relative.id_enc,
            roster_id=roster.id,
        )
        db.commit()
    return data


def _assert_moved(engine: Engine, data: At0008) -> None:
    with Session(engine) as db:
        assert [b.id for b in db.scalars(select(Beneficiary))] == [data.roster_id]  # the operator row is gone
        sessions = {s.id: s.beneficiary_id for s in db.scalars(select(CertSession))}
        assert sessions == {data.relative: None, data.pensioner_relative: None, data.self_session: data.roster_id}
        prints = {f.session_id: f.beneficiary_id for f in db.scalars(select(VideoFingerprint))}
        assert prints == sessions
        claims = {c.session_id: c for c in db.scalars(select(ProxyClaim))}
        assert set(claims) == {data.relative, data.pensioner_relative}
        moved = claims[data.relative]
        assert (moved.operator_id, moved.id_hash, moved.id_enc, moved.name) == (
            "op-1",
            data.relative_hash,
            data.relative_enc,  # the ciphertext as it was: the claim decrypts as the beneficiary's number did
            "李建国",
        )


def test_0009_moves_verification_sessions_to_claims_and_back(backend_urls: dict[str, str], tmp_path: Path) -> None:
    url = migrated_database(backend_urls, tmp_path, "0008")
    engine = create_engine(url)
    try:
        data = _data_at_0008(engine)
        upgrade(url)
        _assert_moved(engine, data)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []

        command.downgrade(alembic_config(url), "0008")
        insp = inspect(engine)
        assert "proxy_claims" not in insp.get_table_names()
        assert not next(c for c in insp.get_columns("cert_sessions") if c["name"] == "beneficiary_id")["nullable"]
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, external_id, status, id_hash, id_enc FROM beneficiaries")).all()
            back = {r[0]: r for r in rows}
            sessions: dict[str, int] = dict(conn.execute(text("SELECT id, beneficiary_id FROM cert_sessions")).all())
            prints = {
                r[0]: r[1] for r in conn.execute(text("SELECT session_id, beneficiary_id FROM video_fingerprints"))
            }
        restored = back[sessions[data.relative]]
        assert restored[1].startswith("OPERATOR-") and restored[2:] == (
            "proxy_operator",
            data.relative_hash,
            data.relative_enc,
        )
        assert sessions[data.pensioner_relative] == sessions[data.self_session] == data.roster_id
        assert prints == sessions and len(back) == 2

        upgrade(url)  # and up again
        _assert_moved(engine, data)
    finally:
        engine.dispose()


def test_an_embedded_database_from_0008_is_carried_over_by_create_all(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0008")
    embedded_file(url)
    engine = create_engine(url)
    try:
        data = _data_at_0008(engine)
        create_all(engine, metadata)
        _assert_moved(engine, data)
        assert next(c for c in inspect(engine).get_columns("cert_sessions") if c["name"] == "beneficiary_id")[
            "nullable"
        ]
        with Session(engine) as db:  # a new verification session without a beneficiary can be stored
            db.add(factories.session_row(None))
            db.add(VideoFingerprint(sha256="f" * 64, session_id="s", beneficiary_id=None))
            db.commit()
        create_all(engine, metadata)  # idempotent: nothing left to carry
        with Session(engine) as db:
            assert len(db.scalars(select(ProxyClaim)).all()) == 2
    finally:
        engine.dispose()
