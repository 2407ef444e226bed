"""One rule for a staff member's note (evidence_hold.checked_note): a hold's, a revocation's, and now an alert's
handling note (console/alert_review.resolve_alert) and a WeChat notice's close (wechat/staff_notices). The last two
wrote the rule again (mask, strip, measure the masked text against their own limit); they now call checked_note
with their limit and mask what it returns: the note is measured as typed, like every other staff note."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.errors import InvalidInputError
from service.certification.evidence_hold import MAX_NOTE_CHARS, checked_note
from service.features.console import alert_review
from service.features.console.auth import Role, Staff
from service.features.console.models import ConsoleAlert
from service.features.wechat import staff_notices
from service.features.wechat.models import NoticeStatus, WeChatNotice
from service.infra.security import mask_text
from tests.service import factories

NUMBER = factories.id_number("420106", seq=31)
SPACED = f"{NUMBER[:6]} {NUMBER[6:14]} {NUMBER[14:]}"  # typed in groups: 20 characters, 18 once masked
SUP = Staff(id=1, username="sup1", display_name="主管", role=Role.SUPERVISOR, csrf="x")


def test_checked_note_takes_the_callers_limit_and_keeps_the_default() -> None:
    assert checked_note("  已电话告知  ", "C", limit=200) == "已电话告知"
    assert checked_note("字" * MAX_NOTE_CHARS, "C") == "字" * MAX_NOTE_CHARS
    for bad, limit in (("字" * 201, 200), ("   ", 200), ("字" * (MAX_NOTE_CHARS + 1), MAX_NOTE_CHARS)):
        with pytest.raises(InvalidInputError) as caught:
            checked_note(bad, "C", limit=limit)
        assert caught.value.code == "C" and str(limit) in caught.value.detail


def test_masking_never_lengthens_a_note() -> None:
    """The callers measure before masking: a masked note fits wherever the typed one did."""
    for text in (NUMBER, SPACED, NUMBER[:6] + NUMBER[8:17], "备注" + NUMBER + "完"):
        assert len(mask_text(text)) <= len(text)
    assert len(mask_text(SPACED)) == 18 and NUMBER not in mask_text(SPACED)


def test_an_alerts_note_is_measured_as_typed_and_stored_masked(db: Session, ctx: ServiceContext) -> None:
    b = factories.beneficiary(db, ctx.keyring)
    alert = ConsoleAlert(kind="certified_after_death", beneficiary_id=b.id, detail={"date_of_death": "2026-01-02"})
    db.add(alert)
    db.flush()
    # 501 typed characters, 499 once the spaced number is masked: the old copy measured the masked text (accepted).
    too_long = SPACED + "字" * (alert_review.MAX_NOTE_CHARS + 1 - len(SPACED))
    assert alert_review.resolve_alert(db, SUP, alert.id, too_long) == "ALERT_NOTE" and not alert.resolved
    assert alert_review.resolve_alert(db, SUP, alert.id, " ") == "ALERT_NOTE"
    assert alert_review.resolve_alert(db, SUP, alert.id, f"  核实 {SPACED}  ") is None
    assert alert.resolved and alert.detail["resolve_note"] == "核实 " + mask_text(NUMBER)


def test_a_close_note_is_measured_as_typed_and_stored_masked() -> None:
    notice = WeChatNotice(kind="revoked", openid="o-x", status=NoticeStatus.FAILED, attempts=3)
    too_long = SPACED + "字" * (staff_notices.MAX_NOTE_CHARS + 1 - len(SPACED))
    for bad in (too_long, "  "):
        with pytest.raises(InvalidInputError) as caught:
            staff_notices._decision(notice, "close", False, bad)
        assert caught.value.code == "WECHAT_CLOSE_NOTE"
    columns, detail = staff_notices._decision(notice, "close", False, f" 电话告知 {SPACED} ")
    assert columns == {"status": NoticeStatus.CLOSED} and detail == {"note": "电话告知 " + mask_text(NUMBER)}
