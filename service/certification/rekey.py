"""Re-sealing with the current media key what a previous one sealed: the encrypted columns (ID numbers, face
templates) and every object of the media store (cards, videos, the audit anchors and head); and recomputing with
the current signing key the ID-number look-up hashes a previous one made (or a leaked one: `Keyring.id_hashes`
tries it too), from the sealed numbers beside them.
`pension-cert rekey` runs it (service/adapters/cli/rekey_cmd.py names the columns); docs/operations.md, "Rotating
the media key" and "Rotating the signing key".

Resumable and idempotent: what the current key opens is left as it is, so a rerun only does what is left. Nothing
is lost when it stops midway: the previous keys still open what it did not reach, each batch of rows is one
transaction, and an object is replaced whole by its new blob (storage.MediaStorage.reseal). A row is updated only
if it still holds the ciphertext read (a template re-enrolled meanwhile is not overwritten with the old one).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from cryptography.exceptions import InvalidTag
from sqlalchemy import ColumnElement, CursorResult, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from service.certification.audit import audit
from service.certification.context import ServiceContext
from service.infra.storage import (
    StorageError,
    StorageFullError,
    StorageUnavailableError,
    UnreadableStorageError,
)

log = logging.getLogger(__name__)
ACTION = "keys.rekey"
SHOWN_UNREADABLE = 20  # the report names at most this many unreadable rows or objects (the count is exact)
SHOWN_NAME_CHARS = 120  # of an object's name in the report (a stray file's name may be anything)


@dataclass(frozen=True)
class SealedColumn:
    """A column holding ``Keyring.encrypt_field(value, context)``: text, or its bytes (``binary``)."""

    key: InstrumentedAttribute[Any]  # the row's primary key
    value: InstrumentedAttribute[Any]
    context: str
    binary: bool = False

    @property
    def name(self) -> str:
        return f"{self.value.class_.__tablename__}.{self.value.key}"


@dataclass
class Count:
    resealed: int = 0  # sealed (re-hashed) anew; with --check: still to be
    current: int = 0  # already sealed with the current key
    unreadable: list[str] = field(default_factory=list)  # opened by no key in use: left as they are
    failed: list[str] = field(default_factory=list)  # media the store would not read or write, or stray names

    def as_dict(self, done: str = "resealed") -> dict[str, Any]:
        return {
            done: self.resealed,
            "current": self.current,
            "unreadable": len(self.unreadable),
            "unreadable_ids": self.unreadable[:SHOWN_UNREADABLE],
            "failed": len(self.failed),
            "failed_ids": self.failed[:SHOWN_UNREADABLE],
        }


def reseal_column(ctx: ServiceContext, column: SealedColumn, batch: int, write: bool, who: dict[str, str]) -> Count:
    """Every value of `column`, in batches of `batch` rows by primary key, one transaction (and one audit entry
    naming the count, when it changed any) each."""
    count, after = Count(), None
    while True:
        with ctx.db() as db:
            # An emptied value (erased by retention: a relative's unaccepted claim) has nothing to re-seal.
            query = select(column.key, column.value).where(column.value.is_not(None), column.value != _empty(column))
            query = query.order_by(column.key)
            if after is not None:
                query = query.where(column.key > after)
            rows = db.execute(query.limit(batch)).all()
            if not rows:
                return count
            done = 0
            for pk, stored in rows:
                try:
                    new = _resealed_value(ctx, column, stored)
                except InvalidTag:
                    count.unreadable.append(str(pk))
                    continue
                if new is None:
                    count.current += 1
                elif not write:
                    count.resealed += 1
                elif _replace(db, column, pk, stored, new):
                    count.resealed, done = count.resealed + 1, done + 1
                else:  # rewritten meanwhile by the service, with the current key
                    count.current += 1
            if done:
                audit(db, "cli", ACTION, column.name, {"resealed": done, "through": str(rows[-1][0]), **who})
                log.info("rekey: %d more of %s re-sealed", done, column.name)
            after = rows[-1][0]


def _empty(column: SealedColumn) -> str | bytes:
    return b"" if column.binary else ""


def _resealed_value(ctx: ServiceContext, column: SealedColumn, stored: Any) -> Any:
    """The new stored value, None when the current key sealed it; InvalidTag when no key in use opens it."""
    try:
        new = ctx.keyring.reseal_field(stored.decode() if column.binary else stored, column.context)
    except ValueError as exc:  # not base64 (binascii.Error), not UTF-8: no key opens that either
        raise InvalidTag from exc
    if new is None:
        return None
    return new.encode() if column.binary else new


def _replace(db: Session, column: SealedColumn | HashedColumn, pk: Any, stored: Any, new: Any) -> bool:
    """Compare and set: only if the row still holds what was read."""
    model = column.value.class_
    changed = db.execute(
        update(model)
        .where(column.key == pk, column.value == stored)
        .values({column.value.key: new})
        .execution_options(synchronize_session=False)
    )
    return bool(cast(CursorResult[Any], changed).rowcount)


@dataclass(frozen=True)
class HashedColumn:
    """A column holding ``Keyring.id_hash(number)`` of the number sealed beside it (``sealed``, ``context``), or
    found for it (``sealed`` a correlated scalar subquery: a relative's identity, whose number is sealed in the
    claim it was verified from); ``unique``: no two rows may hold the same hash (one row per person). Rows whose
    hash is NULL (an identity not verified) are skipped."""

    key: InstrumentedAttribute[Any]
    value: InstrumentedAttribute[Any]
    sealed: ColumnElement[Any] | InstrumentedAttribute[Any]
    context: str
    unique: bool = False

    @property
    def name(self) -> str:
        return f"{self.value.class_.__tablename__}.{self.value.key}"


def rehash_column(
    ctx: ServiceContext,
    column: HashedColumn,
    copies: Sequence[InstrumentedAttribute[Any]],
    batch: int,
    write: bool,
    who: dict[str, str],
) -> Count:
    """Every hash of `column` a previous signing key made, recomputed from its sealed number with the current key,
    in batches of `batch` rows (one transaction and one audit entry each, as `reseal_column`); with it, in the
    same transaction, every copy of the old hash in `copies` (a relative's claims and verified identity), so that
    the stored hashes of one person agree again once the run is done (a copy written meanwhile from a stale read
    is a row of its own column: `--check` counts it, the rerun moves it). A hash no key in use makes from its
    number is ``unreadable`` and left alone (a wrong PENSION_CERT_SIGNING_KEY changes nothing); one whose new
    hash another row of a ``unique`` column holds already (two rows for one person) is ``failed``, for staff to
    merge."""
    count, after = Count(), None
    while True:
        with ctx.db() as db:
            # A row whose number was emptied (retention) keeps its hash as it is: nothing to recompute it from.
            kept = or_(column.sealed.is_(None), column.sealed != "")
            query = select(column.key, column.value, column.sealed).where(column.value.is_not(None), kept)
            query = query.order_by(column.key).limit(batch)
            rows = db.execute(query if after is None else query.where(column.key > after)).all()
            if not rows:
                return count
            done = sum(_rehash_row(db, ctx, column, copies, row, count, write) for row in rows)
            if done:
                audit(db, "cli", ACTION, column.name, {"rehashed": done, "through": str(rows[-1][0]), **who})
                log.info("rekey: %d more of %s re-hashed", done, column.name)
            after = rows[-1][0]


def _rehash_row(
    db: Session,
    ctx: ServiceContext,
    column: HashedColumn,
    copies: Sequence[InstrumentedAttribute[Any]],
    row: Any,
    count: Count,
    write: bool,
) -> bool:
    """One row's part of `rehash_column`, counted in `count`; True when it was re-hashed."""
    pk, stored, sealed = row
    try:
        hashes = ctx.keyring.id_hashes(ctx.keyring.decrypt_field(sealed, column.context)) if sealed else ()
    except (InvalidTag, ValueError):  # a number no media key opens: its hash cannot be told either
        hashes = ()
    if hashes and stored == hashes[0]:
        count.current += 1
        return False
    if stored not in hashes:
        count.unreadable.append(str(pk))
        return False
    if column.unique and db.scalar(select(column.key).where(column.value == hashes[0], column.key != pk)):
        count.failed.append(str(pk))
        return False
    if not write:
        count.resealed += 1
        return False
    if not _replace(db, column, pk, stored, hashes[0]):  # changed meanwhile by the service
        count.current += 1
        return False
    for copy in copies:
        db.execute(
            update(copy.class_)
            .where(copy == stored)
            .values({copy.key: hashes[0]})
            .execution_options(synchronize_session=False)
        )
    count.resealed += 1
    return True


def reseal_media(ctx: ServiceContext, batch: int, write: bool, who: dict[str, str], after: str = "") -> Count:
    """Every object of the media store (those whose key sorts after `after` only: a rerun that skips what the last
    audit entry says is done, without reading it again); one audit entry per `batch` objects sealed anew (and one
    for the rest, also when the run stops). An object the store will not read or write (refused, a stray file
    name that is no key of ours) is counted in ``failed`` and the run goes on; a store that stops answering
    (StorageUnavailableError) or is full (StorageFullError) stops it: the rerun goes on from what is left."""
    count, done, last = Count(), 0, ""
    try:
        for obj in ctx.storage.list(""):
            if obj.key <= after:
                continue
            try:
                changed = ctx.storage.reseal(obj.key, write=write)
            except UnreadableStorageError:
                count.unreadable.append(obj.key)
                continue
            except (StorageUnavailableError, StorageFullError):
                raise
            except StorageError as exc:
                log.warning("rekey: media object left as it is: %s", exc)
                count.failed.append(obj.key[:SHOWN_NAME_CHARS])
                continue
            if not changed:
                count.current += 1
                continue
            count.resealed, done, last = count.resealed + 1, done + int(write), obj.key
            if done >= batch:
                _audit_media(ctx, done, last, who)
                done = 0
    finally:
        _audit_media(ctx, done, last, who)
    return count


def _audit_media(ctx: ServiceContext, done: int, through: str, who: dict[str, str]) -> None:
    if done:
        with ctx.db() as db:
            audit(db, "cli", ACTION, "media", {"resealed": done, "through": through, **who})
        log.info("rekey: %d more media objects re-sealed, through %s", done, through)
