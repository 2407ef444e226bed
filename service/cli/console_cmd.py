"""`pension-cert console create-user` (the first admin, or any account) and `pension-cert console
verify-audit` (re-check the console audit log's hash chain)."""

from __future__ import annotations

import argparse
import getpass
import os

from sqlalchemy import select

from service.cli.common import CliError, emit
from service.config import get_settings
from service.context import ServiceContext


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("console", help="staff console administration")
    csub = p.add_subparsers(dest="console_command", required=True)
    c = csub.add_parser(
        "create-user", help="create a staff account (password from PENSION_CERT_CONSOLE_PASSWORD or a prompt)"
    )
    c.add_argument("--username", required=True)
    c.add_argument("--role", choices=["reviewer", "supervisor", "admin"], required=True)
    c.add_argument("--display-name", default="")
    c.set_defaults(func=_create_user)
    v = csub.add_parser("verify-audit", help="verify the console audit log's hash chain")
    v.set_defaults(func=_verify)


def _create_user(args: argparse.Namespace) -> int:
    from service.console.audit_chain import record
    from service.console.auth import create_user
    from service.db.console_models import StaffUser

    # Never a command-line argument: it would stay in the shell history and the process list.
    password = os.environ.get("PENSION_CERT_CONSOLE_PASSWORD") or getpass.getpass("密码 / password: ")
    ctx = ServiceContext(get_settings())
    with ctx.db() as db:
        if db.scalar(select(StaffUser).where(StaffUser.username == args.username)) is not None:
            raise CliError(f"user {args.username} exists")
        try:
            user = create_user(db, args.username, password, args.role, args.display_name)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        record(db, "cli", "user.create", user.username, {"role": user.role})
        emit({"id": user.id, "username": user.username, "role": user.role})
    return 0


def _verify(_args: argparse.Namespace) -> int:
    from service.console.audit_chain import verify_chain

    ctx = ServiceContext(get_settings())
    with ctx.db() as db:
        check = verify_chain(db)
    emit({"ok": check.ok, "entries": check.entries, "first_bad_seq": check.first_bad_seq, "problem": check.problem})
    return 0 if check.ok else 1
