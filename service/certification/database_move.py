"""Moving the embedded SQLite database to PostgreSQL (`pension-cert move-database`, docs/operations.md "Moving from
SQLite to PostgreSQL"; docs/security.md Part BD).

The checks before anything is written, on a source opened as it is (no table, column or index added: a refused
file keeps its bytes, journal mode and file mode; one in WAL mode gains empty -wal and -shm, as from any reader):
the source file exists (``source_refusal``) and holds records of the service; it
is this version's schema (every table and column of the models, no table or column this version does not know;
an Alembic-stamped file at head); the target is at this version's Alembic head and holds no row of any table of
the service; and no worker of the source has checked in within WORKER_STALE_S (the heartbeats: `serve`'s worker
processes or threads, `worker`, Celery workers).

The copy: every table of the metadata in foreign-key order, streamed in batches, primary keys kept, JSON columns
moved as their stored text (a SQL NULL stays NULL, a JSON ``null`` stays ``null``), times as stored (naive UTC;
the target session's time zone is UTC, so a ``timestamptz`` column would read them as UTC too), blobs and keyed
hashes byte for byte. All of it in one transaction on the target, which, before committing, counts and checksums
every table on both sides (the source is read in one transaction that holds SQLite's write lock: nothing changes
it meanwhile), sets every sequence past the copied ids (and `cycle_events` past the highest exported event id),
and records the move in the audit log. A writer the heartbeats cannot see (an API with WORKER_MODE=none, cron's
`cycle-run`) does not fail on that lock: it waits (SQLite's busy timeout, 30 s) and commits right after. So the
copy lets go of the lock for GRACE_S, takes it again and commits the target only if ``PRAGMA data_version`` says
no other connection wrote meanwhile (SOURCE_CHANGED otherwise). Any failure rolls the whole transaction back: the
target stays empty.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    Engine,
    Integer,
    MetaData,
    Select,
    Table,
    Text,
    bindparam,
    cast,
    func,
    inspect,
    make_url,
    select,
    text,
)
from sqlalchemy.orm import Session

from service.certification.audit import audit
from service.certification.heartbeat import live_worker_names
from service.certification.models import WorkerHeartbeat
from service.certification.move_source import media_refusal, media_where
from service.certification.registry import advance_event_ids
from service.infra.db.migrate import MIGRATE_COMMAND, schema_state

ACTION = "database.moved"
# Tables a database may hold beside the service's own: Alembic's version, PostGIS's reference table.
NOT_OURS = frozenset({"alembic_version", "spatial_ref_sys"})
# How long the copy lets go of SQLite's write lock before taking it again to commit the target: a writer that was
# waiting for it (SQLite's busy handler retries every 100 ms at most) commits meanwhile, and is seen.
GRACE_S = 1.0


class MoveRefusedError(Exception):
    """The move was refused before anything was written: ``code`` and ``kind`` (input, schema, source, busy) say
    why."""

    def __init__(self, code: str, kind: str, message: str) -> None:
        super().__init__(message)
        self.code, self.kind = code, kind


class MoveFailedError(Exception):
    """The copy failed or did not verify: the target's transaction was rolled back (``target_empty``)."""

    def __init__(self, code: str, message: str, target_empty: bool | None, outage: bool = False) -> None:
        super().__init__(message)
        self.code, self.target_empty, self.outage = code, target_empty, outage


@dataclass
class TableSum:
    rows: int = 0
    digest: int = 0  # the sum of the rows' sha256, mod 2**256: independent of the order rows come in

    def add(self, values: tuple[Any, ...]) -> None:
        canonical = json.dumps([_canonical(v) for v in values], ensure_ascii=False, separators=(",", ":"))
        self.rows += 1
        self.digest = (self.digest + int.from_bytes(hashlib.sha256(canonical.encode()).digest())) % 2**256

    @property
    def hexdigest(self) -> str:
        return f"{self.digest:064x}"


@dataclass
class MoveReport:
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    sequences: dict[str, int] = field(default_factory=dict)
    next_event_id: int | None = None

    @property
    def rows(self) -> int:
        return sum(int(t["rows"]) for t in self.tables.values())


def _canonical(value: Any) -> Any:
    """One value as the checksum sees it, the same whichever database it was read from."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return "t:" + value.isoformat(timespec="microseconds")
    if isinstance(value, dt.date):
        return "d:" + value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "b:" + bytes(value).hex()
    return value


def _is_json(column: Any) -> bool:
    return isinstance(column.type, JSON)


def _reading(table: Table) -> Select[Any]:
    """The table's rows, JSON columns as their stored text (its JSON re-read below only for the checksum)."""
    return select(*[cast(c, Text).label(c.name) if _is_json(c) else c for c in table.columns])


def _json_text(raw: Any) -> Any:
    """A JSON column's stored text in one spelling (SQLite keeps what the app wrote, PostgreSQL's jsonb its own)."""
    if raw is None:
        return None
    return "j:" + json.dumps(json.loads(raw), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def table_sum(conn: Connection, table: Table, batch: int) -> TableSum:
    """Count and checksum one table, streamed in batches."""
    total, json_at = TableSum(), [i for i, c in enumerate(table.columns) if _is_json(c)]
    for part in conn.execute(_reading(table), execution_options={"yield_per": batch}).partitions():
        for row in part:
            values = list(row)
            for i in json_at:
                values[i] = _json_text(values[i])
            total.add(tuple(values))
    return total


def source_refusal(url: str) -> MoveRefusedError | None:
    """A source file that does not exist (a mistyped PENSION_CERT_DATABASE_URL, the default relative ``var/`` run
    from another folder): refused before anything opens it, which would create it empty. One not named by its
    path (SQLite's URI form, in memory) is refused too: the checks read the file it names read-only, by path."""
    database = make_url(url).database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return MoveRefusedError(
            "BAD_SOURCE",
            "source",
            "the source (PENSION_CERT_DATABASE_URL) must name the pilot's SQLite file by its path, as "
            "sqlite:////path/to/pension_cert.db: not in SQLite's URI form (file:…), nor an in-memory database",
        )
    if Path(database).is_file():
        return None
    return MoveRefusedError(
        "SOURCE_MISSING",
        "source",
        f"the source database {_where(database)} does not exist: PENSION_CERT_DATABASE_URL (or PENSION_CERT_VAR_DIR, "
        "relative to the folder the command runs in) must name the pilot's file",
    )


def _where(database: str | None) -> str:
    return str(Path(database).absolute()) if database else "(in memory)"


def schema_refusal(source: Engine, target: Engine, metadata: MetaData) -> MoveRefusedError | None:
    """Why the source and the target are not both at this version's schema (None when they are)."""
    problem, migrated = schema_state(target, metadata)
    if problem or not migrated:
        why = problem or "its tables were not made by the migrations (no Alembic version)"
        return MoveRefusedError(
            "SCHEMA_NOT_MIGRATED",
            "schema",
            f"the target database is not at this version's migrations: {why}; make an empty database and run "
            f"{MIGRATE_COMMAND.replace('the same', 'the target as')} first",
        )
    return _source_schema_refusal(source, metadata)


def _source_schema_refusal(source: Engine, metadata: MetaData) -> MoveRefusedError | None:
    """The source's tables and columns against the models, read only (never brought up to them: see the module)."""
    insp = inspect(source)
    present = set(insp.get_table_names())
    if not present & set(metadata.tables):
        return _empty_source(source)
    problem, _stamped = schema_state(source, metadata)
    if problem:
        return MoveRefusedError("SCHEMA_NOT_MIGRATED", "schema", f"the source database: {problem}")
    missing = [t.name for t in metadata.sorted_tables if t.name not in present]
    unknown = sorted(t for t in present - set(metadata.tables) - NOT_OURS if not t.startswith("sqlite_"))
    unknown = [f"table {t}" for t in unknown]
    for table in metadata.sorted_tables:
        if table.name in present:
            columns = {c["name"] for c in insp.get_columns(table.name)}
            missing += [f"{table.name}.{c.name}" for c in table.columns if c.name not in columns]
            unknown += [f"{table.name}.{c}" for c in sorted(columns - set(table.columns.keys()))]
    what = []
    if unknown:
        what.append(
            f"has {', '.join(unknown)}, which this version does not know (a newer version made them: move with it)"
        )
    if missing:
        what.append(
            f"lacks {', '.join(missing)} (an earlier version made it: start this version once on it, "
            "`scripts/start.sh` then Ctrl-C, which adds what is missing; then move)"
        )
    return (
        MoveRefusedError("SCHEMA_MISMATCH", "schema", f"the source database {'; and it '.join(what)}") if what else None
    )


def _empty_source(source: Engine) -> MoveRefusedError:
    return MoveRefusedError(
        "SOURCE_EMPTY",
        "source",
        f"the source database {_where(source.url.database)} holds no record of the service (no person, session or "
        "audit entry): PENSION_CERT_DATABASE_URL most likely names the wrong file; there is nothing to move",
    )


def empty_refusal(source: Engine, metadata: MetaData) -> MoveRefusedError | None:
    """A source with no row but the workers' heartbeats (a file made by a command run against a mistyped URL)."""
    with source.connect() as conn:
        occupied = set(occupied_tables(conn, metadata)) - {WorkerHeartbeat.__tablename__}
    return None if occupied else _empty_source(source)


def occupied_tables(conn: Connection, metadata: MetaData) -> list[str]:
    """The service's tables that hold rows on ``conn``'s database."""
    return [t.name for t in metadata.sorted_tables if conn.scalar(select(func.count()).select_from(t))]


def busy_refusal(ctx: Any) -> MoveRefusedError | None:
    """A worker of the source that checked in within WORKER_STALE_S: the service is running (None when none)."""
    names = live_worker_names(ctx)
    if not names:
        return None
    stale_s = ctx.settings.workers.worker_stale_s
    return MoveRefusedError(
        "SERVICE_RUNNING",
        "busy",
        f"the service is still running on the source database (worker {', '.join(names)} checked in within the "
        f"last {stale_s:g} s): stop `serve`, every `worker` and Celery worker first (scripts/start.sh: Ctrl-C); "
        f"a process killed without a clean stop counts as running until {stale_s:g} s after its last check-in",
    )


def _copy_table(source: Connection, target: Connection, table: Table, batch: int) -> None:
    values = {
        c.name: cast(bindparam(f"v_{c.name}", type_=Text), c.type)
        if _is_json(c)
        else bindparam(f"v_{c.name}", type_=c.type)
        for c in table.columns
    }
    insert = table.insert().values(values)
    for part in source.execute(_reading(table), execution_options={"yield_per": batch}).partitions():
        target.execute(insert, [{f"v_{k}": v for k, v in row._mapping.items()} for row in part])


def reset_sequences(target: Connection, metadata: MetaData) -> dict[str, int]:
    """Every sequence behind an integer key (serial or identity) set to number the next row past the copied ones:
    {table.column: the next value}."""
    done: dict[str, int] = {}
    for table in metadata.sorted_tables:
        for column in table.primary_key.columns:
            if not isinstance(column.type, Integer):
                continue
            seq = target.scalar(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column.name})
            if seq is None:
                continue
            top = int(target.scalar(select(func.max(column))) or 0)
            target.execute(text("SELECT setval(:s, :v, false)"), {"s": seq, "v": top + 1})
            done[f"{table.name}.{column.name}"] = top + 1
    return done


def copy_all(
    source: Connection, target: Connection, metadata: MetaData, batch: int, exported_high: int, who: dict[str, Any]
) -> MoveReport:
    """Copy, verify and renumber inside the callers' transactions; MoveFailedError when a table does not verify
    (the caller rolls the target back)."""
    target.execute(text("SET LOCAL TIME ZONE 'UTC'"))
    report = MoveReport()
    for table in metadata.sorted_tables:
        try:
            _copy_table(source, target, table, batch)
        except Exception as exc:
            if _is_outage(exc):
                raise
            raise MoveFailedError(
                "MOVE_FAILED", f"table {table.name} could not be copied: {_reason(exc)}", None
            ) from exc
    bad = []
    for table in metadata.sorted_tables:
        theirs, ours = table_sum(source, table, batch), table_sum(target, table, batch)
        report.tables[table.name] = {"rows": theirs.rows, "checksum": theirs.hexdigest}
        if (theirs.rows, theirs.digest) != (ours.rows, ours.digest):
            bad.append(
                f"{table.name} ({theirs.rows} rows in the source, {ours.rows} in the target"
                f"{', the same count but different contents' if theirs.rows == ours.rows else ''})"
            )
    if bad:
        raise MoveFailedError("MOVE_NOT_VERIFIED", f"the copy does not match the source: {'; '.join(bad)}", None)
    report.sequences = reset_sequences(target, metadata)
    with Session(bind=target, join_transaction_mode="create_savepoint") as db:
        report.next_event_id = advance_event_ids(db, exported_high)
        audit(db, "cli", ACTION, "postgresql", {"tables": len(report.tables), "rows": report.rows, **who})
        db.commit()
    return report


def _is_outage(exc: Exception) -> bool:
    from sqlalchemy.exc import InterfaceError, OperationalError  # lazy: only on a failure

    return isinstance(exc, (OperationalError, InterfaceError))


def _reason(exc: Exception) -> str:
    """The database's own first line (never the statement nor its values: the engines hide the parameters)."""
    from service.infra.security import mask_text  # lazy: only on a failure

    cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return mask_text(cause[0] if cause else "no reason given")


def refusal(ctx: Any, target: Engine, metadata: MetaData) -> MoveRefusedError | None:
    """Why the move of ``ctx``'s database (and media store) to ``target`` is refused, before anything is written
    (None: it may go on). Reads only: the command runs it first on the source opened read-only
    (move_source.read_only), so a refused file keeps its bytes (move_source.py)."""
    found = schema_refusal(ctx.engine, target, metadata) or busy_refusal(ctx) or empty_refusal(ctx.engine, metadata)
    if found is not None:
        return found
    with target.connect() as conn:
        occupied = occupied_tables(conn, metadata)
    if occupied:
        return MoveRefusedError(
            "TARGET_NOT_EMPTY",
            "input",
            f"the target database already holds rows of this service (tables {', '.join(occupied)}): a move never "
            "merges into a database in use; give it an empty database made with the migrations",
        )
    with ctx.db() as db:
        other_store = media_refusal(db, ctx.storage, media_where(ctx.settings))
    return MoveRefusedError("MEDIA_STORE_MISMATCH", "source", other_store) if other_store else None


def move(ctx: Any, target: Engine, metadata: MetaData, batch: int, who: dict[str, Any]) -> MoveReport:
    """The whole move from ``ctx``'s (SQLite) database to ``target``: the checks, then the copy in one transaction
    on the target. MoveRefusedError: nothing was written; MoveFailedError: the target was rolled back."""
    from service.certification.registry import exported_high  # lazy: the media store, read once checks passed

    problem = refusal(ctx, target, metadata)
    if problem is not None:
        raise problem
    high = exported_high(ctx.storage)[0]  # payment-file event ids the new database must never number again
    try:
        with ctx.engine.connect() as source, target.connect() as conn:
            return _copy_and_commit(source, conn, metadata, batch, high, who)
    except MoveFailedError as exc:
        exc.target_empty = _empty(target, metadata)
        raise
    except Exception as exc:
        failed = _outage(exc) or MoveFailedError("MOVE_FAILED", f"the copy failed: {_reason(exc)}", None)
        failed.target_empty = _empty(target, metadata)
        raise failed from exc


def _copy_and_commit(
    source: Connection, conn: Connection, metadata: MetaData, batch: int, high: int, who: dict[str, Any]
) -> MoveReport:
    """The copy under SQLite's write lock; then the lock let go for GRACE_S and taken again, and the target committed
    under it only if no other connection wrote to the source meanwhile (rolled back otherwise)."""
    with conn.begin() as trans:  # rolled back on any exception
        with source.begin():  # BEGIN IMMEDIATE (service/infra/db/engine.py): the write lock
            seen = _data_version(source)
            report = copy_all(source, conn, metadata, batch, high, who)
        time.sleep(GRACE_S)  # a writer that waited for the lock commits now
        with source.begin():
            if _data_version(source) != seen:
                raise MoveFailedError(
                    "SOURCE_CHANGED",
                    "the source database was written while the copy ran (a writer the heartbeats cannot see waited "
                    "for the copy's lock and committed after it: an API started with WORKER_MODE=none, cron's "
                    "cycle-run, another pension-cert command): stop every process that writes to it",
                    None,
                )
            trans.commit()
    return report


def _data_version(source: Connection) -> int:
    """SQLite's count of commits by other connections (PRAGMA data_version: this one's own do not count)."""
    return int(source.exec_driver_sql("PRAGMA data_version").scalar() or 0)


def _outage(exc: Exception) -> MoveFailedError | None:
    """A database that stopped answering during the copy, named: the target (PostgreSQL gone, its disk full) or the
    source (SQLite's lock held past its busy timeout, the file unreadable); None for any other failure."""
    if not _is_outage(exc):
        return None
    if type(getattr(exc, "orig", None)).__module__.startswith("sqlite3"):
        return MoveFailedError(
            "SOURCE_UNAVAILABLE",
            f"the source database could not be read or locked during the copy: {_reason(exc)}",
            None,
            outage=True,
        )
    return MoveFailedError(
        "TARGET_UNAVAILABLE",
        f"the target database stopped answering during the copy, before anything was committed: {_reason(exc)}",
        None,
        outage=True,
    )


def _empty(target: Engine, metadata: MetaData) -> bool | None:
    """Whether the target holds no row of the service after the rollback (None: it cannot be asked)."""
    try:
        with target.connect() as conn:
            return not occupied_tables(conn, metadata)
    except Exception:  # the target went away: the uncommitted transaction is gone with it
        return None
