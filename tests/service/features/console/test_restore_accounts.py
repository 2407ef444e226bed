"""Staff account changes after the last dump, and a restore from it (the auditor's review, F5): an admin disabled a
dismissed reviewer, lowered a supervisor, narrowed a reviewer's scope and reset a password after the dump. Before:
the restore brought every one back as it was, `record-restore` redid withdrawals only, and the chain's log line named
no account. Now each change is kept in the media store (account_kept.py) and the ones that took rights away are
redone by `pension-cert console record-restore`; a grant (enable) is listed, never redone. A real SQLite file is
copied back over the database, as tests/service/test_restore_withdrawals.py does."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console.auth import LoginError, authenticate
from service.features.console.models import StaffUser
from tests.service.features.console.conftest import PASSWORD, _hash, csrf_of, login

NEW_PASSWORD = "another-horse-battery-9"


def _context(tmp_path: Path) -> ServiceContext:
    import service.schema
    from service.features.install import install_features
    from service.infra.config import Settings

    return install_features(ServiceContext(Settings(var_dir=tmp_path), schema=service.schema.metadata))


def _own_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ServiceContext:
    """A service on its own SQLite file in `tmp_path`, as the CLI in this process reads it: the tests' other
    PENSION_CERT_ settings cleared (the models and data folders kept)."""
    for k in [k for k in os.environ if k.startswith("PENSION_CERT_")]:
        if k not in ("PENSION_CERT_MODELS_DIR", "PENSION_CERT_DATA_DIR"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("PENSION_CERT_VAR_DIR", str(tmp_path))
    return _context(tmp_path)


def _changes_after_the_dump(ctx: ServiceContext) -> None:
    """What the admin did on the users page after the dump."""
    from service.adapters.http.app import create_app

    with ctx.db() as db:
        ids = {u.username: u.id for u in db.scalars(select(StaffUser))}
    with TestClient(create_app(ctx=ctx)) as c:
        csrf = login(c, "admin")
        for user, form in (
            ("rev1", {"op": "disable"}),
            ("sup1", {"op": "role", "role": "reviewer"}),
            ("rev2", {"op": "scope", "scope": "420106"}),
            ("rev3", {"op": "password", "password": NEW_PASSWORD}),
            ("old1", {"op": "enable"}),
        ):
            r = c.post(f"/console/users/{ids[user]}", data=form | {"csrf": csrf}, follow_redirects=False)
            assert r.status_code == 303, (user, r.text[:300])


def test_account_changes_after_the_dump_are_redone_by_record_restore(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from service.adapters.cli import main

    ctx = _own_service(tmp_path, monkeypatch)
    with ctx.db() as db:
        for name, role, scope, active in (
            ("admin", "admin", [], True),
            ("rev1", "reviewer", [], True),
            ("sup1", "supervisor", [], True),
            ("rev2", "reviewer", ["4201"], True),
            ("rev3", "reviewer", [], True),
            ("old1", "reviewer", [], False),
        ):
            db.add(
                StaffUser(
                    username=name, display_name=name, role=role, password_hash=_hash(), scope=scope, active=active
                )
            )
    ctx.engine.dispose()
    shutil.copy(tmp_path / "pension_cert.db", tmp_path / "dump.db")  # last night's backup
    ctx = _context(tmp_path)
    caplog.set_level(logging.INFO, logger="service.features.console.audit")
    _changes_after_the_dump(ctx)
    ctx.engine.dispose()
    logged = [r.getMessage() for r in caplog.records if "console audit" in r.getMessage()]
    # The runbook's "redo from the logs" can be followed: the line names the account and the change.
    assert any("user.disable rev1" in m for m in logged), logged
    assert any('user.role sup1 {"from": "supervisor", "role": "reviewer"}' in m for m in logged), logged
    shutil.copy(tmp_path / "dump.db", tmp_path / "pension_cert.db")  # the restore

    assert main(["console", "record-restore", "--reason", "磁盘故障，恢复前一晚的备份"]) == 0
    out = json.loads(capsys.readouterr().out)
    redone = sorted((w["kind"], w["target"]) for w in out["withdrawals_redone"])  # in time order: the same second here
    assert redone == [
        ("user.disable", "rev1"),
        ("user.password", "rev3"),
        ("user.role", "sup1"),
        ("user.scope", "rev2"),
    ]
    assert [(w["kind"], w["target"]) for w in out["account_changes_left"]] == [("user.enable", "old1")]
    assert out["audit_entries_through"] == 0
    ctx = _context(tmp_path)
    try:
        with ctx.db() as db:
            users = {u.username: u for u in db.scalars(select(StaffUser))}
            assert users["rev1"].active is False
            with pytest.raises(LoginError):  # the dismissed reviewer stays out
                authenticate(db, "rev1", PASSWORD)
            assert users["sup1"].role == "reviewer"
            assert users["rev2"].scope == ["420106"]
            assert users["old1"].active is False  # a grant: an admin decides again
            assert authenticate(db, "rev3", NEW_PASSWORD).must_change_password
            entries = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.actor == "cli:restore")).all()
            assert sorted((e.action, e.target, e.detail["via"]) for e in entries) == [
                (kind, target, "restore") for kind, target in redone
            ]
            [restored] = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "audit.restored"))
            assert (restored.detail["withdrawals_redone"], restored.detail["account_changes_left"]) == (4, 1)
    finally:
        ctx.engine.dispose()
    assert main(["console", "record-restore", "--reason", "磁盘故障，恢复前一晚的备份"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["withdrawals_redone"] == [] and len(again["account_changes_left"]) == 1  # nothing done twice


def _restorable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, users: dict[str, list[str]]) -> ServiceContext:
    """A service on its own SQLite file with an admin and reviewers `users` (name: scope), dumped to dump.db."""
    ctx = _own_service(tmp_path, monkeypatch)
    with ctx.db() as db:
        db.add(StaffUser(username="admin", display_name="admin", role="admin", password_hash=_hash(), scope=[]))
        for name, scope in users.items():
            db.add(StaffUser(username=name, display_name=name, role="reviewer", password_hash=_hash(), scope=scope))
    ctx.engine.dispose()
    shutil.copy(tmp_path / "pension_cert.db", tmp_path / "dump.db")
    return _context(tmp_path)


def _admin_does(ctx: ServiceContext, user: str, *forms: dict[str, str]) -> None:
    from service.adapters.http.app import create_app

    with ctx.db() as db:
        uid = db.scalar(select(StaffUser.id).where(StaffUser.username == user))
    with TestClient(create_app(ctx=ctx)) as c:
        csrf = login(c, "admin")
        for form in forms:
            r = c.post(f"/console/users/{uid}", data=form | {"csrf": csrf}, follow_redirects=False)
            assert r.status_code == 303, r.text[:300]


def _restored(tmp_path: Path, ctx: ServiceContext) -> ServiceContext:
    ctx.engine.dispose()
    shutil.copy(tmp_path / "dump.db", tmp_path / "pension_cert.db")
    return _context(tmp_path)


def test_record_restore_after_reopening_leaves_an_admins_newer_change_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The new-surfaces review, F1: `record-restore` run after the service reopened (runbook step 5, `--through`).
    Before the crash the admin reset rev3's password and narrowed their scope to 4201; after the restore and the
    reopening, the admin reset it again and moved rev3 to 4202. Before: both older changes were redone over the newer
    ones (the older password worked again, rev3 saw 4201 again) and nothing was listed. Now the newer changes the
    database holds stand, and the older ones are listed as not redone."""
    from service.adapters.cli import main
    from service.infra import clock

    crash = clock.now_utc()
    monkeypatch.setattr(clock, "now_utc", lambda: crash)
    ctx = _restorable(tmp_path, monkeypatch, {"rev3": ["4201", "4202"]})
    _admin_does(ctx, "rev3", {"op": "password", "password": "first-reset-horse-11"}, {"op": "scope", "scope": "4201"})
    ctx = _restored(tmp_path, ctx)
    monkeypatch.setattr(clock, "now_utc", lambda: crash + dt.timedelta(hours=2))  # reopened, the admin at work
    _admin_does(ctx, "rev3", {"op": "password", "password": NEW_PASSWORD}, {"op": "scope", "scope": "4202"})
    ctx.engine.dispose()

    assert main(["console", "record-restore", "--reason", "恢复后已开放", "--through", "0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["withdrawals_redone"] == []
    left = sorted((w["kind"], w["target"], w["why"]) for w in out["account_changes_left"])  # the same second
    assert left == [("user.password", "rev3", "newer_change"), ("user.scope", "rev3", "newer_change")]
    ctx = _context(tmp_path)
    try:
        with ctx.db() as db:
            assert db.scalar(select(StaffUser.scope).where(StaffUser.username == "rev3")) == ["4202"]
            assert authenticate(db, "rev3", NEW_PASSWORD)
            with pytest.raises(LoginError):
                authenticate(db, "rev3", "first-reset-horse-11")
    finally:
        ctx.engine.dispose()


def test_a_narrowing_redone_after_a_restore_gives_no_district_the_account_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The new-surfaces review, F2: after the dump the admin moved rev2 from 4202 to 4201 in two steps (4201 added, a
    grant; then 4202 taken away, a narrowing). Before: the narrowing was redone by setting its target scope whole, so
    rev2 saw 4201, the grant held back for an admin. Now it takes away only 4202; that leaves rev2 no district (the
    empty scope is the whole jurisdiction), so the account is disabled instead, and both changes are listed. The
    clock steps 0.7 s a reading: the two changes fall in different seconds of the kept records' times (the
    narrowing's redo counted as newer than the grant then, listing it `newer_change`: one CI run in a few)."""
    import itertools

    from service.adapters.cli import main
    from service.infra import clock

    ctx = _restorable(tmp_path, monkeypatch, {"rev2": ["4202"]})
    start, ticks = clock.now_utc(), itertools.count()
    monkeypatch.setattr(clock, "now_utc", lambda: start + dt.timedelta(milliseconds=700 * next(ticks)))
    _admin_does(ctx, "rev2", {"op": "scope", "scope": "4201 4202"}, {"op": "scope", "scope": "4201"})
    ctx = _restored(tmp_path, ctx)
    ctx.engine.dispose()

    assert main(["console", "record-restore", "--reason", "磁盘故障"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(w["kind"], w["target"]) for w in out["withdrawals_redone"]] == [("user.scope", "rev2")]
    left = sorted((w["kind"], w["target"], w["why"]) for w in out["account_changes_left"])
    assert left == [("user.scope", "rev2", "grant"), ("user.scope", "rev2", "scope_emptied")]
    ctx = _context(tmp_path)
    try:
        with ctx.db() as db:
            rev2 = db.scalar(select(StaffUser).where(StaffUser.username == "rev2"))
            assert rev2 is not None and rev2.scope == ["4202"] and rev2.active is False
            with pytest.raises(LoginError):
                authenticate(db, "rev2", PASSWORD)
    finally:
        ctx.engine.dispose()
    assert main(["console", "record-restore", "--reason", "磁盘故障"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["withdrawals_redone"] == [] and len(again["account_changes_left"]) == 2  # nothing done twice


def _dump_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, users: dict[str, tuple[str, bool]]) -> ServiceContext:
    """A service on its own SQLite file with an admin, a confirmed supervisor sup1 and `users` (name: role, whether it
    awaits confirmation of the admin's grant), dumped to dump.db."""
    ctx = _own_service(tmp_path, monkeypatch)
    with ctx.db() as db:
        admin = StaffUser(username="admin", display_name="admin", role="admin", password_hash=_hash(), scope=[])
        db.add(admin)
        db.add(StaffUser(username="sup1", display_name="sup1", role="supervisor", password_hash=_hash(), scope=[]))
        db.flush()
        for name, (role, awaiting) in users.items():
            granted = admin.id if awaiting else None
            db.add(StaffUser(username=name, display_name=name, role=role, password_hash=_hash(), granted_by=granted))
    ctx.engine.dispose()
    shutil.copy(tmp_path / "pension_cert.db", tmp_path / "dump.db")
    return _context(tmp_path)


def _confirm(ctx: ServiceContext, user: str) -> None:
    """sup1 confirms `user`'s grant on the alerts page (待确认的账号), as that page's form posts it."""
    import re

    from service.adapters.http.app import create_app

    with ctx.db() as db:
        uid = db.scalar(select(StaffUser.id).where(StaffUser.username == user))
    with TestClient(create_app(ctx=ctx)) as c:
        csrf = login(c, "sup1")
        grant = re.search(rf'/users/{uid}/confirm".*?name="grant" value="(\d+)"', c.get("/console/alerts").text, re.S)
        assert grant is not None
        r = c.post(f"/console/users/{uid}/confirm", data={"csrf": csrf, "grant": grant[1]}, follow_redirects=False)
        assert r.status_code == 303, r.text[:300]


def _left(out: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted((w["kind"], w["target"], w["why"]) for w in out["account_changes_left"])


def test_an_account_created_or_confirmed_after_the_dump_is_listed_for_an_admin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Part CO "Left": after the dump an admin created reviewer rev9 and sup1 confirmed sup9 (an account the admin
    had made). Before: neither was kept, `record-restore` said nothing of them, and the runbook's "staff accounts
    created after the dump" could only be found in the logs: the new reviewer could not log in and nobody was told.
    A creation and a confirmation are grants, never redone on their own (Part BK): each is now kept and listed,
    saying what an admin or a supervisor does by hand; the restored database keeps sup9 awaiting confirmation."""
    from service.adapters.cli import main

    ctx = _dump_with(tmp_path, monkeypatch, {"sup9": ("supervisor", True)})  # sup9 awaits confirmation
    _confirm(ctx, "sup9")
    from service.adapters.http.app import create_app

    with TestClient(create_app(ctx=ctx)) as c:
        form = {"username": "rev9", "password": "handed-over-1234", "role": "reviewer", "scope": "4201"}
        assert c.post("/console/users", data=form | {"csrf": login(c, "admin")}).status_code == 200
    ctx = _restored(tmp_path, ctx)
    ctx.engine.dispose()

    for _run in range(2):  # a rerun lists them again, and still redoes nothing
        assert main(["console", "record-restore", "--reason", "磁盘故障"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["withdrawals_redone"] == []
        assert _left(out) == [("user.confirm", "sup9", "grant"), ("user.create", "rev9", "account_missing")]
        todo = {w["kind"]: w["todo"] for w in out["account_changes_left"]}
        assert "/console/users" in todo["user.create"] and "reviewer" in todo["user.create"], todo
        assert "4201" in todo["user.create"] and "/console/alerts" in todo["user.confirm"], todo
    ctx = _context(tmp_path)
    try:
        with ctx.db() as db:
            users = {u.username: u for u in db.scalars(select(StaffUser))}
            assert "rev9" not in users and users["sup9"].granted_by == users["admin"].id  # nothing granted
    finally:
        ctx.engine.dispose()


def test_a_reset_redone_after_a_restore_awaits_confirmation_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """After the dump an admin reset rev3's password (so rev3 awaits another supervisor's confirmation: the admin knew
    it), rev3 set their own, and sup1 confirmed rev3. Before: `record-restore` redid both passwords but not the
    mark of the admin's reset, so rev3 came back confirmed, on a password chain the admin had held, and the lost
    confirmation was not listed. Now the redone reset marks the account as the reset did (`granted_by`: the
    admin) and the confirmation is listed for a supervisor to give again."""
    from service.adapters.cli import main
    from service.adapters.http.app import create_app
    from service.infra import clock

    crash = clock.now_utc()
    ctx = _dump_with(tmp_path, monkeypatch, {"rev3": ("reviewer", False)})
    monkeypatch.setattr(clock, "now_utc", lambda: crash + dt.timedelta(minutes=1))
    _admin_does(ctx, "rev3", {"op": "password", "password": "handed-over-1234"})
    monkeypatch.setattr(clock, "now_utc", lambda: crash + dt.timedelta(minutes=2))
    with TestClient(create_app(ctx=ctx)) as c:  # the first login asks for a password of rev3's own
        form = {"username": "rev3", "password": "handed-over-1234", "csrf": csrf_of(c.get("/console/login").text)}
        change = {"current": "handed-over-1234", "new": NEW_PASSWORD, "confirm": NEW_PASSWORD}
        landed = c.post("/console/login", data=form)
        assert c.post("/console/password", data=change | {"csrf": csrf_of(landed.text)}).status_code == 200
    monkeypatch.setattr(clock, "now_utc", lambda: crash + dt.timedelta(minutes=3))
    _confirm(ctx, "rev3")
    ctx = _restored(tmp_path, ctx)
    ctx.engine.dispose()

    assert main(["console", "record-restore", "--reason", "磁盘故障"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [w["kind"] for w in out["withdrawals_redone"]] == ["user.password", "user.password.self"]
    assert _left(out) == [("user.confirm", "rev3", "grant")]
    ctx = _context(tmp_path)
    try:
        with ctx.db() as db:
            admin_id = db.scalar(select(StaffUser.id).where(StaffUser.username == "admin"))
            assert authenticate(db, "rev3", NEW_PASSWORD).granted_by == admin_id
    finally:
        ctx.engine.dispose()


def test_a_kept_password_outlives_the_orphan_sweep_and_a_media_key_rotation(
    ctx: ServiceContext, app_client: TestClient, staff_users: dict[str, int]
) -> None:
    """Where a reset's new hash is kept (review of Parts CO and CS, F3: "a hash is not media"): under
    `audit/withdrawals/`, beside the anchors, the one store a restore does not reach. No retention step deletes it
    (the purge deletes a session's own keys, the orphan sweep lists `sessions/` only) and `pension-cert rekey`
    seals it anew with the new media key, so that `record-restore` reads it with the current key alone."""
    from service.certification.retention import sweep_orphans
    from service.certification.withdrawal_records import read_withdrawals
    from service.infra.clock import now_utc
    from service.infra.storage import LocalEncryptedStorage
    from tests.service.test_key_rotation import rekey, rotate

    form = {"op": "password", "password": NEW_PASSWORD, "csrf": login(app_client, "admin")}
    r = app_client.post(f"/console/users/{staff_users['rev1']}", data=form, follow_redirects=False)
    assert r.status_code == 303
    sweep_orphans(ctx, now=(now_utc() + dt.timedelta(days=3650)).replace(tzinfo=None))
    _old, new = rotate(ctx)
    rekey(ctx)
    [kept] = [w for w in read_withdrawals(LocalEncryptedStorage(ctx.settings.effective_media_dir, new)) if w.value]
    with ctx.db() as db:
        rev1 = db.get_one(StaffUser, staff_users["rev1"])
        assert (kept.kind, kept.ref, json.loads(kept.value)["hash"]) == ("user.password", "rev1", rev1.password_hash)


@pytest.mark.parametrize(
    ("now", "before", "after", "redone"),
    [
        (["4201", "4202", "4203"], ["4201", "4202"], ["4201"], ["4201", "4203"]),  # 4203: not the change's
        (["4202"], ["4201", "4202"], ["4201"], []),  # nothing left: never [], the whole jurisdiction
        (["4201"], ["4201", "4202"], ["4201"], ["4201"]),  # nothing to take away
        (["42"], ["42"], ["4201"], ["4201"]),
        ([], ["4201", "4202"], ["4201"], ["4201"]),  # the whole jurisdiction: cut to what the change left
        (["4201"], [], ["420106"], ["420106"]),
    ],
)
def test_a_narrowing_takes_away_only_what_it_took(
    now: list[str], before: list[str], after: list[str], redone: list[str]
) -> None:
    from service.features.console.account_kept import _narrowed

    assert _narrowed(now, before, after) == redone
