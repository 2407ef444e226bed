"""Evidence holds (service/certification/evidence_hold.py): the media of a session revoked as 冒领 or under
investigation are kept from the retention purge until the hold ends or a supervisor releases it; then the next
purge deletes them. Before: the daily purge deleted every final session's card and video `RETENTION_DAYS` after the
decision, the evidence of a revoked certification included, and staff had no way to keep a suspect session's."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time

import pytest
from sqlalchemy import ColumnElement, event, false, func, select

from service.certification import retention
from service.certification.context import ServiceContext
from service.certification.errors import ServiceError
from service.certification.evidence_hold import (
    PLACED,
    RELEASE_ASK_DAYS,
    RELEASED,
    Evidence,
    holds_in_force,
    place_hold,
    release_hold,
)
from service.certification.models import AuditEntry, Certification, CertSession, EvidenceHold, media_held, utcnow
from service.certification.processing import accept_session
from service.certification.rekey import reseal_media
from service.certification.retention import purge_media, sweep_orphans
from service.certification.revocation import Revoked, revoke_certification
from service.infra.clock import local_today
from service.infra.security import Keyring
from service.infra.storage import LocalEncryptedStorage
from tests.service import factories
from tests.service.test_races import pg_ctx, started  # noqa: F401  (the two-transaction PostgreSQL context)

NUMBER = "370102195003140011"  # an ID number typed into a note: masked wherever it is kept


def _accepted(ctx: ServiceContext, days_ago: int) -> tuple[str, int, list[str]]:
    """A self-service certification decided `days_ago` days ago with its card and video stored: (session id,
    certification id, media keys)."""
    decided = utcnow() - dt.timedelta(days=days_ago)
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        s = factories.session_row(b.id, state="decided", decision="accept", decided_at=decided)
        keys = [f"sessions/{s.id}/id_card", f"sessions/{s.id}/video"]
        for key in keys:
            ctx.storage.put(key, b"media " + key.encode())
        s.id_card_key, s.video_key = keys
        db.add(s)
        db.flush()
        accept_session(db, ctx, s, b, local_today(ctx.settings) - dt.timedelta(days=days_ago), None)
        cid = db.scalars(select(Certification.id).where(Certification.session_id == s.id)).one()
        return s.id, cid, keys


def _past_retention(ctx: ServiceContext) -> int:
    return ctx.settings.storage.retention_days + 5


def _revoke(ctx: ServiceContext, cid: int, reason: str = "impersonation") -> Revoked:
    with ctx.db() as db:
        note = f"家属冒领，身份证 {NUMBER}"
        days = ctx.settings.storage.evidence_hold_days
        return revoke_certification(db, ctx.rules, cid, reason, note, "staff:sup1", hold_days=days)


def _purged(ctx: ServiceContext, sid: str) -> bool:
    return factories.update(ctx, CertSession, sid).media_purged_at is not None


def _entries(ctx: ServiceContext, action: str) -> list[AuditEntry]:
    with ctx.db() as db:
        return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)).all())


def test_a_revocation_as_impersonation_keeps_the_evidence_past_retention(ctx: ServiceContext) -> None:
    sid, cid, keys = _accepted(ctx, _past_retention(ctx))
    done = _revoke(ctx, cid)
    assert done.evidence is Evidence.HELD
    purge_media(ctx)
    assert not _purged(ctx, sid) and all(ctx.storage.exists(k) for k in keys)
    (entry,) = [e for e in _entries(ctx, PLACED) if e.detail["session"] == sid]
    assert entry.actor == "staff:sup1" and entry.detail["reason"] == "revoked"
    assert NUMBER not in str(entry.detail) and NUMBER[:4] in entry.detail["note"]
    with ctx.db() as db:
        hold = db.scalars(select(EvidenceHold).where(EvidenceHold.session_id == sid)).one()
        assert NUMBER not in hold.note and hold.placed_by == "staff:sup1"
    revoked = [e for e in _entries(ctx, "certification.revoked") if e.detail["certification"] == cid]
    assert revoked[0].detail["evidence"] == "held"
    # The hold over (EVIDENCE_HOLD_DAYS after it was placed): the next run deletes them.
    later = utcnow() + dt.timedelta(days=ctx.settings.storage.evidence_hold_days, hours=1)
    purge_media(ctx, later)
    assert _purged(ctx, sid) and not any(ctx.storage.exists(k) for k in keys)


def test_a_wrong_accept_holds_too_and_another_reason_does_not(ctx: ServiceContext) -> None:
    wrong_sid, wrong_cid, _ = _accepted(ctx, _past_retention(ctx))
    other_sid, other_cid, other_keys = _accepted(ctx, _past_retention(ctx))
    assert _revoke(ctx, wrong_cid, "wrong_accept").evidence is Evidence.HELD
    assert _revoke(ctx, other_cid, "other").evidence is Evidence.NOT_HELD
    purge_media(ctx)
    assert not _purged(ctx, wrong_sid)
    assert _purged(ctx, other_sid) and not any(ctx.storage.exists(k) for k in other_keys)


def test_a_revocation_of_purged_media_says_there_is_nothing_to_hold(ctx: ServiceContext) -> None:
    sid, cid, _ = _accepted(ctx, _past_retention(ctx))
    purge_media(ctx)
    assert _purged(ctx, sid)
    done = _revoke(ctx, cid)
    assert done.evidence is Evidence.PURGED
    revoked = [e for e in _entries(ctx, "certification.revoked") if e.detail["certification"] == cid]
    assert revoked[0].detail["evidence"] == "purged"
    with ctx.db() as db:
        assert not db.scalars(select(EvidenceHold).where(EvidenceHold.session_id == sid)).all()


def test_a_supervisor_holds_a_suspect_session_then_releases_it(ctx: ServiceContext) -> None:
    sid, _cid, keys = _accepted(ctx, _past_retention(ctx))
    days = ctx.settings.storage.evidence_hold_days
    with ctx.db() as db:
        hold_id = place_hold(db, sid, "investigation", f"举报：{NUMBER} 之父已去世", "staff:sup1", "P1", days).id
    purge_media(ctx)
    assert not _purged(ctx, sid) and all(ctx.storage.exists(k) for k in keys)
    (placed,) = [e for e in _entries(ctx, PLACED) if e.detail["hold"] == hold_id]
    assert placed.detail["until"].startswith(str((utcnow() + dt.timedelta(days=days)).date()))
    with ctx.db() as db:
        views = holds_in_force(db, [sid], utcnow())
        assert [v.hold.id for v in views[sid]] == [hold_id] and NUMBER not in views[sid][0].hold.note
        release_hold(db, hold_id, "核实为本人认证", "staff:sup1", "P1", session_ids=[sid])  # asks (Part BC)
        asked = db.get(EvidenceHold, hold_id)
        assert asked is not None and asked.released_at is None
        release_hold(db, hold_id, "核实为本人认证", "staff:sup2", "P1", session_ids=[sid])  # confirms
    (released,) = [e for e in _entries(ctx, RELEASED) if e.detail["hold"] == hold_id]
    assert released.actor == "staff:sup2"
    purge_media(ctx)  # released: the next run deletes them (their retention period is long over)
    assert _purged(ctx, sid) and not any(ctx.storage.exists(k) for k in keys)


def test_retention_counts_from_the_later_of_the_decision_and_the_hold_end(ctx: ServiceContext) -> None:
    days, keep = ctx.settings.storage.evidence_hold_days, ctx.settings.storage.retention_days
    old_sid, _, _ = _accepted(ctx, _past_retention(ctx))  # its retention over: the hold's end decides
    recent_sid, _, _ = _accepted(ctx, 1)  # decided yesterday, its hold run out: its retention decides
    with ctx.db() as db:
        place_hold(db, old_sid, "recovery", "追回待遇", "staff:sup1", old_sid, days)
        run_out = place_hold(db, recent_sid, "recovery", "追回待遇", "staff:sup1", recent_sid, days)
        run_out.placed_at = utcnow() - dt.timedelta(days=days + 1)
        run_out.ends_at = utcnow() - dt.timedelta(days=1)
    purge_media(ctx, utcnow())
    assert not _purged(ctx, old_sid)  # its retention period is over, its hold is not
    assert not _purged(ctx, recent_sid)  # its hold is over, its retention period is not
    purge_media(ctx, utcnow() + dt.timedelta(days=keep))
    assert _purged(ctx, recent_sid) and not _purged(ctx, old_sid)
    purge_media(ctx, utcnow() + dt.timedelta(days=days, hours=1))
    assert _purged(ctx, old_sid)


def test_a_hold_ends_within_its_period_and_its_rows_stay(ctx: ServiceContext) -> None:
    sid, _cid, _keys = _accepted(ctx, 1)
    days = ctx.settings.storage.evidence_hold_days
    with ctx.db() as db:
        hold = place_hold(db, sid, "referral", "移送公安", "staff:sup1", sid, days)
        hold.placed_at = utcnow() - dt.timedelta(days=days, seconds=1)
        hold.ends_at = utcnow() - dt.timedelta(seconds=1)
    with ctx.db() as db:
        assert holds_in_force(db, [sid], utcnow()) == {}
        with pytest.raises(ServiceError) as exc:
            release_hold(db, hold.id, "结案", "staff:sup1", sid)
        assert exc.value.code == "EVIDENCE_HOLD_ENDED"
        assert db.get(EvidenceHold, hold.id) is not None


def test_what_cannot_be_held_is_refused_with_its_reason(ctx: ServiceContext) -> None:
    sid, _cid, _keys = _accepted(ctx, _past_retention(ctx))
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        counter = factories.session_row(b.id, state="decided", decision="accept", decided_at=utcnow(), channel="staff")
        db.add(counter)
    cases = [
        (sid, "whatever", "说明", "EVIDENCE_HOLD_REASON"),
        (sid, "investigation", "  ", "EVIDENCE_HOLD_REASON"),
        (sid, "investigation", "长" * 501, "EVIDENCE_HOLD_REASON"),
        ("no-such-session", "investigation", "说明", "NOT_FOUND"),
        (counter.id, "investigation", "说明", "EVIDENCE_NONE"),
    ]
    for session_id, reason, note, code in cases:
        with pytest.raises(ServiceError) as exc, ctx.db() as db:
            place_hold(db, session_id, reason, note, "staff:sup1", session_id, 180)
        assert exc.value.code == code, (reason, note)
    purge_media(ctx)
    with pytest.raises(ServiceError) as exc, ctx.db() as db:
        place_hold(db, sid, "investigation", "说明", "staff:sup1", sid, 180)
    assert exc.value.code == "EVIDENCE_PURGED"
    with ctx.db() as db:
        assert db.scalar(select(func.count()).select_from(EvidenceHold).where(EvidenceHold.session_id == sid)) == 0


def test_held_media_stay_referenced_and_are_resealed_by_a_key_rotation(ctx: ServiceContext) -> None:
    """The orphan sweep keeps held media (still the session's), and `pension-cert rekey` re-seals them: the
    previous key can go without losing the evidence."""
    sid, cid, keys = _accepted(ctx, _past_retention(ctx))
    _revoke(ctx, cid)
    purge_media(ctx)
    later = utcnow() + dt.timedelta(seconds=ctx.settings.storage.orphan_grace_s + 60)
    sweep_orphans(ctx, now=later)
    assert all(ctx.storage.exists(k) for k in keys)
    old, new = ctx.settings.media_key_bytes, os.urandom(32)
    ctx.keyring = Keyring(new, ctx.settings.security.signing_key, [old])
    ctx.storage = LocalEncryptedStorage(ctx.settings.effective_media_dir, new, [old])
    reseal_media(ctx, 100, True, {"os_user": "test"})
    only_new = LocalEncryptedStorage(ctx.settings.effective_media_dir, new, [])
    assert [only_new.get(k) for k in keys] == [b"media " + k.encode() for k in keys]
    assert not _purged(ctx, sid)


def test_a_hold_the_selection_did_not_see_is_found_once_the_rows_are_locked(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL reads the purge's selection as of the statement's start: a hold committed while it ran, on a row
    it then locked, is not in it (the hold only locks the session's row; nothing re-checks a lock-only row). The
    purge reads the holds again once it holds the rows. Here the selection is made blind to holds."""
    sid, _cid, keys = _accepted(ctx, _past_retention(ctx))
    with ctx.db() as db:
        place_hold(db, sid, "investigation", "涉嫌冒领", "staff:sup1", sid, 180)
    calls: list[int] = []

    def blind_selection(now: dt.datetime) -> ColumnElement[bool]:
        calls.append(len(calls))
        return false() if len(calls) % 2 else media_held(now)  # the 1st, 3rd…: the batch's selection

    monkeypatch.setattr(retention, "media_held", blind_selection)
    assert purge_media(ctx) == 0 and len(calls) == 2
    assert not _purged(ctx, sid) and all(ctx.storage.exists(k) for k in keys)


# PostgreSQL, two transactions at once.


def _hold_then_wait(ctx: ServiceContext, sid: str, go: threading.Event, placed: threading.Event) -> int:
    with ctx.db() as db:
        hold = place_hold(db, sid, "investigation", "涉嫌冒领", "staff:sup1", sid, 180)
        placed.set()
        go.wait(10)
        return hold.id


def test_a_purge_leaves_a_session_being_held_and_then_the_committed_hold(pg_ctx: ServiceContext) -> None:  # noqa: F811
    ctx = pg_ctx
    sid, _cid, keys = _accepted(ctx, _past_retention(ctx))
    go, placed = threading.Event(), threading.Event()
    t, out = started(lambda: _hold_then_wait(ctx, sid, go, placed))
    assert placed.wait(10)
    assert purge_media(ctx) == 0  # the row is locked by the hold being placed: skipped, not waited for
    go.set()
    t.join(10)
    assert isinstance(out[0], int)
    assert purge_media(ctx) == 0 and not _purged(ctx, sid) and all(ctx.storage.exists(k) for k in keys)


def test_a_revocation_during_a_purge_waits_and_says_the_media_went(pg_ctx: ServiceContext) -> None:  # noqa: F811
    """The purge holds the session's row while it deletes the media: the revocation (which locks that row first)
    waits, then finds them deleted and says so instead of recording a hold on nothing."""
    ctx = pg_ctx
    sid, cid, _keys = _accepted(ctx, _past_retention(ctx))
    deleting, go = threading.Event(), threading.Event()
    real_delete = ctx.storage.delete

    def slow_delete(key: str, every_version: bool = True) -> bool:
        deleting.set()
        go.wait(10)
        return real_delete(key, every_version)

    ctx.storage.delete = slow_delete  # type: ignore[method-assign]
    purge, purged = started(lambda: purge_media(ctx))
    assert deleting.wait(10)
    revoke, revoked = started(lambda: _revoke(ctx, cid))
    time.sleep(0.5)
    assert revoked == []  # waiting for the purge's row lock
    go.set()
    purge.join(10)
    revoke.join(10)
    done = revoked[0]
    assert purged == [1] and isinstance(done, Revoked) and done.evidence is Evidence.PURGED
    assert _purged(ctx, sid)
    with ctx.db() as db:
        assert not db.scalars(select(EvidenceHold).where(EvidenceHold.session_id == sid)).all()


def _hold_days_set_to(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch, days: int) -> None:
    """The operator changes PENSION_CERT_EVIDENCE_HOLD_DAYS (and restarts)."""
    storage = ctx.settings.storage.model_copy(update={"evidence_hold_days": days})
    monkeypatch.setattr(ctx, "settings", ctx.settings.model_copy(update={"storage": storage}))


def test_a_hold_keeps_the_end_it_was_placed_with_whatever_the_setting_becomes(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: a hold's end was its placement plus the setting as it stands, so lowering the setting ended the holds
    in force silently (the evidence of an established 冒领 deleted by the next purge, no release audited), and
    raising it kept every earlier hold longer than its audit entry said."""
    days = ctx.settings.storage.evidence_hold_days
    sid, cid, keys = _accepted(ctx, _past_retention(ctx))
    _revoke(ctx, cid)
    _hold_days_set_to(ctx, monkeypatch, 1)  # lowered: a legal value
    assert purge_media(ctx, utcnow() + dt.timedelta(days=2)) == 0
    assert not _purged(ctx, sid) and all(ctx.storage.exists(k) for k in keys)
    assert _entries(ctx, RELEASED) == []
    with ctx.db() as db:
        hold = db.scalars(select(EvidenceHold).where(EvidenceHold.session_id == sid)).one()
        assert hold.ends_at == hold.placed_at + dt.timedelta(days=days)  # stored at placement
        views = holds_in_force(db, [sid], utcnow() + dt.timedelta(days=2))
        assert [v.ends_at for v in views[sid]] == [hold.ends_at]
    (placed,) = _entries(ctx, PLACED)
    assert placed.detail["until"] == hold.ends_at.isoformat(timespec="seconds")
    other_sid, _, _ = _accepted(ctx, _past_retention(ctx))
    with ctx.db() as db:  # the setting sizes the holds placed from now on
        new = place_hold(db, other_sid, "investigation", "涉嫌冒领", "staff:sup1", other_sid, 1)
        assert new.ends_at == new.placed_at + dt.timedelta(days=1)
    _hold_days_set_to(ctx, monkeypatch, 1095)  # raised: an earlier hold is not extended
    purge_media(ctx, hold.ends_at + dt.timedelta(hours=1))
    assert _purged(ctx, sid) and _purged(ctx, other_sid)


def test_the_release_requests_of_a_pages_holds_are_read_once_and_each_found(ctx: ServiceContext) -> None:
    """A person page with several holds read the week's release requests once per hold; one read now serves them
    all, and each hold still shows its own request (and none once a request has lapsed)."""
    sids = [_accepted(ctx, 1)[0] for _ in range(3)]
    days = ctx.settings.storage.evidence_hold_days
    with ctx.db() as db:
        holds = [place_hold(db, sid, "investigation", "举报", "staff:sup1", "P1", days).id for sid in sids]
        release_hold(db, holds[0], "核实为本人认证", "staff:sup1", "P1")
        release_hold(db, holds[2], "已追回待遇", "staff:sup2", "P1")
    with ctx.db() as db:
        statements: list[str] = []

        def count(_c: object, _cur: object, statement: str, *_a: object) -> None:
            if AuditEntry.__tablename__ in statement:
                statements.append(statement)

        event.listen(db.get_bind(), "before_cursor_execute", count)
        try:
            views = holds_in_force(db, sids, utcnow())
        finally:
            event.remove(db.get_bind(), "before_cursor_execute", count)
        asks = {v.hold.id: v.release_asked for sid in sids for v in views[sid]}
        assert len(statements) == 1
        first, none, third = (asks[h] for h in holds)
        assert first is not None and (first.actor, first.note) == ("staff:sup1", "核实为本人认证")
        assert none is None
        assert third is not None and (third.actor, third.note) == ("staff:sup2", "已追回待遇")
        later = holds_in_force(db, sids, utcnow() + dt.timedelta(days=RELEASE_ASK_DAYS + 1))
        assert all(v.release_asked is None for sid in sids for v in later[sid])  # lapsed: the next click asks anew
