"""A database restore from a dump older than a withdrawal brought the withdrawn template back, with its consent
(docs/security.md, Part BU "Left"; docs/operations.md, "Restoring from a backup"). Each withdrawal is now recorded,
sealed, in the media store, which the restore does not reach; `pension-cert console record-restore` does it again
through the same service function, audited, and skips one the restored database reflects.

The restore is simulated as test_restore.py does: the rows written after the "dump" are taken back in the
database (here: the template put back, the audit entries after the dump deleted), the media store left as it is."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import delete, func, select

from service.certification.audit import audit
from service.certification.audit_anchor import read_restores
from service.certification.context import ServiceContext
from service.certification.models import AuditEntry, Beneficiary
from service.certification.restore_record import record_restore
from service.certification.staff_audit import ConsoleAuditEntry
from service.certification.template_withdrawal import WITHDRAWN_ACTION, withdraw_template
from service.certification.withdrawal_records import read_withdrawals
from service.certification.withdrawal_replay import reapply_withdrawals
from service.features.console.auth import Role, Staff
from service.features.console.template_erasure import withdraw_at_counter
from service.infra.security import mask_text
from tests.service import factories


@dataclass(frozen=True)
class Dump:
    """Where the dump ends: the last entry of each audit trail."""

    audit_id: int
    console_seq: int


def take_dump(ctx: ServiceContext) -> Dump:
    with ctx.db() as db:
        return Dump(
            db.scalar(select(func.max(AuditEntry.id))) or 0, db.scalar(select(func.max(ConsoleAuditEntry.seq))) or 0
        )


def restore(ctx: ServiceContext, dump: Dump, model: type[Any], key: object, **fields: Any) -> None:
    """The database back to `dump`: row `key` of `model` as the dump holds it (`fields`), the audit entries written
    since gone; the media store as it is."""
    with ctx.db() as db:
        db.execute(delete(AuditEntry).where(AuditEntry.id > dump.audit_id))
        db.execute(delete(ConsoleAuditEntry).where(ConsoleAuditEntry.seq > dump.console_seq))
        row = db.get(model, key)
        assert row is not None
        for name, value in fields.items():
            setattr(row, name, value)


def record_the_restore(ctx: ServiceContext) -> list[str]:
    """What `pension-cert console record-restore` does (console_cmd._restored): the withdrawals read first, the
    restore recorded, the withdrawals later than the dump done again; the kinds done."""
    with ctx.db() as db:
        kept = read_withdrawals(ctx.storage)
        record_restore(db, ctx.storage, "ops", "restored the dump of 2026-12-05")
        return [w.kind for w in reapply_withdrawals(db, ctx, kept)]


def entries(ctx: ServiceContext, model: type[Any], action: str) -> list[Any]:
    """(actor, target, detail) of the entries of `action` in one trail (AuditEntry, ConsoleAuditEntry)."""
    with ctx.db() as db:
        return [(e.actor, e.target, e.detail) for e in db.scalars(select(model).where(model.action == action))]


def test_a_counter_erasure_after_the_dump_is_done_again_after_the_restore(ctx: ServiceContext) -> None:
    """The person asked at the counter to erase their template after last night's dump; the disk failed and the
    dump was restored. Before: the template came back with its consent, and the first certification used it."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        factories.enrol_template(ctx.keyring, b, np.ones(8, dtype=np.float32), "test-model")
        bid, external_id, template = b.id, b.external_id, b.template
    dump = take_dump(ctx)
    staff = Staff(id=1, username="rev1", display_name="", role=Role.REVIEWER, csrf="-")
    with ctx.db() as db:
        assert withdraw_at_counter(db, staff, bid, "本人持身份证到柜台申请删除") is not None
    [(_, _, original)] = entries(ctx, ConsoleAuditEntry, "template.withdrawn")
    restore(ctx, dump, Beneficiary, bid, template=template, template_model="test-model", template_consent=True)
    assert factories.update(ctx, Beneficiary, bid).template is not None  # what the restore brought back

    assert record_the_restore(ctx) == ["template.withdrawn"]
    after = factories.update(ctx, Beneficiary, bid)
    assert (after.template, after.template_model, after.template_consent) == (None, None, False)
    [(actor, target, detail)] = entries(ctx, AuditEntry, "template.withdrawn")
    assert (actor, target) == ("cli:restore", external_id)
    assert detail["via"] == "restore" and detail["event"] == original["event"] and detail["template_cleared"]
    assert len(read_restores(ctx.storage)) == 1

    assert record_the_restore(ctx) == []  # a rerun: reflected (its re-application's entry), nothing done twice
    assert len(entries(ctx, AuditEntry, "template.withdrawn")) == 1


def test_a_withdrawal_the_dump_holds_is_not_done_again(ctx: ServiceContext) -> None:
    """A withdrawal before the dump, then the person consented again and enrolled (also before the dump): the
    restored database is right as it is; the recorded withdrawal must not erase the later template."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        bid = b.id
    staff = Staff(id=1, username="rev1", display_name="", role=Role.REVIEWER, csrf="-")
    with ctx.db() as db:
        assert withdraw_at_counter(db, staff, bid, "柜台申请") is not None
    with ctx.db() as db:
        b2 = db.get(Beneficiary, bid)
        assert b2 is not None
        factories.enrol_template(ctx.keyring, b2, np.ones(8, dtype=np.float32), "test-model")  # enrolled again
    dump = take_dump(ctx)
    restore(ctx, dump, Beneficiary, bid)
    assert len(read_withdrawals(ctx.storage)) == 1
    assert record_the_restore(ctx) == []
    assert factories.update(ctx, Beneficiary, bid).template is not None


def test_a_counter_withdrawal_of_a_person_keyed_by_id_number_the_dump_holds_is_not_done_again(
    ctx: ServiceContext,
) -> None:
    """Part CO "Left": a bureau keying pensioners by their ID numbers. The person withdrew at the counter, then
    consented again and enrolled, all before the dump. Before: the counter's chain entry names the person as
    `audit.person_ref` does (`4201**********0011#17`), never as the kept record's clear external id, so
    `record-restore` did not recognise it as held and erased the newer template, auditing the withdrawal again."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, external_id=factories.id_number(region="420106", seq=11))
        bid = b.id
    staff = Staff(id=1, username="rev1", display_name="", role=Role.REVIEWER, csrf="-")
    with ctx.db() as db:
        assert withdraw_at_counter(db, staff, bid, "本人持身份证到柜台申请删除") is not None
    with ctx.db() as db:
        b2 = db.get(Beneficiary, bid)
        assert b2 is not None
        factories.enrol_template(ctx.keyring, b2, np.ones(8, dtype=np.float32), "test-model")  # enrolled again
    [(_, target, _)] = entries(ctx, ConsoleAuditEntry, "template.withdrawn")
    assert target.endswith(f"#{bid}")  # the chain's target is not the kept record's
    dump = take_dump(ctx)
    restore(ctx, dump, Beneficiary, bid)

    assert record_the_restore(ctx) == []
    assert factories.update(ctx, Beneficiary, bid).template is not None
    assert entries(ctx, AuditEntry, "template.withdrawn") == []  # audited once, at the counter


@pytest.mark.parametrize("keyed_by_id_number", [False, True], ids=["external_id", "id_number"])
def test_the_console_command_does_a_withdrawal_again_on_a_real_file_restore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], keyed_by_id_number: bool
) -> None:
    """A real SQLite file copied back over the database after the person withdrew on "我的信息": `console
    record-restore` erases the template again and says so; run again, it does nothing twice. A person keyed by an ID
    number is named masked, as the withdrawal's log line names them (Part CU "Left": the clear number was printed)."""
    import service.schema
    from service.adapters.cli import main
    from service.infra.config import Settings

    for k in [k for k in os.environ if k.startswith("PENSION_CERT_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("PENSION_CERT_VAR_DIR", str(tmp_path))

    def context() -> ServiceContext:
        return ServiceContext(Settings(var_dir=tmp_path), schema=service.schema.metadata)

    ctx = context()
    number = factories.id_number(region="420106", seq=11)
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, **({"external_id": number} if keyed_by_id_number else {}))
        factories.enrol_template(ctx.keyring, b, np.ones(8, dtype=np.float32), "test-model")
        bid, external_id = b.id, b.external_id
    ctx.engine.dispose()
    shutil.copy(tmp_path / "pension_cert.db", tmp_path / "dump.db")  # last night's backup
    ctx = context()
    with ctx.db() as db:  # as the page's route does (my_data.withdraw)
        person = db.get(Beneficiary, bid)
        assert person is not None
        audit(db, "wechat:person", WITHDRAWN_ACTION, person.external_id, withdraw_template(db, person).detail("wechat"))
    ctx.engine.dispose()
    shutil.copy(tmp_path / "dump.db", tmp_path / "pension_cert.db")  # the restore

    assert main(["console", "record-restore", "--reason", "磁盘故障，恢复前一晚的备份"]) == 0
    printed = capsys.readouterr().out
    out = json.loads(printed)
    assert [w["kind"] for w in out["withdrawals_redone"]] == [WITHDRAWN_ACTION], out
    assert out["withdrawals_redone"][0]["target"] == mask_text(external_id)  # the log line's `audit …` target
    assert number not in printed
    assert main(["console", "record-restore", "--reason", "磁盘故障，恢复前一晚的备份"]) == 0
    assert json.loads(capsys.readouterr().out)["withdrawals_redone"] == []
    ctx = context()
    try:
        with ctx.db() as db:
            after = db.get(Beneficiary, bid)
            assert after is not None and (after.template, after.template_consent) == (None, False)
            restored = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "audit.restored"))
            assert [e.detail["withdrawals_redone"] for e in restored] == [1]
    finally:
        ctx.engine.dispose()
