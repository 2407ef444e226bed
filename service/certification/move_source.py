"""The source of `pension-cert move-database` as its checks read it, and the media it leaves where they are
(docs/security.md Parts BD and BJ; the move itself: database_move.py).

Read-only first: the app's own engine (service/infra/db/engine.py) switches an embedded file to WAL mode and takes
the group's and others' rights away as it opens it. Done before the checks, a file the move then refused was
changed anyway (no longer byte for byte the backup it was, a mode the backup user could no longer read). The checks
read it through ``read_only`` (SQLite's ``mode=ro``, none of that set-up), and the app's engine opens it only once
they passed. A file already in WAL mode gets its -wal and -shm companions, as any reader gives it.

The media do not move: the database names cards, videos and templates' evidence kept in the media store, and the
staff audit chain is anchored there (audit_anchor.py), all sealed with the media key. The PostgreSQL set-up keeps the
same store and the same keys. ``media_refusal`` checks that the store the settings name is the pilot's: it holds an
anchor (the head, or a daily anchor) of the source's staff audit log that opens with the media key and matches.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, func, make_url, select
from sqlalchemy.orm import Session

from service.certification.audit_anchor import HEAD_KEY, PREFIX, mismatch, read_anchor
from service.certification.context import open_storage
from service.certification.staff_audit import ConsoleAuditEntry
from service.infra.storage import MediaStorage, StorageError, StorageUnavailableError


def read_only(url: str) -> Engine:
    """The SQLite database of ``url`` opened read-only, without the app's connection set-up (journal mode, file
    mode): what the checks read. The file must exist (database_move.source_refusal says so first)."""
    path = str(Path(make_url(url).database or "").absolute())

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=30, check_same_thread=False)

    return create_engine(url, creator=connect, hide_parameters=True)  # the URL names the file in messages


def media_where(settings: Any) -> str:
    """The media store the settings name, in words (a bucket's keys and secrets never shown)."""
    if settings.storage.media_url:
        return f"the bucket {settings.storage.media_url}"
    return f"the folder {Path(settings.effective_media_dir).absolute()}"


def media_folder_refusal(settings: Any) -> str:
    """A local media folder that does not exist (a mistyped PENSION_CERT_MEDIA_DIR): why it is not the pilot's store
    ("" when it exists, or the store is a bucket). Said before anything opens the store, which would create it."""
    if settings.storage.media_url:
        return ""
    folder = Path(settings.effective_media_dir).absolute()
    if folder.is_dir():
        return ""
    return (
        f"the media store the settings name: no such folder: {folder}, so it is not the store the source "
        "database's media and audit anchors are in: PENSION_CERT_MEDIA_DIR (or PENSION_CERT_VAR_DIR, relative to the "
        "folder the command runs in) must name the pilot's media folder, as the pilot's service runs with"
    )


class CheckContext:
    """What the move's checks read (database_move.refusal): the settings, the source opened read-only and the
    media store, made without creating a folder (a ServiceContext makes PENSION_CERT_VAR_DIR's): a refused move
    leaves none behind. The local store's folder exists (media_folder_refusal first)."""

    def __init__(self, settings: Any, engine: Engine) -> None:
        settings.validate_secrets()
        self.settings, self.engine = settings, engine
        self.storage: MediaStorage = open_storage(settings)

    @contextmanager
    def db(self) -> Iterator[Session]:
        with Session(self.engine) as session:  # reads only: nothing to commit
            yield session


def media_refusal(db: Session, storage: MediaStorage, where: str) -> str:
    """Why the store is not the source's ("" when it is, or when the source has no staff audit entry to tell):
    none of its anchors of the staff audit log (the head, the daily ones) opens with the media key and names an
    entry the source holds as anchored. Each is read on its own: one damaged object (bit rot, an edit verify-audit
    reports) does not make the pilot's store another's. StorageUnavailableError when the store does not answer."""
    if not db.scalar(select(func.count()).select_from(ConsoleAuditEntry)):
        return ""
    unread: list[str] = []
    try:
        keys = [*([HEAD_KEY] if storage.exists(HEAD_KEY) else []), *sorted(o.key for o in storage.list(PREFIX))]
    except StorageUnavailableError:
        raise
    except StorageError as exc:  # the store answers but cannot be listed (not a folder of ours)
        return _other_store(where, f"cannot be read ({exc})")
    opened = 0
    for key in keys:
        try:
            anchor = read_anchor(storage, key)
        except StorageUnavailableError:
            raise
        except StorageError:  # sealed with another key, damaged or edited
            unread.append(key)
            continue
        opened += 1
        if not mismatch(db, anchor, "", ""):
            return ""
    if not unread:
        return _other_store(where, "holds no anchor of it")
    named = ", ".join(unread[:3]) + (f" and {len(unread) - 3} more" if len(unread) > 3 else "")
    damaged = f"if the key is the pilot's, {named} {'is' if len(unread) == 1 else 'are'} damaged or edited"
    if opened:
        why = f"holds no anchor of it that opens and matches ({named} did not open, damaged or edited"
    else:
        why = f"does not open with PENSION_CERT_MEDIA_KEY (none of its anchors does; {damaged}"
    return _other_store(where, f"{why}: `pension-cert console verify-audit` on the pilot reports them)")


def _other_store(where: str, why: str) -> str:
    return (
        f"the media store the settings name ({where}) {why}, so it is not the store the source database's media and "
        "audit anchors are in: the move copies the database only, the media stay where they are. Run it with the "
        "pilot's own storage settings and keys (PENSION_CERT_MEDIA_DIR or PENSION_CERT_MEDIA_URL, "
        "PENSION_CERT_MEDIA_KEY, PENSION_CERT_SIGNING_KEY), and give the PostgreSQL set-up the same"
    )
