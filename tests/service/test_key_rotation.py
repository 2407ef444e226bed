"""Rotating the media key (docs/operations.md, "Rotating the media key"; docs/security.md Part AE): the key that
replaced it still opens what it sealed (PENSION_CERT_MEDIA_KEYS_PREVIOUS), and `pension-cert rekey` seals every
encrypted field and media object anew with the current key, in batches, audited, resumable after an interruption,
on SQLite and PostgreSQL, on a folder and in a bucket. Before, changing PENSION_CERT_MEDIA_KEY lost every stored ID
number, face template, card, video and audit anchor."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import select

import service.schema
from service.adapters.cli.rekey_cmd import sealed_columns
from service.certification.audit_anchor import check_anchors, write_anchor
from service.certification.context import ServiceContext
from service.certification.models import AuditEntry, Beneficiary
from service.certification.rekey import reseal_column, reseal_media
from service.features.console.audit_chain import record
from service.features.proxy.models import CLAIM_FIELD, ProxyClaim, ProxyOperator
from service.features.proxy.operators import load_template, store_template
from service.infra.config import DEV_MEDIA_KEY, InsecureSettingsError, settings_from_flat
from service.infra.security import Keyring
from service.infra.storage import LocalEncryptedStorage, MediaStorage, StorageError, StorageUnavailableError
from service.infra.storage_s3 import S3EncryptedStorage, S3Location, S3Options, make_client
from tests.service import factories
from tests.service.servers import s3_server

ROOT = Path(__file__).resolve().parents[2]
# `encrypt_field(value, context)`, the value possibly a call chain (`tpl.embedding.astype(np.float32).hex()`).
ENCRYPT_CALL = re.compile(r"encrypt_field\(\s*[^()]*(?:\([^()]*\)[^()]*)*,\s*([\w.\"]+)\s*\)")
WHO = {"os_user": "test"}
NONE_FAILED = {"failed": 0, "failed_ids": []}


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def test_a_field_sealed_with_a_previous_key_still_opens_and_is_resealed_with_the_current_one() -> None:
    old, new = os.urandom(32), os.urandom(32)
    token = Keyring(old, "s").encrypt_field("110101195001011234", "beneficiary.id_number")
    with pytest.raises(InvalidTag):  # the key changed alone: the number is lost
        Keyring(new, "s").decrypt_field(token, "beneficiary.id_number")
    ring = Keyring(new, "s", [old])
    assert ring.decrypt_field(token, "beneficiary.id_number") == "110101195001011234"
    resealed = ring.reseal_field(token, "beneficiary.id_number")
    assert resealed is not None and Keyring(new, "s").decrypt_field(resealed, "beneficiary.id_number").endswith("1234")
    assert ring.reseal_field(resealed, "beneficiary.id_number") is None  # current: nothing to do
    # New writes use the current key; the associated data still binds a field to its column.
    assert Keyring(new, "s").decrypt_field(ring.encrypt_field("x", "c"), "c") == "x"
    with pytest.raises(InvalidTag):
        ring.decrypt_field(token, "beneficiary.template")


def test_a_media_object_sealed_with_a_previous_key_opens_and_is_replaced_whole(tmp_path: Path) -> None:
    old, new = os.urandom(32), os.urandom(32)
    LocalEncryptedStorage(tmp_path, old).put("sessions/a/video", b"video bytes")
    with pytest.raises(StorageError, match="fails authentication"):
        LocalEncryptedStorage(tmp_path, new).get("sessions/a/video")
    store = LocalEncryptedStorage(tmp_path, new, [old])
    assert store.get("sessions/a/video") == b"video bytes"
    assert store.reseal("sessions/a/video", write=False) and store.reseal("sessions/a/video")
    assert LocalEncryptedStorage(tmp_path, new).get("sessions/a/video") == b"video bytes"
    assert not store.reseal("sessions/a/video") and not store.reseal("sessions/gone/video")


def test_a_reseal_killed_before_its_rename_leaves_the_old_object_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = os.urandom(32), os.urandom(32)
    LocalEncryptedStorage(tmp_path, old).put("sessions/a/id_card", b"card")
    store = LocalEncryptedStorage(tmp_path, new, [old])

    def killed(*_args: Any) -> None:
        raise OSError(5, "killed")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(StorageError):
        store.reseal("sessions/a/id_card")
    monkeypatch.undo()
    assert LocalEncryptedStorage(tmp_path, old).get("sessions/a/id_card") == b"card"  # untouched
    assert store.reseal("sessions/a/id_card") and LocalEncryptedStorage(tmp_path, new).get("sessions/a/id_card")


def test_the_previous_keys_setting() -> None:
    old = b64(os.urandom(32))
    s = settings_from_flat(env="development", media_keys_previous=[old, DEV_MEDIA_KEY])
    assert s.previous_media_keys_bytes == (base64.b64decode(old), base64.b64decode(DEV_MEDIA_KEY))
    with pytest.raises(ValueError, match="entry 2 is not base64 of exactly 32 bytes"):
        settings_from_flat(media_keys_previous=[old, b64(b"short")])
    # Outside development the public key never sealed anything: opening with it is refused like using it.
    test = settings_from_flat(
        env="test", media_key=b64(os.urandom(32)), signing_key="x" * 40, api_keys=["k" * 40],
        media_keys_previous=[DEV_MEDIA_KEY],
    )  # fmt: skip
    assert test.dev_default_secrets() == ["PENSION_CERT_MEDIA_KEYS_PREVIOUS"]
    with pytest.raises(InsecureSettingsError, match="PENSION_CERT_MEDIA_KEYS_PREVIOUS"):
        test.validate_secrets()


def test_every_encrypted_field_is_in_the_rekey_list() -> None:
    """Each `encrypt_field(value, context)` call in service/ writes a column `pension-cert rekey` re-seals."""
    contexts = set()
    for path in (ROOT / "service").rglob("*.py"):
        for context in ENCRYPT_CALL.findall(path.read_text()):
            if context != "context":  # the keyring's own re-sealing, the rekey's docstring: a parameter
                contexts.add(CLAIM_FIELD if context == "CLAIM_FIELD" else context.strip('"'))
    assert contexts == {"beneficiary.id_number", "beneficiary.template", "proxy_operator.template"}
    assert {c.context for c in sealed_columns()} == contexts
    assert sorted(c.name for c in sealed_columns()) == [
        "beneficiaries.id_enc",
        "beneficiaries.template",
        "proxy_claims.id_enc",
        "proxy_operator_identities.template",
    ]


# A deployment's sealed data, written with the key in use before the rotation.


def seal_everything(ctx: ServiceContext, people: int = 5) -> dict[str, Any]:
    with ctx.db() as db:
        numbers = [factories.id_number() for _ in range(people)]
        rows = [factories.beneficiary(db, ctx.keyring, id_number=n) for n in numbers]
        factories.enrol_template(ctx.keyring, rows[0], np.ones(4, dtype=np.float32), "m@1")
        op = ProxyOperator(id=str(uuid.uuid4()), channel="wechat", channel_hash=uuid.uuid4().hex, token_hash="-")
        store_template(ctx, op, np.full(4, 0.5, dtype=np.float32), "m@1")
        s = factories.session_row(None)
        db.add_all([op, s])
        db.flush()
        db.add(
            ProxyClaim(
                session_id=s.id, operator_id=op.id, id_hash=ctx.keyring.id_hash(numbers[0]),
                id_enc=ctx.keyring.encrypt_field(numbers[0], CLAIM_FIELD), id_masked="-", name="李",
            )
        )  # fmt: skip
        record(db, "cli", "user.create", "admin", {})
        media = {f"sessions/{uuid.uuid4()}/{kind}": os.urandom(64) for kind in ("id_card", "video") * 2}
        for key, data in media.items():
            ctx.storage.put(key, data)
        write_anchor(db, ctx.storage)
        return {"numbers": dict(zip((r.id for r in rows), numbers, strict=True)), "media": media, "op": op.id}


def rotate(ctx: ServiceContext) -> tuple[bytes, bytes]:
    """The deployment restarted with a new MEDIA_KEY and the old one in MEDIA_KEYS_PREVIOUS (media in the folder)."""
    old, new = ctx.settings.media_key_bytes, os.urandom(32)
    ctx.keyring = Keyring(new, ctx.settings.security.signing_key, [old])
    ctx.storage = LocalEncryptedStorage(ctx.settings.effective_media_dir, new, [old])
    return old, new


def rekey(ctx: ServiceContext, batch: int = 2, write: bool = True) -> dict[str, Any]:
    fields = {c.name: reseal_column(ctx, c, batch, write, WHO).as_dict() for c in sealed_columns()}
    return {"fields": fields, "media": reseal_media(ctx, batch, write, WHO).as_dict()}


def only_current(ctx: ServiceContext, new: bytes, sealed: dict[str, Any], storage: MediaStorage) -> None:
    """Everything opens with the current key alone: the previous one can go."""
    ctx.keyring = Keyring(new, ctx.settings.security.signing_key)
    ctx.storage = storage
    with ctx.db() as db:
        for bid, number in sealed["numbers"].items():
            assert ctx.keyring.decrypt_field(db.get_one(Beneficiary, bid).id_enc, "beneficiary.id_number") == number
        claim = db.scalars(select(ProxyClaim)).one()
        assert ctx.keyring.decrypt_field(claim.id_enc, CLAIM_FIELD) in sealed["numbers"].values()
        assert load_template(ctx, db.get_one(ProxyOperator, sealed["op"])) is not None
        for key, data in sealed["media"].items():
            assert storage.get(key) == data
        assert check_anchors(db, storage).ok


def test_rekey_reseals_every_field_and_object_in_audited_batches(ctx: ServiceContext) -> None:
    sealed = seal_everything(ctx)
    _old, new = rotate(ctx)
    counts = rekey(ctx, batch=2)
    assert counts["fields"]["beneficiaries.id_enc"] == {
        "resealed": 5, "current": 0, "unreadable": 0, "unreadable_ids": [], **NONE_FAILED,
    }  # fmt: skip
    assert [counts["fields"][n]["resealed"] for n in sorted(counts["fields"])] == [5, 1, 1, 1]
    assert counts["media"]["resealed"] == 6  # 4 media, the anchor and the head
    with ctx.db() as db:
        entries = db.scalars(select(AuditEntry).where(AuditEntry.action == "keys.rekey")).all()
        # Batches of 2: 3 entries for the numbers, 1 per other column, 3 for the media objects.
        assert sorted(e.target for e in entries).count("beneficiaries.id_enc") == 3 and len(entries) == 9
        assert sum(e.detail["resealed"] for e in entries) == 14 and entries[0].detail["os_user"] == "test"
    again = rekey(ctx, write=False)  # nothing left: idempotent, and the check says so
    assert all(c["resealed"] == 0 for c in [*again["fields"].values(), again["media"]])
    only_current(ctx, new, sealed, LocalEncryptedStorage(ctx.settings.effective_media_dir, new))


def test_rekey_interrupted_midway_loses_nothing_and_the_rerun_finishes(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    sealed = seal_everything(ctx, people=6)
    old, new = rotate(ctx)
    real, calls = ctx.keyring.reseal_field, []

    def dies_on_the_fourth(token: str, context: str) -> str | None:
        calls.append(context)
        if len(calls) == 4:
            raise KeyboardInterrupt  # the operator's Ctrl-C, a killed process
        return real(token, context)

    monkeypatch.setattr(ctx.keyring, "reseal_field", dies_on_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        reseal_column(ctx, sealed_columns()[0], 3, True, WHO)
    monkeypatch.undo()
    ring = Keyring(new, ctx.settings.security.signing_key)
    with ctx.db() as db:
        stored = [db.get_one(Beneficiary, bid).id_enc for bid in sealed["numbers"]]
    opened_now = [t for t in stored if _opens(ring, t)]
    assert len(opened_now) == 3  # the first batch committed, the second rolled back whole
    assert all(_opens(Keyring(old, "-"), t) for t in stored if t not in opened_now)
    assert rekey(ctx)["fields"]["beneficiaries.id_enc"]["resealed"] == 3  # the rerun does the rest only
    only_current(ctx, new, sealed, LocalEncryptedStorage(ctx.settings.effective_media_dir, new))


def _opens(ring: Keyring, token: str) -> bool:
    try:
        ring.decrypt_field(token, "beneficiary.id_number")
    except InvalidTag:
        return False
    return True


def test_what_no_key_opens_is_reported_and_left_alone(ctx: ServiceContext) -> None:
    seal_everything(ctx, people=1)
    with ctx.db() as db:
        victim = db.scalars(select(Beneficiary)).first()
        assert victim is not None
        victim.id_enc = Keyring(os.urandom(32), "-").encrypt_field("1", "beneficiary.id_number")
        victim_id, victim_enc = victim.id, victim.id_enc
    ctx.storage.put("sessions/x/video", b"v")
    (ctx.settings.effective_media_dir / "sessions/x/video.enc").write_bytes(os.urandom(64))  # tampered
    rotate(ctx)
    counts = rekey(ctx)
    assert counts["fields"]["beneficiaries.id_enc"]["unreadable_ids"] == [str(victim_id)]
    assert counts["media"]["unreadable_ids"] == ["sessions/x/video"]
    with ctx.db() as db:
        assert db.get_one(Beneficiary, victim_id).id_enc == victim_enc


def test_a_claim_emptied_by_retention_is_left_alone(ctx: ServiceContext) -> None:
    """A relative's unaccepted claim whose number retention emptied (proxy/claim_retention.py) has nothing to
    re-seal: neither re-sealed nor reported unreadable (before the emptying existed, no sealed value was empty)."""
    seal_everything(ctx, people=1)
    with ctx.db() as db:
        claim = db.scalars(select(ProxyClaim)).one()
        claim.id_enc, claim.name = "", ""
    rotate(ctx)
    counts = rekey(ctx)
    assert counts["fields"]["proxy_claims.id_enc"] == {
        "resealed": 0, "current": 0, "unreadable": 0, "unreadable_ids": [], **NONE_FAILED,
    }  # fmt: skip


@pytest.fixture
def bucket() -> Iterator[tuple[Any, S3Options]]:
    with s3_server() as server:
        options = S3Options(server.endpoint, "us-east-1", "test", "test")
        raw = make_client(options)
        raw.create_bucket(Bucket="media")
        raw.put_bucket_versioning(Bucket="media", VersioningConfiguration={"Status": "Enabled"})
        yield raw, options


def test_rekey_in_a_versioned_bucket_drops_the_old_media_versions_and_keeps_the_anchors(
    ctx: ServiceContext, bucket: tuple[Any, S3Options]
) -> None:
    raw, options = bucket
    location = S3Location("media", "p")
    ctx.storage = S3EncryptedStorage(location, ctx.settings.media_key_bytes, options)
    sealed = seal_everything(ctx)
    old, new = rotate(ctx)
    ctx.storage = S3EncryptedStorage(location, new, options, previous_keys=[old])
    counts = rekey(ctx, batch=4)
    assert counts["media"]["resealed"] == 6 and counts["media"]["unreadable"] == 0
    versions = raw.list_object_versions(Bucket="media", Prefix="p/")["Versions"]
    per_key: dict[str, int] = {}
    for v in versions:
        per_key[v["Key"]] = per_key.get(v["Key"], 0) + 1
    # A card or video: one version, sealed with the new key. The anchor and the head keep their old versions
    # (the bucket policy forbids deleting them); each was written twice (the head: at write_anchor, then here).
    assert {k: n for k, n in per_key.items() if "/sessions/" in k} == {f"p/{k}.enc": 1 for k in sealed["media"]}
    assert per_key["p/audit/anchors/000000000001.enc"] == 2
    only_current(ctx, new, sealed, S3EncryptedStorage(location, new, options))


def test_rekey_with_the_bucket_gone_midway_stops_and_the_rerun_finishes(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store stops answering after two objects (exit 5 for the command): those two stay re-sealed and
    audited, the rest still opens with the previous key, and the rerun once the store is back does the rest."""
    with s3_server() as server:
        options = S3Options(server.endpoint, "us-east-1", "test", "test", max_attempts=1, connect_timeout_s=0.5)
        make_client(options).create_bucket(Bucket="media")
        location = S3Location("media", "p")
        ctx.storage = S3EncryptedStorage(location, ctx.settings.media_key_bytes, options)
        sealed = seal_everything(ctx)
        old, new = rotate(ctx)
        store = ctx.storage = S3EncryptedStorage(location, new, options, previous_keys=[old])
        real, calls = store.reseal, []

        def store_gone_after_two(key: str, write: bool = True) -> bool:
            calls.append(key)
            if len(calls) == 3:
                server.kill(keep=True)  # its objects kept, as a real store's disk keeps them
            return real(key, write)

        monkeypatch.setattr(store, "reseal", store_gone_after_two)
        with pytest.raises(StorageUnavailableError):
            reseal_media(ctx, 10, True, WHO)
        with ctx.db() as db:
            entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "keys.rekey")).one()
            assert entry.detail["resealed"] == 2 and entry.detail["through"] == calls[1]
        server.start()
        monkeypatch.undo()
        ctx.storage = S3EncryptedStorage(location, new, options, previous_keys=[old])  # new connections
        # Resumed after the audited key (`--after`): the two done are not read again, the other four are re-sealed.
        rerun = reseal_media(ctx, 10, True, WHO, after=entry.detail["through"]).as_dict()
        assert (rerun["resealed"], rerun["current"]) == (4, 0)
        assert rekey(ctx)["media"] == {
            "resealed": 0,
            "current": 6,
            "unreadable": 0,
            "unreadable_ids": [],
            **NONE_FAILED,
        }
        only_current(ctx, new, sealed, S3EncryptedStorage(location, new, options))


def run_cli(var_dir: Path, key: bytes, previous: list[bytes], *args: str) -> tuple[int, dict[str, Any], str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PENSION_CERT_")},
        "PENSION_CERT_VAR_DIR": str(var_dir),
        "PENSION_CERT_MEDIA_KEY": b64(key),
        "PENSION_CERT_MEDIA_KEYS_PREVIOUS": json.dumps([b64(k) for k in previous]),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "service.adapters.cli", "rekey", *args],
        capture_output=True, text=True, timeout=120, env=env, check=False, cwd=ROOT,
    )  # fmt: skip
    return proc.returncode, json.loads(proc.stdout) if proc.stdout else {}, proc.stderr


def test_the_rekey_command_checks_then_reseals_then_finds_nothing_left(tmp_path: Path) -> None:
    old, new = os.urandom(32), os.urandom(32)
    ctx = ServiceContext(settings_from_flat(var_dir=tmp_path, media_key=b64(old)), schema=service.schema.metadata)
    sealed = seal_everything(ctx, people=3)
    ctx.engine.dispose()
    code, report, err = run_cli(tmp_path, new, [old], "--check")
    assert code == 1 and report["fields"]["beneficiaries.id_enc"]["resealed"] == 3, err  # left: exit 1
    code, report, err = run_cli(tmp_path, new, [old], "--batch", "2")
    assert code == 0 and report["ok"] and report["media"]["resealed"] == 6, err
    code, report, err = run_cli(tmp_path, new, [], "--check")  # the previous key dropped: all current
    assert code == 0 and report["media"] == {
        "resealed": 0,
        "current": 6,
        "unreadable": 0,
        "unreadable_ids": [],
        **NONE_FAILED,
    }
    ctx = ServiceContext(settings_from_flat(var_dir=tmp_path, media_key=b64(new)), schema=service.schema.metadata)
    only_current(ctx, new, sealed, ctx.storage)
    code, _report, err = run_cli(tmp_path, new, [], "--batch", "0")
    assert code == 2 and "--batch" in err
    code, _report, err = run_cli(tmp_path, new, [b"short"])  # a malformed previous key: the settings' exit
    assert code == 4 and "PENSION_CERT_MEDIA_KEYS_PREVIOUS" in err


def test_a_template_re_enrolled_while_the_rekey_ran_is_not_overwritten(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    sealed = seal_everything(ctx, people=1)
    rotate(ctx)
    bid = next(iter(sealed["numbers"]))
    real = ctx.keyring.reseal_field
    fresh = ctx.keyring.encrypt_field(np.zeros(4, dtype=np.float32).tobytes().hex(), "beneficiary.template")

    def re_enrolled_meanwhile(token: str, context: str) -> str | None:
        with ctx.db() as other:  # the worker's accepted certification, between the rekey's read and its write
            other.get_one(Beneficiary, bid).template = fresh.encode()
        return real(token, context)

    monkeypatch.setattr(ctx.keyring, "reseal_field", re_enrolled_meanwhile)
    count = reseal_column(ctx, sealed_columns()[1], 10, True, WHO)
    assert count.resealed == 0 and count.current == 1
    with ctx.db() as db:
        assert db.get_one(Beneficiary, bid).template == fresh.encode()
