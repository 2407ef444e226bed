"""Helpers shared by the CLI sub-commands: exit codes, the CLI error (and domain errors as CLI errors), JSON
output, input checks.

This module is imported to build the parser (``pension-cert --help``): it must stay light (standard library, the
small ``pipelines`` modules and the domain errors only; no numpy, OpenCV, onnxruntime or the service app).
"""

# lazy-imports: each command imports what it runs inside its handler, so --help, `models list` and usage errors
# answer without loading the model runtime or the app (tests/service/adapters/cli/test_cli_imports.py).
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.certification.errors import ServiceError  # small: the reason codes only

if TYPE_CHECKING:
    from service.infra.config import Settings

# Exit codes: one meaning each (README, "Command line"). 2 is also what argparse uses for a usage error.
EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and its check failed (`console verify-audit`: the chain is broken)
EXIT_INPUT = 2  # bad arguments or input: a missing or unreadable file, media of the wrong kind, a bad CSV
EXIT_MODEL = 3  # model files missing or damaged: the pack cannot run (`pension-cert models fetch`)
EXIT_CONFIG = 4  # invalid settings (PENSION_CERT_* environment variables)
EXIT_UNAVAILABLE = 5  # a resource the command needs is unavailable: the port is in use, the database unreachable
EXIT_INTERRUPTED = 130  # Ctrl-C

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_FAILED: "the command ran and its check failed",
    EXIT_INPUT: "bad arguments or input (missing or unreadable file, wrong media, bad CSV)",
    EXIT_MODEL: "model files missing or damaged: the pack cannot run",
    EXIT_CONFIG: "invalid settings (PENSION_CERT_* environment variables)",
    EXIT_UNAVAILABLE: "a needed resource is unavailable (port in use, database unreachable)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}

# Reason codes of the command line itself (the pipelines' codes are in pipelines/reasons.py).
FILE_NOT_FOUND = "FILE_NOT_FOUND"  # the path does not exist (not a damaged file: MEDIA_CORRUPT)
FILE_UNREADABLE = "FILE_UNREADABLE"  # it exists but cannot be read (permissions, a directory)
BAD_CHALLENGE = "BAD_CHALLENGE"  # --challenge names an action that does not exist


class CliError(Exception):
    """A failure reported as ``pension-cert: [CODE: ]message`` on stderr with its exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_INPUT, code: str | None = None) -> None:
        super().__init__(f"{code}: {message}" if code else message)
        self.exit_code = exit_code
        self.code = code
        self.detail = message


# The exit code of a domain error (service.certification.errors), by code: the one place the CLI maps them.
# Every other refusal is about the input the command was given.
SERVICE_EXIT_CODES: dict[str, int] = {"DB_UNAVAILABLE": EXIT_UNAVAILABLE, "STORAGE_FULL": EXIT_UNAVAILABLE}


def as_cli_error(exc: ServiceError) -> CliError:
    """A domain error as the CLI reports it (``CODE: detail`` on stderr, or a batch row's ``error``)."""
    return CliError(exc.detail or exc.message_zh, SERVICE_EXIT_CODES.get(exc.code, EXIT_INPUT), code=exc.code)


def outage_error(exc: BaseException) -> CliError | None:
    """A database or media store that did not answer, as the CLI reports it (exit 5, one line), or a database not
    migrated (exit 4, naming the command), else None; the HTTP side answers the outages 503
    (service/adapters/http/errors.py). Looked up among the modules already loaded: building the parser imports
    neither SQLAlchemy nor the stores."""
    from service.infra.security import mask_text  # lazy: only on a failure (common.py stays light for --help)

    db_errors = sys.modules.get("sqlalchemy.exc")
    if db_errors is not None and isinstance(exc, (db_errors.OperationalError, db_errors.InterfaceError)):
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        cause = re.sub(r"\[Errno -?\d+\] ", "", cause)  # the resolver's words, not its number
        return CliError(f"the database does not answer: {mask_text(cause)}", EXIT_UNAVAILABLE, code="DB_UNAVAILABLE")
    storage = sys.modules.get("service.infra.storage")
    if storage is not None and isinstance(exc, storage.StorageUnavailableError):
        return CliError(f"the media store does not answer: {exc}", EXIT_UNAVAILABLE, code="STORAGE_UNAVAILABLE")
    # A database that answers but is not at this version's migrations: a setting to fix, not an outage (exit 4).
    migrate = sys.modules.get("service.infra.db.migrate")
    if migrate is not None and isinstance(exc, migrate.SchemaNotMigratedError):
        return CliError(str(exc), EXIT_CONFIG, code=migrate.SchemaNotMigratedError.code)
    return None


MAX_ACTOR_CHARS = 48  # an audit entry's actor is "cli:" + this (the audit columns hold 64)


def checked_actor(raw: str, code: str) -> str:
    """A command's `--actor`, stripped: 1 to MAX_ACTOR_CHARS characters, no NUL (CliError `code` otherwise)."""
    actor = raw.strip()
    if not actor or len(actor) > MAX_ACTOR_CHARS or "\x00" in actor:
        raise CliError(f"--actor must be 1 to {MAX_ACTOR_CHARS} characters", code=code)
    return actor


def os_user() -> str:
    """The account running the command, by its uid (not $USER, which the caller sets): named in the audit entries
    of what a command did or read, beyond "the command line"."""
    import pwd  # lazy: the passwd database, read only by the commands that write an audit entry

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # a uid without a passwd entry (a container's)
        return str(os.geteuid())


def emit(obj: dict[str, Any]) -> None:
    """Write one JSON object as one line on stdout."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def file_problem(path: Path) -> CliError | None:
    """A missing or unreadable input file, with its own reason code (not MEDIA_CORRUPT: nothing was read)."""
    if not path.exists():
        return CliError(f"{path}: no such file", code=FILE_NOT_FOUND)
    if not path.is_file():
        return CliError(f"{path}: not a file", code=FILE_UNREADABLE)
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        return CliError(f"{path}: {exc.strerror or 'cannot be read'}", code=FILE_UNREADABLE)
    return None


def require_file(path: Path) -> None:
    problem = file_problem(path)
    if problem is not None:
        raise problem


def require_media(path: Path, kind: str) -> None:
    """Refuse, before any model loads, a path that is missing or whose bytes are not ``kind`` ("image" or
    "video"): the message names what the file is (a PDF, a ZIP, …), never a Python object."""
    require_file(path)
    from pipelines.sniff import media_mismatch  # small, standard library only

    with path.open("rb") as fh:
        head = fh.read(4096)
    mismatch = media_mismatch(head, kind)
    if mismatch is not None:
        raise CliError(f"{path}: {mismatch}", code="MEDIA_UNSUPPORTED")


def actions_or_fail(text: str | None) -> tuple[str, ...]:
    """A ``--challenge`` value as actions; a bad one is a usage error with a reason code and plain names."""
    from pipelines.liveness.challenge import ACTIONS, parse_actions

    try:
        return parse_actions(text)
    except ValueError:
        given = [a.strip() for a in (text or "").split(",") if a.strip()]
        unknown = ", ".join(a for a in given if a not in ACTIONS)
        raise CliError(f"unknown action(s) {unknown}; known: {', '.join(ACTIONS)}", code=BAD_CHALLENGE) from None


def read_csv_rows(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    """The rows of a batch CSV (UTF-8, header line) that must have the ``required`` columns, each row with a
    value (possibly empty) in every one of them: the header is checked even when no row follows, and a row cut
    short (fewer fields than the header) is refused with its line number, not passed on as ``None``."""
    import csv

    require_file(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: Excel writes a byte-order mark
            reader = csv.DictReader(fh)
            rows: list[dict[str, str]] = []
            for row in reader:
                short = [c for c in required if c in row and row[c] is None]
                if short:
                    detail = f"line {reader.line_num} has no field for the column(s) {', '.join(short)}"
                    raise CliError(f"{path}: {detail}")
                rows.append(row)
            header = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not a UTF-8 CSV file"
        raise CliError(f"{path}: {reason}", code=FILE_UNREADABLE) from exc
    missing = [c for c in required if c not in header]
    if missing:
        raise CliError(f"{path} needs the column(s) {', '.join(required)}; missing: {', '.join(missing)}")
    return rows


# How to fix each setting a start-up check can refuse (one line each, printed after the problem).
_SETTING_FIXES: dict[str, str] = {
    "PENSION_CERT_MEDIA_KEY": "set it to base64 of 32 random bytes: "
    "python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())'",
    "PENSION_CERT_SIGNING_KEY": "set a random secret of 32+ characters: openssl rand -hex 32",
    "PENSION_CERT_API_KEYS": "set a JSON list of keys of 32+ characters: '[\"<openssl rand -hex 32>\"]'",
    "PENSION_CERT_ADMIN_API_KEYS": "set a JSON list of keys of 32+ characters: '[\"<openssl rand -hex 32>\"]'",
    "PENSION_CERT_METRICS_TOKEN": "set a token of 32+ characters, or PENSION_CERT_METRICS_ENABLED=false",
    "PENSION_CERT_WECHAT_TOKEN": "set the server-URL token of the official account (16+ letters and digits)",
    "PENSION_CERT_WECHAT_APP_SECRET": "set the official account's AppSecret",
    "PENSION_CERT_WECHAT_ENCODING_AES_KEY": "switch the server configuration to 安全模式 and copy its EncodingAESKey "
    "(43 characters)",
    "PENSION_CERT_CHALLENGE_ACTIONS": "unset it (each session then draws 2-3 random actions)",
}


def setting_line(variable: str, problem: str) -> str:
    fix = _SETTING_FIXES.get(variable)
    return f"{variable}: {problem}" + (f"; fix: {fix}" if fix and fix not in problem else "")


def settings_problems(sends: bool = False) -> tuple[Any, list[str]]:
    """The service settings from the environment and every problem found, one line per problem naming the
    variable and the fix (the settings are None when they cannot be built at all). `serve`, `worker` and any
    command that opens the service database call it (through ``load_settings``) before starting anything.

    ``sends``: the entry points that send WeChat messages (`serve`, `worker`, the Celery worker and beat:
    tasks.checked_settings) also check the WECHAT_TEMPLATES mapping. The other commands never send one: a mapping
    the API would refuse must not stop the nightly `cycle-run` (suspensions, the purge, the audit anchor), a
    `revoke`, a `rekey` or `console record-restore` (as H5_AUDIO_DIR stops only `serve`)."""
    import os

    from pydantic import ValidationError

    from service.infra.config import (
        InsecureSettingsError,
        Settings,
        setting_groups,
        settings_variables,
        shown_input,
    )

    # List/dict settings are JSON in the environment; pydantic-settings stops at the first bad one with a
    # message that does not say what was expected. All of them are checked here, by name.
    problems = []
    for variable, (owner, name) in settings_variables().items():
        annotation = owner.model_fields[name].annotation
        raw = os.environ.get(variable)  # env: the raw text of a setting pydantic refused, to name it
        if raw is not None and getattr(annotation, "__origin__", None) in (list, dict):
            try:
                json.loads(raw)
            except ValueError:
                kind = "list" if annotation.__origin__ is list else "object"  # type: ignore[union-attr]
                problems.append(setting_line(variable, f"not a JSON {kind}{shown_input(variable, raw)}"))
    if problems:
        return None, problems
    problems += _console_problems()
    try:
        settings = Settings()
    except ValidationError as exc:
        # A group's error (raised while that group reads its variables) is titled with the group's class.
        owner = next((g for g in setting_groups().values() if g.__name__ == exc.title), Settings)
        return None, problems + validation_lines(owner, exc)
    try:
        settings.media_key_bytes  # noqa: B018 - decodes and checks the length
    except (ValueError, InsecureSettingsError):  # binascii.Error (not base64), InsecureSettingsError (length)
        problems.append(setting_line("PENSION_CERT_MEDIA_KEY", "not base64 of exactly 32 bytes"))
    from service.infra.locations import location_problems  # lazy: SQLAlchemy, once the settings are built

    problems += [setting_line(variable, problem) for variable, problem in location_problems(settings)]
    calibration = settings.certification.face_calibration
    problem = _calibration_problem(Path(calibration)) if calibration else ""
    if problem:
        problems.append(setting_line("PENSION_CERT_FACE_CALIBRATION", problem))
    if sends:
        problems += _sending_problems(settings)
    if settings.env != "development":
        for variable in settings.dev_default_secrets():
            problems.append(setting_line(variable, f"the public development default is refused in {settings.env}"))
    if settings.env == "production":
        named = {line.split(":", 1)[0] for line in problems}
        for weakness in settings.production_weaknesses():
            variable, problem = weakness.split(" ", 1)
            if variable not in named:  # one line per variable: a default key is also a short one
                problems.append(setting_line(variable, problem))
    return settings, problems


def validation_lines(owner: Any, exc: Any) -> list[str]:
    """A settings class's pydantic ValidationError as setting lines, one per field, a secret's input never shown."""
    from service.infra.config import shown_input, variable_name

    lines = []
    for err in exc.errors():
        variable = variable_name(owner, "_".join(str(p) for p in err["loc"]))
        lines.append(setting_line(variable, err["msg"] + shown_input(variable, err.get("input"))))
    return lines


def _sending_problems(settings: Settings) -> list[str]:
    """The settings only a sender reads: the template mapping, by the API's own start-up check of it."""
    from service.features.wechat.runtime import template_problem  # lazy: the WeChat feature, for senders only
    from service.features.wechat.template_fit import VARIABLE

    problem = template_problem(settings)
    return [setting_line(VARIABLE, problem)] if problem else []


def _console_problems() -> list[str]:
    """The staff console's own settings (PENSION_CERT_CONSOLE_*, read apart from the service's when the app is
    built): a bad one was a traceback from create_app."""
    from pydantic import ValidationError

    from service.features.console.config import ConsoleConfig

    try:
        ConsoleConfig()
    except ValidationError as exc:
        return validation_lines(ConsoleConfig, exc)
    return []


def _calibration_problem(path: Path) -> str:
    """Why the face-match calibration file cannot be used ('' when it can): the stage's own reading of it."""
    from pipelines.errors import PipelineError  # lazy: the pipelines load only when a calibration file is set
    from pipelines.face_match.calibration import Calibration  # lazy: as above

    try:
        Calibration.load(path)
    except PipelineError as exc:
        return exc.detail
    return ""


def load_settings(sends: bool = False) -> Any:
    """The validated service settings, or CliError(EXIT_CONFIG) listing every problem, one per line (``sends``: a
    command that sends WeChat messages, `settings_problems`)."""
    settings, problems = settings_problems(sends)
    if problems:
        raise CliError("invalid settings:\n  " + "\n  ".join(problems), EXIT_CONFIG, code="CONFIG_INVALID")
    # The same checks get_settings() makes (all passed above, so it raises nothing): it also logs the warnings,
    # e.g. a fixed action challenge.
    settings.validate_secrets()
    return settings


def check_database_role(settings: Settings) -> None:
    """Production never runs on a PostgreSQL superuser connection (service/infra/db/roles.py): refused with its
    settings line, by `serve`, `worker` and the Celery worker and beat (service/adapters/workers/tasks.py).
    Elsewhere nothing is said (development and the tests run on their server's superuser, and a command's stderr
    is its one refusal line). A database that does not answer is left to the start that follows, which says so."""
    if settings.env != "production" or not settings.effective_database_url.startswith("postgresql"):
        return
    from sqlalchemy.exc import SQLAlchemyError

    from service.infra.db.engine import make_engine
    from service.infra.db.roles import VARIABLE, role_problem

    engine = make_engine(settings.effective_database_url)
    try:
        problem = role_problem(engine)
    except SQLAlchemyError:
        return
    finally:
        engine.dispose()
    if problem:
        raise CliError(f"invalid settings:\n  {setting_line(VARIABLE, problem)}", EXIT_CONFIG, code="CONFIG_INVALID")
