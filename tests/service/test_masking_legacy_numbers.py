"""A first-generation (15-digit) ID number, and numbers typed in groups or full-width, in free text: masked in
logs, audit details and the console like an 18-character number.

Since typed input accepts 15-digit numbers (docs/id_card.md), such a number reaches free text: a staff member's
note, an error message, a typed external id. Masking knew only the 18 characters, so it passed into the log, the
audit trails and the console's pages in clear. It is masked now when it is one (a known region code and a
calendar date), so that other 15-digit numbers stay readable.
"""

from __future__ import annotations

import io
import logging

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.audit import audit
from service.certification.models import AuditEntry
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console import audit_chain
from service.infra.observability.logs import MaskingFilter
from service.infra.security import mask_number_reads, mask_text

# 110101 (北京市东城区), born 1949-01-01, sequence 001: the old number of 110101194901010018.
LEGACY = "110101490101001"
MASKED = "1101*******1001"
FULL_WIDTH = LEGACY.translate(str.maketrans("0123456789", "０１２３４５６７８９"))


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        (LEGACY, MASKED),
        ("110101 490101 001", MASKED),  # region, birth date, sequence
        ("110101-490101-001", MASKED),
        ("110101\u3000490101\u3000001", MASKED),
        (FULL_WIDTH, "１１０１*******１００１"),
        ("?id_number=110101%20490101%20001&today=2026", f"?id_number={MASKED}&today=2026"),
    ],
)
def test_a_valid_15_digit_number_is_masked_however_written(written: str, masked: str) -> None:
    assert mask_text(f"备注:{written}。") == f"备注:{masked}。"


@pytest.mark.parametrize(
    "text",
    [
        "order 123456789012345",  # region 123456 does not exist
        "IMEI 356938035643809",  # nor does 356938 (and month 56)
        "110101491301001",  # a known region, but month 13
        "110101490230001",  # 30 February
        "990101490101001",  # no region 99
        "1101014901010011",  # 16 digits
        "call 13800138000 at 1733420000123",  # a phone number, a timestamp in ms
        "paid 100000000000000.00",
        "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
        "abc110101490101001",  # inside a token
    ],
)
def test_other_15_digit_numbers_are_left_as_they_are(text: str) -> None:
    assert mask_text(text) == text


def test_a_partial_number_typed_full_width_is_masked_as_a_read_is() -> None:
    # 17 of the 18 characters, as typed with a Chinese input method into an external-id or search field.
    typed = "１１０１０５１９４９１２３１００２"
    assert mask_number_reads(f"asked {typed}") == "asked １１０１*********１００２"


def test_the_log_filter_masks_an_old_number_in_message_and_arguments() -> None:
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger("tests.masking.legacy")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("lookup failed for %s", "110101 490101 001")
        logger.warning("as an int %d", int(LEGACY))
        logger.warning(f"note: {FULL_WIDTH}")
    finally:
        logger.removeHandler(handler)
    out = buf.getvalue()
    assert LEGACY not in out and "490101" not in out and FULL_WIDTH not in out
    assert out.count(MASKED) == 2 and "１１０１*******１００１" in out


def test_audit_details_mask_an_old_number_in_a_free_text_note(db: Session) -> None:
    # The staff audit chain (console) and the records' audit trail (a relative's binding unlocked with a note).
    audit_chain.record(db, "sup1", "case.note", "x", {"note": f"来电核实,身份证 {LEGACY}"})
    audit(db, "api:staff:s9", "proxy.binding.unlocked", "P000001", {"binding": "b1", "note": f"核实 {LEGACY}"})
    db.flush()
    chain = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "case.note")).one()
    trail = db.scalars(select(AuditEntry).where(AuditEntry.action == "proxy.binding.unlocked")).one()
    assert chain.detail == {"note": f"来电核实,身份证 {MASKED}"}
    assert trail.detail == {"binding": "b1", "note": f"核实 {MASKED}"}
