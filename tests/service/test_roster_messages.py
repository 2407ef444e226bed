"""A rejected roster row's message names what is allowed in words, never a Python list: the operator API's import
report showed `benefit_types must be among ['enterprise_pension', …]`. The console keeps its one translation of the
sentence (service/features/console/labels.py, by the sentence's beginning)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import BenefitType
from service.certification.roster import import_roster
from service.features.console.labels import roster_problem_zh
from tests.service.test_roster import HEADER, TERMS, to_csv


def test_an_unknown_benefit_type_is_answered_in_words(ctx: ServiceContext, db: Session) -> None:
    row = ["X4", "370102195003140017", "李四", "", "lottery", "", ""]
    report = import_roster(db, ctx.keyring, "roster.csv", to_csv([row], HEADER), "test", TERMS)
    [message] = [e for e in report.rejected[0]["errors"] if e.startswith("benefit_types")]
    assert "[" not in message and "'" not in message, message
    assert message.startswith("benefit_types must be among enterprise_pension, resident_pension")
    assert all(t.value in message for t in BenefitType)
    assert roster_problem_zh(message).startswith("待遇类型须为：")  # the console's wording, unchanged
