"""Encryption at rest, keyed ID hashes, log masking and the refusal of development secrets."""

from __future__ import annotations

import base64
import datetime as dt
import io
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from uvicorn.config import LOGGING_CONFIG
from uvicorn.logging import AccessFormatter

import service.schema
from service.certification import idnumber
from service.certification.context import ServiceContext
from service.certification.contract import Certifier
from service.certification.models import CertSession, SessionState
from service.certification.processing import claim, process
from service.infra.config import DEV_MEDIA_KEY, InsecureSettingsError, settings_from_flat
from service.infra.db.engine import make_engine, private_sqlite_file
from service.infra.observability.logs import MaskingFilter, install_log_masking
from service.infra.security import Keyring, mask_id, mask_text
from service.infra.storage import LocalEncryptedStorage, StorageError
from tests.service import factories
from tests.service.conftest import make_settings
from tests.service.test_job_backoff import NeverCalled, queued_job


def test_storage_encrypts_and_authenticates(tmp_path: Path, data_dir: Path) -> None:
    key = os.urandom(32)
    store = LocalEncryptedStorage(tmp_path, key)
    card = (data_dir / "idcard/synthetic/card_000.jpg").read_bytes()
    store.put("sessions/abc/id_card", card)
    raw = (tmp_path / "sessions/abc/id_card.enc").read_bytes()
    assert card[:64] not in raw and len(raw) == len(card) + 28  # nonce + tag
    assert store.get("sessions/abc/id_card") == card
    # The same bytes under another key, or with another store key, fail authentication.
    with pytest.raises(StorageError):
        LocalEncryptedStorage(tmp_path, os.urandom(32)).get("sessions/abc/id_card")
    (tmp_path / "sessions/xyz").mkdir()
    (tmp_path / "sessions/xyz/id_card.enc").write_bytes(raw)
    with pytest.raises(StorageError):
        store.get("sessions/xyz/id_card")
    with pytest.raises(StorageError):
        store.put("../escape", b"x")
    assert store.delete("sessions/abc/id_card") and not store.exists("sessions/abc/id_card")


def test_an_object_cut_short_is_a_storage_error_and_its_job_goes_to_staff(ctx: ServiceContext) -> None:
    """An object emptied or cut below the nonce (a truncated copy, a tampered bucket object) failed with AES-GCM's
    ValueError ("Nonce must be between 8 and 128 bytes"), not the StorageError every reader handles: the
    worker's job crashed on each claim instead of going to staff, the case picture answered 500."""
    assert isinstance(ctx.storage, LocalEncryptedStorage)
    ctx.settings.workers.job_retry_backoff_s = 0
    sid = queued_job(ctx)
    for kind in ("id_card", "video"):
        ctx.storage.put(f"sessions/{sid}/{kind}", b"media")
    for cut in (b"", b"\x00" * 5, b"\x00" * 27):
        (ctx.storage.root / f"sessions/{sid}/id_card.enc").write_bytes(cut)
        with pytest.raises(StorageError):
            ctx.storage.get(f"sessions/{sid}/id_card")
    for _ in range(ctx.settings.workers.job_max_attempts):
        assert claim(ctx, sid, "w1") == sid
        process(ctx, cast(Certifier, NeverCalled()), sid, "w1")
    with ctx.db() as db:
        row = db.get(CertSession, sid)
        assert row is not None and row.state == SessionState.FAILED and "StorageError" in (row.last_error or "")


def test_a_write_that_cannot_make_its_folder_is_a_storage_error(tmp_path: Path) -> None:
    """A parent that is a file (a damaged or tampered media folder): the failed write's clean-up could itself
    raise (NotADirectoryError) and escape as a bare OSError; callers handle StorageError."""
    store = LocalEncryptedStorage(tmp_path, os.urandom(32))
    (tmp_path / "sessions").write_bytes(b"")
    with pytest.raises(StorageError, match="cannot write"):
        store.put("sessions/abc/video", b"x")
    assert not store.exists("sessions/abc/video")


def test_keyring_hash_is_stable_and_keyed() -> None:
    k1, k2 = Keyring(os.urandom(32), "one"), Keyring(os.urandom(32), "two")
    number = "11010519491231002X"
    assert k1.id_hash(number) == k1.id_hash(" 11010519491231002x ")
    assert k1.id_hash(number) != k2.id_hash(number)
    token = k1.encrypt_field(number, "ctx")
    assert number not in token and k1.decrypt_field(token, "ctx") == number


def test_mac_verification_refuses_hostile_values_instead_of_raising() -> None:
    k = Keyring(os.urandom(32), "one")
    mac = k.mac("cert:abc")
    assert k.verify_mac("cert:abc", mac)
    assert not k.verify_mac("cert:abc", mac[:-1] + "0" if mac[-1] != "0" else mac[:-1] + "1")
    assert not k.verify_mac("cert:abc", "证书" * 16)  # non-ASCII: compare_digest on str would raise TypeError


def test_masking() -> None:
    assert mask_id("11010519491231002X") == "1101**********002X"
    assert mask_text("id=11010519491231002X, other 370102195003140017.") == (
        "id=1101**********002X, other 3701**********0017."
    )
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "checking %s", ("370102195003140017",), None)
    MaskingFilter().filter(record)
    assert record.getMessage() == "checking 3701**********0017"


def test_masking_reaches_loggers_with_their_own_handlers() -> None:
    stream = io.StringIO()
    access = logging.getLogger("test.access")
    access.propagate = False
    access.addHandler(logging.StreamHandler(stream))
    install_log_masking()
    access.warning('"GET /api/v1/beneficiaries?id_number=%s HTTP/1.1" 200', "11010519491231002X")
    assert stream.getvalue().strip() == '"GET /api/v1/beneficiaries?id_number=1101**********002X HTTP/1.1" 200'


def test_default_secrets_refused_outside_development(tmp_path: Path) -> None:
    settings_from_flat(env="development").validate_secrets()
    with pytest.raises(InsecureSettingsError):
        settings_from_flat(env="production").validate_secrets()
    good = settings_from_flat(
        env="production",
        media_key=base64.b64encode(os.urandom(32)).decode(),
        signing_key=os.urandom(32).hex(),
        api_keys=[os.urandom(32).hex()],
        admin_api_keys=[os.urandom(32).hex()],
        metrics_token=os.urandom(32).hex(),
        public_base_url="https://h5.pension.example.gov.cn",
    )
    good.validate_secrets()
    with pytest.raises(InsecureSettingsError):
        good.model_copy(
            update={"security": good.security.model_copy(update={"media_key": DEV_MEDIA_KEY})}
        ).validate_secrets()
    with pytest.raises(InsecureSettingsError):
        settings_from_flat(media_key=base64.b64encode(b"short").decode()).validate_secrets()


# Issue #22: access-log lines carrying an ID number, masked before formatting (threat → defence → test in
# docs/security.md).


@pytest.fixture
def access_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger wired as uvicorn wires `uvicorn.access` (its AccessFormatter with the default format, its own
    handler, no propagation), private to the test so the process's logging is left as it was."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(AccessFormatter(fmt=LOGGING_CONFIG["formatters"]["access"]["fmt"], use_colors=False))
    logger = logging.getLogger("tests.uvicorn.access")
    logger.propagate, logger.level = False, logging.INFO
    logger.addHandler(handler)
    try:
        yield logger, buf
    finally:
        logger.removeHandler(handler)


def test_access_log_line_with_an_id_number_is_written_masked(
    access_log: tuple[logging.Logger, io.StringIO], capsys: pytest.CaptureFixture[str]
) -> None:
    """The record uvicorn's h11/httptools protocols log for every request; the masking filter used to replace
    its args with None, AccessFormatter then failed to unpack them and the line was lost to a traceback."""
    logger, buf = access_log
    number = factories.id_number(region="110105", birth=dt.date(1949, 12, 31))
    assert idnumber.validate(number, dt.date(2026, 5, 1)) is None  # a real number: valid check digit
    install_log_masking()
    path = f"/api/v1/beneficiaries?id_number={number}&today=2026"
    logger.info('%s - "%s %s HTTP/%s" %d', "203.0.113.9:51234", "GET", path, "1.1", 200)
    logger.info('%s - "%s %s HTTP/%s" %d', "203.0.113.9:51234", "GET", f"/api/v1/beneficiaries/{number}", "1.1", 404)
    # Percent-escaped: %3D is an "=" the client encoded, %20 a space.
    logger.info('%s - "%s %s HTTP/%s" %d', "203.0.113.9:1", "GET", f"/x?q=id%3D{number}%20{number}", "1.1", 200)
    lines = buf.getvalue().splitlines()
    masked = mask_id(number)
    assert lines == [
        f'INFO:     203.0.113.9:51234 - "GET /api/v1/beneficiaries?id_number={masked}&today=2026 HTTP/1.1" 200 OK',
        f'INFO:     203.0.113.9:51234 - "GET /api/v1/beneficiaries/{masked} HTTP/1.1" 404 Not Found',
        f'INFO:     203.0.113.9:1 - "GET /x?q=id%3D{masked}%20{masked} HTTP/1.1" 200 OK',
    ]
    err = capsys.readouterr().err
    assert "Logging error" not in err and number not in err


def test_masking_covers_the_formatted_message_whatever_the_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    """Masked before any formatter runs, in the message as formatted: a number given as an int to %d, split
    across two arguments, or inside a mapping argument; and the traceback of a text-format handler."""
    number = factories.id_number()
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger("tests.masking")
    logger.propagate, logger.level = False, logging.INFO
    logger.addHandler(handler)
    try:
        logger.info("as an int %d", int(number[:17] + "0"))
        logger.info("split %s%s", number[:9], number[9:])
        logger.info("mapping %(n)s and %(k)d", {"n": number, "k": 7})
        logger.info("keeps ints %d and %s", 42, None)
        try:
            raise ValueError(f"bad number {number}")
        except ValueError:
            logger.exception("failed for %s", number)
    finally:
        logger.removeHandler(handler)
    out = buf.getvalue()
    assert number not in out and number[:17] not in out
    assert f"as an int {mask_id(number[:17] + '0')}" in out
    assert f"split {mask_id(number)}" in out and f"mapping {mask_id(number)} and 7" in out
    assert "keeps ints 42 and None" in out
    assert f"failed for {mask_id(number)}" in out and f"ValueError: bad number {mask_id(number)}" in out
    assert "Logging error" not in capsys.readouterr().err


# Issue #22: names, birth dates and OCR'd addresses in a world-readable SQLite file.


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual default umask, under which files are created 0644 unless asked otherwise."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_sqlite_database_and_media_are_private_to_the_service_user(tmp_path: Path, umask_022: None) -> None:
    settings = make_settings(tmp_path / "var")  # the embedded default: SQLite under VAR_DIR, media beside it
    ctx = ServiceContext(settings, schema=service.schema.metadata)
    try:
        with ctx.db() as db:
            factories.beneficiary(db, ctx.keyring, name="张秀英")
        ctx.storage.put("sessions/abc/id_card", b"card bytes")
        with ctx.engine.connect() as conn:  # an open connection: the WAL and its index exist now
            conn.exec_driver_sql("SELECT count(*) FROM beneficiaries").scalar()
            db_path = settings.sqlite_path
            companions = [db_path.with_name(db_path.name + s) for s in ("-wal", "-shm")]
            assert all(p.exists() for p in companions)
            assert {p.name: _mode(p) for p in [db_path, *companions]} == {p.name: 0o600 for p in [db_path, *companions]}
    finally:
        ctx.engine.dispose()
    media = settings.effective_media_dir
    assert _mode(media) == 0o700 and _mode(media / "sessions/abc") == 0o700
    assert _mode(media / "sessions/abc/id_card.enc") == 0o600


def test_a_world_readable_database_of_an_earlier_version_is_made_private(tmp_path: Path, umask_022: None) -> None:
    db_path = tmp_path / "old.db"
    make_engine(f"sqlite:///{db_path}").dispose()  # as created before: 0644
    for p in (db_path, tmp_path / "old.db-wal", tmp_path / "old.db-shm"):
        p.touch()
        p.chmod(0o644)
    media = tmp_path / "media"
    media.mkdir(mode=0o755)
    engine = make_engine(f"sqlite:///{db_path}")
    try:
        assert private_sqlite_file(f"sqlite:///{db_path}") == db_path
        assert [_mode(p) for p in (db_path, tmp_path / "old.db-wal", tmp_path / "old.db-shm")] == [0o600] * 3
    finally:
        engine.dispose()
    LocalEncryptedStorage(media, os.urandom(32))
    assert _mode(media) == 0o700
    assert private_sqlite_file("sqlite://") is None and private_sqlite_file("sqlite:///:memory:") is None


def test_a_database_error_does_not_carry_the_personal_data_it_was_writing(tmp_path: Path) -> None:
    """A failed INSERT's error text (logged with its traceback) names the statement, not the name and number."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE people (phone TEXT PRIMARY KEY, name TEXT)"))
        conn.execute(text("INSERT INTO people VALUES (:p, :n)"), {"p": "13912345678", "n": "王秀英"})
    with pytest.raises(IntegrityError) as info, engine.begin() as conn:
        conn.execute(text("INSERT INTO people VALUES (:p, :n)"), {"p": "13912345678", "n": "王秀英"})
    assert "13912345678" not in str(info.value) and "王秀英" not in str(info.value)
    assert "INSERT INTO people" in str(info.value)
    engine.dispose()
