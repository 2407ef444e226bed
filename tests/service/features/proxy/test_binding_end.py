"""How a binding ends without its relative: a roster re-import that gives the elder's record another ID number
revokes every binding of the record (the relatives were the old person's), and a binding the elder has not
consented to within the window expires in the daily upkeep; a consent given after the window is refused."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from proxy_auth import ConsentMethod
from service.certification.context import ServiceContext
from service.certification.deaths import record_death
from service.certification.models import AuditEntry, Beneficiary, CertSession, utcnow
from service.certification.retention import storage_upkeep
from service.features.console.identity_alerts import KIND
from service.features.console.models import ConsoleAlert
from service.features.proxy.bindings import record_consent
from service.features.proxy.hooks import first_proxy_certification
from service.features.proxy.models import ENDED_STATUSES, BindingStatus, ProxyBinding
from service.features.proxy.operators import mark_verified
from service.infra.clock import local_today
from service.infra.security import mask_id
from tests.service import factories
from tests.service.features.proxy.helpers import (
    P,
    active_binding,
    bearer,
    bind,
    import_roster,
    listed_bindings,
    new_elder,
    roster_csv,
    staff_consent,
    verified_operator,
)


def _actions(ctx: ServiceContext, action: str) -> list[AuditEntry]:
    with ctx.db() as db:
        return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def test_a_roster_change_of_id_number_revokes_the_old_persons_bindings(client: TestClient, ctx: ServiceContext) -> None:
    ext, number, name = new_elder(ctx, valid_until=dt.date(2027, 3, 1), last_certified_on=dt.date(2026, 3, 2))
    child = verified_operator(client, ctx)
    active = active_binding(client, child, number, name)  # the old person consented to this child
    stranger = verified_operator(client, ctx)
    pending = bind(client, stranger, number, name).json()
    assert pending["status"] == "pending_consent"

    other, new_name = factories.id_number(birth=dt.date(1941, 2, 3)), "李秀珍"
    report = import_roster(client, roster_csv(ext, other, new_name))
    assert report["identity_changed"] == 1

    for op, b in ((child, active), (stranger, pending)):
        seen = listed_bindings(client, op)[b["binding_id"]]
        assert seen["status"] == "revoked" and seen["ended_at"]
    r = client.post(f"{P}/bindings/{active['binding_id']}/sessions", headers=bearer(child["token"]))
    assert r.status_code == 404 and r.json()["error"]["code"] == "PROXY_NOT_BOUND"  # no certifying the new person
    revoked = _actions(ctx, "proxy.binding.revoked")
    assert sorted(e.detail["binding"] for e in revoked) == sorted([active["binding_id"], pending["binding_id"]])
    assert {e.target for e in revoked} == {ext} and {e.detail["import"] for e in revoked} == {report["import_id"]}
    assert {e.detail["was"] for e in revoked} == {"active", "pending_consent"}

    with ctx.db() as db:
        rec = db.scalar(select(Beneficiary).where(Beneficiary.external_id == ext))
        assert rec is not None
        # The old person's certification no longer counts: dated as a newly imported person (cycle start + grace).
        grace = dt.timedelta(days=ctx.settings.cycle.new_import_grace_days)
        assert (rec.valid_until, rec.last_certified_on) == (local_today(ctx.settings) + grace, None)
        (alert,) = db.scalars(select(ConsoleAlert).where(ConsoleAlert.kind == KIND)).all()
        (imported,) = db.scalars(select(AuditEntry).where(AuditEntry.action == "roster.import")).all()
        assert alert.beneficiary_id == rec.id and not alert.resolved
        assert alert.detail == {
            "from": mask_id(number),
            "to": mask_id(other),
            "name_changed": True,
            "import": report["import_id"],
            "actor": imported.actor,
        }

    # The child binding the record's new person needs that person's own consent: the old one's is not carried.
    again = bind(client, child, other, new_name)
    assert again.status_code == 201 and again.json()["status"] == "pending_consent"
    # The same file again changes nothing: no second alert, nothing more revoked.
    assert import_roster(client, roster_csv(ext, other, new_name))["identity_changed"] == 0
    with ctx.db() as db:
        assert len(db.scalars(select(ConsoleAlert).where(ConsoleAlert.kind == KIND)).all()) == 1
    assert len(_actions(ctx, "proxy.binding.revoked")) == 2


def _age(ctx: ServiceContext, binding_id: str, days: float) -> None:
    with ctx.db() as db:
        row = db.get(ProxyBinding, binding_id)
        assert row is not None
        row.created_at = utcnow() - dt.timedelta(days=days)


def test_a_binding_waiting_for_consent_expires_in_the_daily_upkeep(client: TestClient, ctx: ServiceContext) -> None:
    _, number, name = new_elder(ctx)
    op, young_op = verified_operator(client, ctx), verified_operator(client, ctx)
    old = bind(client, op, number, name).json()
    young = bind(client, young_op, number, name).json()
    _age(ctx, old["binding_id"], 14.1)
    _age(ctx, young["binding_id"], 13)

    assert storage_upkeep(ctx)["proxy_bindings_expired"] == 1
    seen = listed_bindings(client, op)[old["binding_id"]]
    assert seen["status"] == "expired" and seen["ended_at"]
    assert listed_bindings(client, young_op)[young["binding_id"]]["status"] == "pending_consent"
    (entry,) = _actions(ctx, "proxy.binding.expired")
    assert entry.actor == "system" and entry.detail["binding"] == old["binding_id"]
    assert storage_upkeep(ctx)["proxy_bindings_expired"] == 0  # idempotent

    r = staff_consent(client, old["binding_id"])
    assert r.status_code == 409 and r.json()["error"]["code"] == "PROXY_CONSENT_EXPIRED"
    assert r.json()["error"]["message"] == "老人未在规定期限内确认绑定,该绑定已失效,请重新绑定"
    r = client.post(f"{P}/bindings/{old['binding_id']}/consent", json={}, headers=bearer(op["token"]))
    assert r.status_code == 409 and r.json()["error"]["code"] == "PROXY_CONSENT_EXPIRED"
    assert staff_consent(client, young["binding_id"]).json()["status"] == "active"  # within the window
    # The relative may bind again.
    r = bind(client, op, number, name)
    assert r.status_code == 201 and r.json()["status"] == "pending_consent"


def test_a_consent_after_the_window_is_refused_before_the_upkeep_runs(
    client: TestClient, ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PENSION_CERT_PROXY_PENDING_CONSENT_DAYS", "3")
    _, number, name = new_elder(ctx)
    op, video_op = verified_operator(client, ctx), verified_operator(client, ctx)
    late = bind(client, op, number, name).json()
    by_video = bind(client, video_op, number, name).json()
    _age(ctx, late["binding_id"], 3.5)
    _age(ctx, by_video["binding_id"], 3.5)

    # Opening the elder's consent video is refused, and so is the staff's approval (which expires the binding).
    r = client.post(f"{P}/bindings/{late['binding_id']}/consent", json={}, headers=bearer(op["token"]))
    assert r.status_code == 409 and r.json()["error"]["code"] == "PROXY_CONSENT_EXPIRED"
    r = staff_consent(client, late["binding_id"])
    assert r.status_code == 409 and r.json()["error"]["code"] == "PROXY_CONSENT_EXPIRED"
    assert listed_bindings(client, op)[late["binding_id"]]["status"] == "expired"
    # A consent video decided after the window (opened in time, decided late) records nothing either.
    with ctx.db() as db:
        row = db.get(ProxyBinding, by_video["binding_id"])
        assert row is not None
        assert record_consent(db, row, ConsentMethod.LIVE_VIDEO, "session-1", "operator:x") == "PROXY_CONSENT_EXPIRED"
        assert (row.status, row.consent_at) == ("expired", None)
    refused = _actions(ctx, "proxy.consent.refused")
    assert [e.detail["reason"] for e in refused] == ["PROXY_CONSENT_EXPIRED", "PROXY_CONSENT_EXPIRED"]


def test_the_new_persons_first_proxy_certification_goes_to_staff(client: TestClient, ctx: ServiceContext) -> None:
    """After a roster change of the record's ID number, the record's new person had never been certified by proxy,
    yet a proxy certification accepted for the previous person (its binding now revoked) counted as their first:
    the new person's first proxy certification could be accepted by the machine. Revoked bindings are the previous
    person's here too, as for the history and the kinship rule."""
    ext, number, name = new_elder(ctx)
    child = verified_operator(client, ctx)
    old = active_binding(client, child, number, name)
    s = client.post(f"{P}/bindings/{old['binding_id']}/sessions", headers=bearer(child["token"])).json()
    factories.update(ctx, CertSession, s["session_id"], state="decided", decision="accept", decided_at=utcnow())
    other, new_name = factories.id_number(birth=dt.date(1941, 2, 3)), "李秀珍"
    assert import_roster(client, roster_csv(ext, other, new_name))["identity_changed"] == 1

    relative = verified_operator(client, ctx)
    theirs = active_binding(client, relative, other, new_name)
    new = client.post(f"{P}/bindings/{theirs['binding_id']}/sessions", headers=bearer(relative["token"])).json()
    with ctx.db() as db:
        rec = db.scalar(select(Beneficiary).where(Beneficiary.external_id == ext))
        assert rec is not None
        assert first_proxy_certification(db, rec.id, new["session_id"])
        # Without the roster change the earlier acceptance counts (the rule itself is unchanged).
        factories.update(ctx, ProxyBinding, old["binding_id"], status="ended")
        assert not first_proxy_certification(db, rec.id, new["session_id"])


def test_a_revoked_binding_shows_nothing_of_the_records_new_person(client: TestClient, ctx: ServiceContext) -> None:
    """The binding list showed a revoked binding with the record's current name and masked number: after the roster
    gave the record to another person, the previous person's relatives (and strangers who had bound them) read the
    new person's name, number and death. Now the view shows the person the binding was made for, as the
    revocation recorded them (their masked number; their name where the change kept it)."""
    ext, number, name = new_elder(ctx)
    child = verified_operator(client, ctx)
    b = active_binding(client, child, number, name)
    other, new_name = factories.id_number(birth=dt.date(1941, 2, 3)), "李秀珍"
    assert import_roster(client, roster_csv(ext, other, new_name))["identity_changed"] == 1
    with ctx.db() as db:  # the new person is reported dead
        record = db.scalar(select(Beneficiary).where(Beneficiary.external_id == ext))
        assert record is not None
        record.status = "deceased"
    r = client.get(f"{P}/bindings", headers=bearer(child["token"]))
    seen = {x["binding_id"]: x for x in r.json()}[b["binding_id"]]
    assert (seen["status"], seen["elder_id_masked"], seen["elder_name"]) == ("revoked", mask_id(number), "")
    assert seen["elder_deceased"] is False
    assert new_name not in r.text and mask_id(other) not in r.text
    # A change that kept the name (a typo in the number corrected): the name is still the binding's person's.
    ext2, number2, name2 = new_elder(ctx, name="赵玉兰")
    b2 = active_binding(client, child, number2, name2)
    changed = roster_csv(ext2, factories.id_number(birth=dt.date(1941, 2, 4)), name2)
    assert import_roster(client, changed)["identity_changed"]
    seen = listed_bindings(client, child)[b2["binding_id"]]
    assert (seen["status"], seen["elder_id_masked"], seen["elder_name"]) == ("revoked", mask_id(number2), name2)


def test_every_binding_status_reads_in_chinese_and_an_ended_one_says_to_bind_again(
    client: TestClient, ctx: ServiceContext
) -> None:
    """The family page printed the status code itself for an expired or revoked binding ("· expired") with an
    unbind control that answered "尚未绑定该亲属": the view now carries what the relative reads (`status_zh`) and
    whether the binding has ended (`ended`, models.ENDED_STATUSES), for every status."""
    op = verified_operator(client, ctx)
    ids = {}
    for status in BindingStatus:
        _, number, name = new_elder(ctx)
        ids[status] = bind(client, op, number, name).json()["binding_id"]
        ended = {"ended_at": utcnow()} if status.value in ENDED_STATUSES else {}  # an ended one holds no active slot
        factories.update(ctx, ProxyBinding, ids[status], status=status.value, **ended)
    listed = listed_bindings(client, op)
    for status, binding_id in ids.items():
        seen = listed[binding_id]
        assert not re.search(r"[A-Za-z]", seen["status_zh"]), seen
        assert seen["ended"] is (status.value in ENDED_STATUSES), seen
    for lapsed in (BindingStatus.EXPIRED, BindingStatus.REVOKED):
        assert "重新绑定" in listed[ids[lapsed]]["status_zh"]


def test_a_relative_recorded_deceased_gives_back_the_elders_slot_in_the_daily_upkeep(ctx: ServiceContext) -> None:
    """The elder consented to two relatives (the most allowed): her husband, himself a pensioner here, and her son.
    He dies. Before: his binding stayed active until the elder or staff ended it, so a consent to her daughter was
    refused PROXY_LIMIT_REACHED, and whoever kept his phone could certify for her. Now the daily upkeep ends it
    (audited), and the daughter's consent is recorded; the son's binding is untouched."""
    today = local_today(ctx.settings)
    hers, his = factories.id_number(region="110105", seq=511), factories.id_number(region="110105", seq=512)
    with ctx.db() as db:
        elder = factories.beneficiary(db, ctx.keyring, id_number=hers)
        husband = factories.beneficiary(db, ctx.keyring, id_number=his)
        elder_id, elder_ext, husband_id = elder.id, elder.external_id, husband.id
        ids: dict[str, str] = {}
        for who, number in (("husband", his), ("son", factories.id_number()), ("daughter", factories.id_number())):
            op, row = factories.relative_binding(db, elder_id, status=BindingStatus.PENDING_CONSENT)
            mark_verified(op, ctx.keyring.id_hash(number), mask_id(number), who)
            ids[who] = row.id
        for who in ("husband", "son"):
            consented = db.get(ProxyBinding, ids[who])
            assert consented is not None
            assert record_consent(db, consented, ConsentMethod.STAFF_APPROVAL, "s0", "test") is None
        daughter = db.get(ProxyBinding, ids["daughter"])
        assert daughter is not None
        assert record_consent(db, daughter, ConsentMethod.STAFF_APPROVAL, "s0", "test") == "PROXY_LIMIT_REACHED"
    with ctx.db() as db:
        dead = db.get(Beneficiary, husband_id)
        assert dead is not None and record_death(db, dead, today, today) is not None
    assert storage_upkeep(ctx)["proxy_bindings_of_the_deceased"] == 1
    assert storage_upkeep(ctx)["proxy_bindings_of_the_deceased"] == 0  # once
    with ctx.db() as db:
        rows = {row.id: row.status for row in db.scalars(select(ProxyBinding).where(ProxyBinding.id.in_(ids.values())))}
        status = {who: str(rows[bid]) for who, bid in ids.items()}
        assert status == {"husband": "ended", "son": "active", "daughter": "pending_consent"}
        daughter = db.get(ProxyBinding, ids["daughter"])
        assert daughter is not None
        assert record_consent(db, daughter, ConsentMethod.STAFF_APPROVAL, "s1", "test") is None
    (entry,) = _actions(ctx, "proxy.binding.relative_deceased")
    assert (entry.actor, entry.target, entry.detail["binding"]) == ("system", elder_ext, ids["husband"])
