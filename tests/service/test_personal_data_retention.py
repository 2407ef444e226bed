"""Personal data kept no longer, and shown no more, than its purpose needs (docs/security.md, Part H): the face
template of a person recorded as deceased is erased by the daily run; the text OCR read off a card photo goes
with the photo at the retention purge; a partial read of the number line is stored and served masked."""

from __future__ import annotations

import datetime as dt
import re
from typing import cast

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import select

from pipelines.decision.result import Outcome
from pipelines.decision.runner import CertificationReport
from pipelines.id_card.result import IdCardResult
from service.certification.context import ServiceContext
from service.certification.contract import Certifier
from service.certification.models import (
    AuditEntry,
    Beneficiary,
    Certification,
    CertSession,
    Channel,
    SessionState,
    utcnow,
)
from service.certification.processing import claim, process
from service.certification.retention import purge_media
from service.certification.sessions import create_session
from tests.service import factories
from tests.service.certifiers import FixedCertifier, fixed_decision
from tests.service.conftest import ADMIN

NUMBER = factories.id_number(region="110105", seq=321)
CARD = {
    "name": "张秀英",
    "sex": "女",
    "ethnicity": "回",
    "birth_date": "1950-03-14",
    "address": "北京市朝阳区和平街12号院3号楼",
    "issuing_authority": "北京市公安局朝阳分局",
    "id_number": "1101**********3211",
    "id_number_valid": True,
    "checks": {"number": {"checksum": True}},
}


def _template(ctx: ServiceContext, b: Beneficiary) -> None:
    factories.enrol_template(ctx.keyring, b, np.ones(512, np.float32), "test-recognizer")


def test_the_daily_run_erases_the_face_template_of_a_person_recorded_deceased(
    ctx: ServiceContext, client: TestClient
) -> None:
    with ctx.db() as db:
        dead = factories.beneficiary(db, ctx.keyring, status="deceased")
        alive = factories.beneficiary(db, ctx.keyring)
        _template(ctx, dead)
        _template(ctx, alive)
        dead_id, alive_id, dead_ext = dead.id, alive.id, dead.external_id
    r = client.post("/api/v1/cycle/run", headers=ADMIN)
    assert r.status_code == 200, r.text
    with ctx.db() as db:
        gone, kept = db.get(Beneficiary, dead_id), db.get(Beneficiary, alive_id)
        assert gone is not None and gone.template is None and gone.template_model is None
        assert kept is not None and kept.template is not None  # the living keep theirs
        entries = db.scalars(select(AuditEntry).where(AuditEntry.action == "retention.template")).all()
        assert [(e.actor, e.detail) for e in entries if e.target == dead_ext] == [("system", {"reason": "deceased"})]
    r = client.get(f"/api/v1/beneficiaries/{dead_ext}", headers=ADMIN)
    assert r.status_code == 200 and r.json()["template_enrolled"] is False


def test_the_retention_purge_takes_the_text_read_off_the_card_with_the_photo(
    ctx: ServiceContext, client: TestClient
) -> None:
    decided = utcnow() - dt.timedelta(days=ctx.settings.storage.retention_days + 2)
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        result = {"decision": "accept", "reasons": [], "scores": {"card_similarity": 0.9}, "id_card": dict(CARD)}
        s = factories.session_row(b.id, state="decided", decision="accept", decided_at=decided, result=result)
        s.id_card_key, s.video_key = f"sessions/{s.id}/id_card", f"sessions/{s.id}/video"
        ctx.storage.put(s.id_card_key, b"card")
        ctx.storage.put(s.video_key, b"video")
        db.add(s)
        sid = s.id
    assert client.post("/api/v1/cycle/run", headers=ADMIN).status_code == 200
    with ctx.db() as db:
        row = db.get(CertSession, sid)
        assert row is not None and row.media_purged_at is not None and row.result is not None
        card = row.result["id_card"]
        for name in ("name", "sex", "ethnicity", "birth_date", "address", "issuing_authority"):
            assert card[name] is None, name
        # What the decision rests on stays: the outcome, its scores, the masked number and the checks.
        assert row.result["decision"] == "accept" and row.result["scores"] == {"card_similarity": 0.9}
        assert card["id_number"] == CARD["id_number"] and card["checks"] == CARD["checks"]
        assert row.decision == "accept"


class PartialReadCertifier(FixedCertifier):
    """Accepts, with a card whose number line was read one digit short first (glare on the check digit)."""

    def run(self, *args: object, **kwargs: object) -> CertificationReport:
        self.runs += 1
        card = IdCardResult(side="portrait", name="张秀英", id_number=NUMBER, id_number_valid=True)
        card.checks = {"number_raw": NUMBER[:17], "number_reread": NUMBER + "7", "number_extended": NUMBER}
        return CertificationReport(fixed_decision(Outcome.ACCEPT), card, None, None, None, None, {})


def test_a_partial_read_of_the_number_is_stored_and_served_masked(ctx: ServiceContext, client: TestClient) -> None:
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, id_number=NUMBER)
        new = create_session(db, ctx, b, Channel.SELF, False, "test")
        s = new.session
        s.id_card_key, s.video_key = f"sessions/{s.id}/id_card", f"sessions/{s.id}/video"
        s.state, s.queued_at = SessionState.QUEUED, utcnow()
        ctx.storage.put(s.id_card_key, b"card")
        ctx.storage.put(s.video_key, b"video")
        sid, token = s.id, new.token
    assert claim(ctx, sid, "w1") == sid
    assert process(ctx, cast(Certifier, PartialReadCertifier()), sid, "w1")
    r = client.get(f"/api/v1/sessions/{sid}/result", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    checks = r.json()["result"]["id_card"]["checks"]
    assert checks["number_raw"] == NUMBER[:4] + "*" * 9 + NUMBER[13:17]
    assert checks["number_reread"] == NUMBER[:4] + "*" * 11 + NUMBER[15:] + "7"
    assert not re.search(r"[0-9]{14}", r.text)  # no run of the number in clear anywhere in the answer
    with ctx.db() as db:
        row = db.get(CertSession, sid)
        assert row is not None and NUMBER[:17] not in str(row.result) and NUMBER[4:14] not in str(row.result)


def test_a_person_recorded_deceased_while_their_video_waited_is_not_certified(ctx: ServiceContext) -> None:
    """The session opened while the person was alive; the death was recorded before the worker decided: a machine
    acceptance becomes a rejection naming the reason, and no certification is issued for the dead."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        s = create_session(db, ctx, b, Channel.SELF, False, "test").session
        s.id_card_key, s.video_key = f"sessions/{s.id}/id_card", f"sessions/{s.id}/video"
        s.state, s.queued_at = SessionState.QUEUED, utcnow()
        ctx.storage.put(s.id_card_key, b"card")
        ctx.storage.put(s.video_key, b"video")
        b.status = "deceased"
        sid, bid = s.id, b.id
    assert claim(ctx, sid, "w1") == sid
    assert process(ctx, cast(Certifier, FixedCertifier(Outcome.ACCEPT)), sid, "w1")
    with ctx.db() as db:
        row = db.get(CertSession, sid)
        assert row is not None and row.decision == "reject" and "BENEFICIARY_DECEASED" in row.reasons
        # What the result page and staff read says so too (it said "accept" with no reason).
        assert row.result is not None and row.result["decision"] == "reject"
        assert "BENEFICIARY_DECEASED" in row.result["reasons"]
        assert db.scalar(select(Certification).where(Certification.beneficiary_id == bid)) is None


def test_the_purge_also_takes_the_card_text_the_reader_kept_among_its_checks(ctx: ServiceContext) -> None:
    """The reader's diagnostics hold card text too: the birth date as printed (`birth_text`), an ethnicity it
    snapped to the nearest name (`ethnicity_snapped`, e.g. 田→回) and the parts of the address it corrected
    (`address_corrected`). They stayed after the purge emptied the fields themselves: the ethnicity and the
    address, held nowhere else in the service, kept for ever. The other checks stay."""
    checks = {
        "number": {"checksum": True},
        "birth_text": "1950年3月14日",
        "ethnicity_snapped": "田→回",
        "address_corrected": ["北京市朝阳→北京市朝阳区"],
        "missing_fields": ["sex"],
    }
    decided = utcnow() - dt.timedelta(days=ctx.settings.storage.retention_days + 2)
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        result = {"decision": "accept", "reasons": [], "id_card": {**CARD, "checks": checks}}
        s = factories.session_row(b.id, state="decided", decision="accept", decided_at=decided, result=result)
        db.add(s)
        sid = s.id
    assert purge_media(ctx) >= 1
    with ctx.db() as db:
        row = db.get(CertSession, sid)
        assert row is not None and row.media_purged_at is not None and row.result is not None
        kept = row.result["id_card"]["checks"]
    assert kept == {**checks, "birth_text": None, "ethnicity_snapped": None, "address_corrected": None}
    for text in ("1950", "回", "朝阳"):
        assert text not in str(row.result), text
