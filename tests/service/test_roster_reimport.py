"""Re-importing a roster (docs/security.md Part AR): a row its record already holds (the same digest, the record holding
the number's hash) is counted unchanged from what the import read before its first write, without two look-ups of its
own; every other outcome as before, the refusal of a row whose number another record now holds among them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary
from service.certification.roster import import_roster
from tests.service import factories
from tests.service.test_roster import HEADER, TERMS, to_csv
from tests.service.test_signing_key_leaked import leak
from tests.service.test_signing_key_rotation import rotate


def people(n: int) -> list[list[str]]:
    return [
        [f"R{i:03d}", factories.id_number(region="420106", seq=200 + i), "张秀英", "", "enterprise_pension", "", ""]
        for i in range(n)
    ]


@contextmanager
def selects(ctx: ServiceContext) -> Iterator[list[str]]:
    """The SELECT statements run meanwhile."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(ctx.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(ctx.engine, "before_cursor_execute", count)


def test_unchanged_rows_are_told_without_a_look_up_of_their_own(ctx: ServiceContext, db: Session) -> None:
    rows = people(40)
    assert import_roster(db, ctx.keyring, "r.csv", to_csv(rows, HEADER), "t", TERMS).created == 40
    rows[5][2] = "李秀英"  # one renamed: looked up and updated as before
    with selects(ctx) as seen:
        report = import_roster(db, ctx.keyring, "r.csv", to_csv(rows, HEADER), "t", TERMS)
    assert (report.created, report.updated, report.unchanged, report.rejected) == (0, 1, 39, [])
    on_records = [s for s in seen if "FROM beneficiaries" in s]
    # Before: two per row (by external id, by number hash), 80 and more; now the one read of the whole file (and
    # the renamed row's two).
    assert len(on_records) <= 4, len(on_records)
    assert db.scalar(select(Beneficiary.name).where(Beneficiary.external_id == "R005")) == "李秀英"


def test_an_unchanged_row_whose_number_another_record_now_holds_is_still_refused(
    ctx: ServiceContext, db: Session
) -> None:
    """The record's hash is a signing key's no longer in use (dropped before the rekey reached it), and another
    record was stored meanwhile under the number's current hash: the row, its digest unchanged, is refused naming
    that record, as before; neither record changes."""
    rows = people(2)
    import_roster(db, ctx.keyring, "r.csv", to_csv(rows, HEADER), "t", TERMS)
    stale = "0" * 64  # no key in use makes it
    db.execute(update(Beneficiary).where(Beneficiary.external_id == "R000").values(id_hash=stale))
    factories.beneficiary(db, ctx.keyring, id_number=rows[0][1], external_id="OTHER-1")
    report = import_roster(db, ctx.keyring, "r.csv", to_csv(rows, HEADER), "t", TERMS)
    assert (report.updated, report.unchanged, report.identity_changed) == (0, 1, []), report.to_dict()
    [refused] = report.rejected
    assert (refused["external_id"], refused["errors"]) == ("R000", ["id_number already belongs to beneficiary OTHER-1"])
    assert db.scalar(select(Beneficiary.id_hash).where(Beneficiary.external_id == "R000")) == stale


def test_an_unchanged_row_with_a_date_problem_is_still_refused(ctx: ServiceContext, db: Session) -> None:
    """A row stored by an import dated later (a certification then in the past): its digest unchanged, the same
    row imported on an earlier date is refused as before (a certification after the import date)."""
    rows = [[*people(1)[0], "2026-12-01"]]
    header = [*HEADER, "last_certified_on"]
    later = replace(TERMS, today=dt.date(2027, 1, 10))
    assert import_roster(db, ctx.keyring, "r.csv", to_csv(rows, header), "t", later).created == 1
    report = import_roster(db, ctx.keyring, "r.csv", to_csv(rows, header), "t", TERMS)
    assert report.unchanged == 0 and "after the import date" in report.rejected[0]["errors"][0], report.to_dict()


def test_unchanged_rows_are_told_without_a_look_up_while_several_signing_keys_are_in_use(
    ctx: ServiceContext, db: Session
) -> None:
    """A previous key kept for a rotation, or a leaked one kept listed a certification cycle (docs/operations.md):
    the number has two hashes, and a re-import of the unchanged roster looked every row up twice (2,000 rows:
    0.41 s to 1.91 s). Now one read more per chunk (does another record hold a row's other hash?), whether the
    records still hold the old key's hash or the rekey moved them to the current one's."""
    rows = people(40)
    assert import_roster(db, ctx.keyring, "r.csv", to_csv(rows, HEADER), "t", TERMS).created == 40
    for move in (rotate, leak):
        move(ctx)  # the records hold the key before's hash (not rekeyed), or, the second time, a hash of two before
        for i in range(20):  # half of them rekeyed: the current key's hash
            current = ctx.keyring.id_hash(rows[i][1])
            db.execute(update(Beneficiary).where(Beneficiary.external_id == rows[i][0]).values(id_hash=current))
        with selects(ctx) as seen:
            report = import_roster(db, ctx.keyring, "r.csv", to_csv(rows, HEADER), "t", TERMS)
        assert (report.created, report.updated, report.unchanged, report.rejected) == (0, 0, 40, []), move
        on_records = [s for s in seen if "FROM beneficiaries" in s]
        assert len(on_records) <= 3, (move, len(on_records))


def test_an_unchanged_row_whose_number_another_record_holds_under_the_other_key_is_refused(
    ctx: ServiceContext, db: Session
) -> None:
    """During a rotation a row is its record as stored, under one key, while another record holds the same number
    under the other key (two records of one person). Refused naming that record, every time: before, the look-up
    by any of the number's hashes returned whichever of the two records the database gave first, and the row was
    counted unchanged or refused by chance; neither record changes."""
    rows = people(12)
    import_roster(db, ctx.keyring, "r.csv", to_csv(rows, HEADER), "t", TERMS)
    before = ctx.keyring
    rotate(ctx)
    for i in range(6):  # rekeyed: the current key's hash; another record holds the previous key's
        current = ctx.keyring.id_hash(rows[i][1])
        db.execute(update(Beneficiary).where(Beneficiary.external_id == rows[i][0]).values(id_hash=current))
        factories.beneficiary(db, before, id_number=rows[i][1], external_id=f"OTHER-{i}")
    for i in range(6, 10):  # not rekeyed: the previous key's hash; another record holds the current key's
        factories.beneficiary(db, ctx.keyring, id_number=rows[i][1], external_id=f"OTHER-{i}")
    stored = dict(db.execute(select(Beneficiary.external_id, Beneficiary.id_hash)).all())
    report = import_roster(db, ctx.keyring, "r.csv", to_csv(rows, HEADER), "t", TERMS)
    assert (report.created, report.updated, report.unchanged) == (0, 0, 2), report.to_dict()
    refused = {r["external_id"]: r["errors"] for r in report.rejected}
    assert refused == {f"R{i:03d}": [f"id_number already belongs to beneficiary OTHER-{i}"] for i in range(10)}
    assert dict(db.execute(select(Beneficiary.external_id, Beneficiary.id_hash)).all()) == stored
