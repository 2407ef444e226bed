"""`pension-cert console create-user` (the first admin, or any account), `pension-cert console
verify-audit` (re-check the console audit log's hash chain), `pension-cert console record-restore` (record a
database restore, whose lost entries the anchors still name) and `pension-cert console rewrite-kept` (write a
recorded restore's kept media keys anew when a chunk of them is lost for good)."""

# lazy-imports: each command imports what it runs inside its handler, so --help, `models list` and usage errors
# answer without loading the model runtime or the app (tests/service/adapters/cli/test_cli_imports.py).
from __future__ import annotations

import argparse
import getpass
import os
from typing import TYPE_CHECKING

from service.adapters.cli.common import EXIT_FAILED, EXIT_UNAVAILABLE, CliError, emit, os_user

if TYPE_CHECKING:
    from service.certification.audit_anchor import KeptRewrite
    from service.certification.context import ServiceContext
    from service.infra.storage import StorageError


def _context() -> ServiceContext:
    # Lazy: the database layer (SQLAlchemy) loads only when a console command runs, not to build the parser.
    import service.schema
    from service.adapters.cli.common import load_settings
    from service.certification.context import ServiceContext

    return ServiceContext(load_settings(), schema=service.schema.metadata)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("console", help="staff console administration")
    csub = p.add_subparsers(dest="console_command", required=True)
    c = csub.add_parser(
        "create-user",
        help="create a staff account (password from PENSION_CERT_CONSOLE_PASSWORD or a prompt)",
        # The rule's figures are auth.MIN/MAX_PASSWORD_CHARS and USERNAME_MAX_CHARS (auth.py is too heavy to import
        # for --help; tests/service/adapters/cli/test_first_hour.py holds them equal).
        description="Create a staff account of the console (/console/). The password comes from "
        "PENSION_CERT_CONSOLE_PASSWORD or is typed twice at a prompt, never an argument (it would stay in the shell "
        "history and the process list): 10 to 128 characters, not containing the username, not guessable "
        "(docs/console.md). The first account is the operator's own; any later one must change its password at "
        "its first login. A forgotten password: an admin resets it on the console's users page (/console/users).",
    )
    c.add_argument("--username", required=True, help="login name, 1 to 64 characters (spaces around it dropped)")
    c.add_argument(
        "--role",
        choices=["reviewer", "supervisor", "admin"],
        required=True,
        help="reviewer: decides review cases; supervisor: also imports the roster, handles alerts, reads the audit "
        "log; admin: also manages the accounts",
    )
    c.add_argument("--display-name", default="", help="the name the console shows (optional)")
    c.add_argument(
        "--scope",
        default="",
        help="region scope: division-code prefixes (e.g. '4201 420106'), space or comma separated; "
        "empty: the whole jurisdiction",
    )
    c.set_defaults(func=_create_user)
    v = csub.add_parser("verify-audit", help="verify the console audit log's hash chain")
    v.set_defaults(func=_verify)
    r = csub.add_parser(
        "record-restore",
        help="record that the database was restored from a backup (run before the service reopens)",
        description="After the database was restored from a dump older than the media store, verify-audit reports "
        "the anchors of the entries the restore lost as a cut tail, and the daily run would delete the media of "
        "the sessions it lost. This records the restore (sealed in the media store, and in the audit log): "
        "verify-audit then lists it and checks the rest, and the orphan sweep keeps the media written before it "
        "for RETENTION_DAYS. Refused when an entry up to the restore point differs from its anchor (a restore "
        "does not explain it). Then the withdrawals later than the dump (a face template withdrawn, a binding the "
        "elder ended), kept in the media store, are done again, each audited (docs/operations.md, 'Restoring from "
        "a backup').",
    )
    r.add_argument("--reason", required=True, help="why the database was restored (1 to 200 characters)")
    r.add_argument(
        "--through",
        type=int,
        default=None,
        help="the last entry of the restored dump, when the service has written entries since the restore "
        "(default: the log's last entry)",
    )
    r.set_defaults(func=_restored)
    w = csub.add_parser(
        "rewrite-kept",
        help="write a recorded restore's kept media keys anew when a chunk of them is lost for good",
        description="A chunk of a restore's kept keys that is missing or does not open keeps verify-audit failing "
        "and stops the orphan sweep of session media. Put it back if the bucket keeps an earlier version; if not, "
        "this writes the keys anew on the safe side: the chunks that still read, and every session object no row "
        "refers to now (less those a later restore keeps), for the restore's own keep window. The loss stays in the "
        "record and in the audit log (docs/operations.md, 'Restoring from a backup').",
    )
    w.add_argument("--record", required=True, help="the restore's record, as verify-audit names it")
    w.add_argument("--reason", required=True, help="why the keys are written anew (1 to 200 characters)")
    w.set_defaults(func=_rewrite_kept)


def _create_user(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from service.features.console import account_kept
    from service.features.console.audit_chain import record
    from service.features.console.auth import USERNAME_MAX_CHARS, UsernameError, checked_username, create_user
    from service.features.console.models import StaffUser
    from service.features.console.scope import ScopeError, parse_scope

    # The name as it is stored: checked and looked up as such, before the password is asked for.
    try:
        username = checked_username(args.username)
    except UsernameError:
        raise CliError(f"--username must have 1 to {USERNAME_MAX_CHARS} characters (not only spaces)") from None
    try:
        scope = parse_scope(args.scope)
    except ScopeError as exc:  # checked before the password is asked for
        raise CliError(exc.message) from None

    password = _new_password()
    ctx = _context()
    with ctx.db() as db:
        if db.scalar(select(StaffUser).where(StaffUser.username == username)) is not None:
            raise CliError(
                f"user {username} exists: choose another --username; a forgotten password is reset by an admin on "
                "the console's users page (/console/users)",
                code="USER_EXISTS",
            )
        # The first account is the operator's own. Any later one is someone else's, whose password the operator
        # typed and still knows: its holder replaces it at the first login, as after the console's users page
        # (else the operator could act as that reviewer, the second person of a four-eyes decision included).
        handed_over = db.scalar(select(StaffUser.id).limit(1)) is not None
        try:
            user = create_user(
                db, username, password, args.role, args.display_name, set_by_admin=handed_over, scope=scope
            )
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        detail = {"role": user.role, "scope": scope, "os_user": os_user()}  # who, beyond "the command line"
        # Kept outside the database: a restore from an older dump lists it to be made again (account_kept).
        detail |= account_kept.note_change(db, "user.create", user, {"role": user.role, "scope": scope})
        record(db, "cli", "user.create", user.username, detail)
        emit({"id": user.id, "username": user.username, "role": user.role, "scope": scope})
    return 0


def _new_password() -> str:
    """The new account's password: PENSION_CERT_CONSOLE_PASSWORD, else typed twice on the terminal (blind: a typo
    typed once would make an account whose password nobody knows). Never a command-line argument: it would stay
    in the shell history and the process list."""
    password = os.environ.get("PENSION_CERT_CONSOLE_PASSWORD")  # env: an input of this command, not a setting
    if password:
        return password
    if not _has_terminal():  # getpass would warn (a Python warning with its file and line) and read stdin
        raise CliError(
            "no password: set PENSION_CERT_CONSOLE_PASSWORD, or run the command in a terminal to type it",
            code="PASSWORD_MISSING",
        )
    try:
        password = getpass.getpass("密码 / password: ")
        again = getpass.getpass("再输入一次 / again: ")
    except EOFError:  # Ctrl-D at the prompt
        raise CliError("no password typed: nothing created", code="PASSWORD_MISSING") from None
    if password != again:
        raise CliError("the two passwords typed do not match: nothing created; run it again", code="PASSWORD_MISMATCH")
    return password


def _has_terminal() -> bool:
    """Whether getpass can prompt on the controlling terminal (a script, cron or a pipeline has none)."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def _verify(_args: argparse.Namespace) -> int:
    ctx = _context()  # settings first: a bad setting is reported as such, before anything else loads
    from service.certification.audit_anchor import AnchorCheck
    from service.features.console.audit_chain import check_log

    with ctx.db() as db:
        # The chain alone cannot show a log rewritten whole with every hash recomputed; the anchors kept in the
        # media store (written by the daily run) can: one check, the audit viewer's too (audit_chain.check_log). A
        # store that does not answer is an outage (exit 5), not a failed check (exit 1: the night shift's alarm).
        done = check_log(db, ctx.storage)
    check, anchored = done.chain, done.anchors
    if anchored is None:
        if check.ok:
            raise CliError(
                f"the media store holding the audit anchors does not answer ({done.unavailable}): the chain "
                "verifies, the anchors were not checked; run it again",
                EXIT_UNAVAILABLE,
                code="STORAGE_UNAVAILABLE",
            ) from None
        anchored = AnchorCheck(False, 0, f"anchors not checked: the media store does not answer ({done.unavailable})")
    ok = check.ok and anchored.ok
    emit(
        {
            "ok": ok,
            "entries": check.entries,
            "first_bad_seq": check.first_bad_seq if not check.ok else anchored.seq,
            "problem": check.problem or anchored.problem,
            "anchors": anchored.anchors,
            # Each restore recorded (audit-restored): the log's entries after `through` it lost, as anchored.
            "restores": [
                {"at": r.at, "by": r.by, "reason": r.reason, "through": r.seq, "lost": [a.seq for a in r.lost]}
                | {"record": r.name, "kept_rewrites": [_rewrite_json(w) for w in r.rewrites]}
                for r in anchored.restores
            ],
        }
    )
    return 0 if ok else EXIT_FAILED


def _restored(args: argparse.Namespace) -> int:
    reason = _reason(args)
    from service.features.install import install_features

    ctx = install_features(_context())  # the features re-apply their own withdrawals (FeatureHooks.reapply)
    from sqlalchemy import func, select

    from service.certification.audit_anchor import RestoreRefusedError
    from service.certification.models import AuditEntry
    from service.certification.registry import advance_event_ids, exported_high, reused_event_ids
    from service.certification.restore_record import AUDIT_ACTION, KeptUnreadableError, record_restore
    from service.certification.withdrawal_records import read_withdrawals
    from service.certification.withdrawal_replay import reapply_withdrawals
    from service.features.console import account_kept
    from service.features.console.audit_chain import record
    from service.infra.security import mask_text
    from service.infra.storage import StorageError

    with ctx.db() as db:
        try:  # every read and check first: a failure leaves nothing recorded, and a rerun records one restore
            withdrawals = read_withdrawals(ctx.storage)
            # The records' trail has no anchors: how many of its entries the dump lost is not known. Its last id
            # is recorded, so the ids written after the restore (reusing lost ones) are told apart.
            records_high = db.scalar(select(func.max(AuditEntry.id))) or 0
            high = exported_high(ctx.storage)[0]
            reused = reused_event_ids(db, ctx.storage)
            # The payment files' ids: the next event is numbered past every one already exported (idempotent).
            next_event_id = advance_event_ids(db, high)
            done = record_restore(db, ctx.storage, os_user(), reason, args.through)
        except RestoreRefusedError as exc:
            raise CliError(str(exc), EXIT_FAILED, code="RESTORE_REFUSED") from None
        except KeptUnreadableError as exc:  # an earlier restore's chunk: the message names the command to run
            raise CliError(str(exc), EXIT_FAILED, code="STORAGE_UNREADABLE") from None
        except StorageError as exc:  # the store down, an object that does not open (edited; another key), a refusal
            unreadable = "nothing recorded: put back the object, or the key that sealed it, and run it again"
            refused = "run it again once it takes writes: the rerun completes this restore, never records a second"
            raise _storage_failure(exc, unreadable, refused) from None
        # The withdrawals (and staff accounts' rights taken away) later than the dump, done again (each audited; a
        # rerun skips those done); the accounts' grants, never redone, listed for an admin. A person keyed by an ID
        # number is named masked, as the withdrawal's `audit` log line names them (the runbook matches the two).
        redone = [
            {"kind": w.kind, "target": mask_text(w.target), "at": w.at}
            for w in reapply_withdrawals(db, ctx, withdrawals)
        ]
        # `why`: a grant (an account's creation or confirmation among them), a newer change the database holds (not
        # redone), a narrowing that disabled the account; `todo`: what is done by hand, and where.
        grants = [
            {"kind": w.kind, "target": w.target, "at": w.at, "why": why, "todo": account_kept.todo(w, why)}
            for w, why in account_kept.left(db, withdrawals)
        ]
        restore, lost = done.restore, [a.seq for a in done.restore.lost]
        if done.state != "already":  # the record's own entry, naming it: a rerun finds a record without one
            detail = {"through": restore.seq, "lost": lost, "reason": reason, "next_event_id": next_event_id}
            detail |= {"withdrawals_redone": len(redone), "account_changes_left": len(grants)}
            detail |= {"audit_entries_through": records_high}
            detail |= {"record": restore.name, "event_ids_reused": reused[:20], "os_user": os_user()}
            record(db, "cli", AUDIT_ACTION, "audit", detail)
    emit(
        {
            "restored_through": restore.seq,
            "lost": lost,
            "recorded_at": restore.at,
            "next_event_id": next_event_id,
            # A rerun: the restore recorded already (nothing written), or completed (a run that failed midway).
            "already_recorded": done.state == "already",
            "completed": done.state == "completed",
            "withdrawals_redone": redone,
            "account_changes_left": grants,
            "audit_entries_through": records_high,
        }
    )
    if reused:
        raise CliError(
            f"{len(reused)} events recorded since the restore reuse ids the payment system may hold (the first: "
            f"{reused[:20]}): renumber them before the next export (docs/operations.md, 'Restoring from a backup')",
            EXIT_FAILED,
            code="EVENT_IDS_REUSED",
        )
    return 0


def _reason(args: argparse.Namespace) -> str:
    reason = str(args.reason).strip()
    if not 1 <= len(reason) <= 200:
        raise CliError("--reason must have 1 to 200 characters", code="REASON_REQUIRED")
    return reason


def _storage_failure(exc: StorageError, unreadable: str, refused: str) -> CliError:
    """The media store's failure, said to the operator: down (try later), an object that does not open, or a
    refused write; `unreadable` and `refused` say what the command left and what to do."""
    from service.infra.storage import StorageUnavailableError, UnreadableStorageError

    if isinstance(exc, StorageUnavailableError):
        return CliError(f"the media store does not answer ({exc})", EXIT_UNAVAILABLE, code="STORAGE_UNAVAILABLE")
    if isinstance(exc, UnreadableStorageError):
        return CliError(f"{exc}: {unreadable}", EXIT_FAILED, code="STORAGE_UNREADABLE")
    return CliError(f"the media store refused a write ({exc}): {refused}", EXIT_FAILED, code="STORAGE_FAILED")


def _rewrite_json(w: KeptRewrite) -> dict[str, object]:
    keys = ("at", "by", "reason", "kept_before", "kept_after", "added")
    return {k: getattr(w, k) for k in keys} | {"lost_chunks": list(w.lost_chunks)}


def _rewrite_kept(args: argparse.Namespace) -> int:
    reason = _reason(args)
    ctx = _context()
    from service.certification.restore_rewrite import REWRITE_ACTION, RewriteRefusedError, rewrite_kept
    from service.features.console.audit_chain import record
    from service.infra.storage import StorageError

    with ctx.db() as db:
        try:  # reads and checks first; the new chunks, then the record (the point of no return)
            done = rewrite_kept(db, ctx.storage, args.record.strip(), os_user(), reason)
        except RewriteRefusedError as exc:
            raise CliError(str(exc), EXIT_FAILED, code="REWRITE_REFUSED") from None
        except StorageError as exc:
            raise _storage_failure(
                exc, "nothing rewritten", "nothing rewritten; run it again once it takes writes"
            ) from None
        w, name = done.rewrite, done.restore.name
        detail = {"record": name, "at": w.at, "lost_chunks": list(w.lost_chunks), "kept_before": w.kept_before}
        detail |= {"kept_after": w.kept_after, "added": w.added, "reason": w.reason, "os_user": w.by}
        if done.state == "completed":  # the rewrite's own reason and operator; who completed it, beside them
            detail |= {"completed_by": os_user()}
        record(db, "cli", REWRITE_ACTION, "audit", detail)
    out = {"record": name, "lost_chunks": list(w.lost_chunks), "kept": w.kept_after, "kept_before": w.kept_before}
    emit(out | {"added": w.added, "completed": done.state == "completed"})
    return 0
