"""Factories for domain objects: valid ID numbers and beneficiaries with sensible defaults."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import time
import uuid
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import ColumnDefault, column, insert, inspect, table
from sqlalchemy.orm import Session

from service.certification import idnumber
from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, CertSession, utcnow
from service.features.proxy.models import ProxyBinding, ProxyOperator
from service.infra.security import Keyring, mask_id
from service.infra.storage import LocalEncryptedStorage

_counter = itertools.count(1)
_Row = TypeVar("_Row")


# A number a test fixes (`seq=`) is born on _FIXED_BIRTH unless it says otherwise; a number the factory chooses is born
# on _CHOSEN_BIRTH, a day later per thousand numbers. No test fixes a number on those later days, so a chosen number can
# never equal a fixed one, whatever tests the same worker process ran before (the counter is process-wide).
_FIXED_BIRTH = dt.date(1950, 3, 14)
_CHOSEN_BIRTH = dt.date(1951, 5, 20)


def id_number(region: str = "370102", birth: dt.date | None = None, seq: int | None = None) -> str:
    if seq is None:
        seq = next(_counter)
        birth = birth or _CHOSEN_BIRTH + dt.timedelta(days=seq // 1000)
    body = f"{region}{birth or _FIXED_BIRTH:%Y%m%d}{seq % 1000:03d}"
    return body + idnumber.check_digit(body)


def _beneficiary_fields(keyring: Keyring, overrides: dict[str, Any]) -> dict[str, Any]:
    """A valid person's columns (a new number unless `id_number` is given), `overrides` applied."""
    number = overrides.pop("id_number", None) or id_number()
    return {
        "external_id": f"P{next(_counter):06d}",
        "name": "张秀英",
        "region": number[:6],
        "birth_date": idnumber.birth_date(number),
        "benefit_types": ["enterprise_pension"],
        "status": "active",
        "id_hash": keyring.id_hash(number),
        "id_enc": keyring.encrypt_field(number, "beneficiary.id_number"),
        "id_masked": mask_id(number),
        **overrides,
    }


def beneficiary(db: Session, keyring: Keyring, **overrides: Any) -> Beneficiary:
    b = Beneficiary(**_beneficiary_fields(keyring, overrides))
    db.add(b)
    db.flush()
    return b


def beneficiary_at_revision(db: Session, keyring: Keyring, **overrides: Any) -> Beneficiary:
    """`beneficiary` for a database at an older migration: an INSERT of the columns that database has (the ORM, and
    a Core insert of the mapped table, write every mapped column, those added by later migrations too), with the
    mapped Python defaults of those columns, read back with the factory's own columns."""
    fields = _beneficiary_fields(keyring, overrides)
    present = {c["name"] for c in inspect(db.connection()).get_columns(Beneficiary.__tablename__)}
    mapped = Beneficiary.__table__.c
    values = dict(fields)
    for col in mapped:
        default = col.default
        if col.name in present and col.name not in values and isinstance(default, ColumnDefault):
            values[col.name] = default.arg(None) if default.is_callable else default.arg
    older = table(Beneficiary.__tablename__, column("id"), *(column(name, mapped[name].type) for name in values))
    bid = db.execute(insert(older).values(values).returning(older.c.id)).scalar_one()
    return Beneficiary(id=bid, **fields)


def review_result(**fields: Any) -> dict[str, Any]:
    """The result the machine stores for a case it sent to staff over a borderline face match (as
    pipelines.decision.rules records it: the card's score between the review and accept lines it compared with).
    The machine compared the face, so one reviewer accepts it unless something else takes two
    (review.accept_needs_second: a decision without a face score takes two)."""
    th = {"face_accept": 0.5, "face_review": 0.3}
    return {"decision": "review", "reasons": [], "scores": {"card_similarity": 0.42}, "thresholds": th, **fields}


def review_session(beneficiary_id: int | None, **overrides: Any) -> CertSession:
    """A session of this beneficiary (not added) the machine sent to staff review just now (`review_result`)."""
    values = {"state": "decided", "decision": "review", "decided_at": utcnow(), "result": review_result()}
    return session_row(beneficiary_id, **{**values, **overrides})


def enrol_template(keyring: Keyring, b: Beneficiary, embedding: np.ndarray, model: str) -> None:
    """Store an enrolled face template the way an accepted certification with consent does."""
    b.template = keyring.encrypt_field(embedding.astype(np.float32).tobytes().hex(), "beneficiary.template").encode()
    b.template_model = model
    b.template_consent = True


def session_row(beneficiary_id: int | None, **overrides: Any) -> CertSession:
    """A `cert_sessions` row (not added) of this beneficiary (None: a session without one), open, its challenge
    and its lifetime ending now unless ``overrides`` say otherwise."""
    now = utcnow()
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "beneficiary_id": beneficiary_id,
        "channel": "self",
        "token_hash": "-",
        "actions": [],
        "nonce": uuid.uuid4().hex,
        "nonce_expires_at": now,
        "expires_at": now,
    }
    return CertSession(**{**values, **overrides})


def held_job(db: Session, ctx: ServiceContext, process: str | None, lease_s: float = 300, attempts: int = 1) -> str:
    """A session claimed by ``process`` (a heartbeat name), its lease good for ``lease_s`` more seconds (negative:
    expired), after ``attempts`` claims."""
    b = beneficiary(db, ctx.keyring)
    now = utcnow()
    s = session_row(
        b.id,
        expires_at=now + dt.timedelta(hours=1),
        state="processing",
        queued_at=now,
        lease_until=now + dt.timedelta(seconds=lease_s),
        worker_id=f"{process}-worker",
        worker_process=process,
        job_attempts=attempts,
    )
    db.add(s)
    db.commit()
    return s.id


def update(ctx: ServiceContext, model: type[_Row], key: object, **fields: object) -> _Row:
    """Set `fields` on the stored row `key` of `model` in a unit of work of its own (a test putting a row in the
    state it needs); the row, detached, as it then stands (with no fields: just read)."""
    with ctx.db() as db:
        row = db.get(model, key)
        assert row is not None, f"no {model.__name__} {key!r}"
        for name, value in fields.items():
            setattr(row, name, value)
        db.flush()
        db.expunge(row)
        return row


def relative_binding(
    db: Session,
    beneficiary_id: int,
    status: str = "active",
    channel_hash: str | None = None,
    consent_at: dt.datetime | None = None,
    **operator_fields: Any,
) -> tuple[ProxyOperator, ProxyBinding]:
    """A relative's family account (a WeChat proxy operator: `channel_hash` the keyed hash of their openid, a made-up
    one by default; `operator_fields` such as `identity`) bound as the person's child, the binding in `status`
    (accepted, i.e. active, by default) with `consent_at`. Flushed: (operator, binding)."""
    op = ProxyOperator(
        id=str(uuid.uuid4()),
        channel="wechat",
        channel_hash=channel_hash or uuid.uuid4().hex,
        token_hash="-",
        **operator_fields,
    )
    db.add(op)
    db.flush()
    binding = ProxyBinding(
        id=str(uuid.uuid4()),
        operator_id=op.id,
        beneficiary_id=beneficiary_id,
        relationship="child",
        status=status,
        consent_at=consent_at,
    )
    db.add(binding)
    db.flush()
    return op, binding


def aged(path: Path, age_s: float) -> None:
    """The file's modified time set `age_s` seconds before now by the process clock, the one the orphan sweep's
    cutoff is computed from. The kernel stamps a write with its own clock, which scripts/test_at.sh cannot move: a
    test of a file's age sets every age it relies on, "written just now" (0) included."""
    at = time.time() - age_s
    os.utime(path, (at, at))


def aged_media(ctx: ServiceContext, key: str, age_s: float) -> None:
    """A stored object's age (see `aged`), on the local folder. A bucket's server stamps its objects with its own
    clock, which test_at.sh moves as it moves the tests' (every process it starts gets the same clock)."""
    if isinstance(ctx.storage, LocalEncryptedStorage):
        aged(ctx.storage.root / f"{key}.enc", age_s)
