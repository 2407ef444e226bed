"""Encryption at rest, keyed ID hashes, log masking and the refusal of development secrets."""

from __future__ import annotations

import base64
import io
import logging
import os
from pathlib import Path

import pytest

from service.config import DEV_MEDIA_KEY, InsecureSettingsError, Settings
from service.security import Keyring, MaskingFilter, install_log_masking, mask_id, mask_text
from service.storage import LocalEncryptedStorage, StorageError


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
    Settings(env="development").validate_secrets()
    with pytest.raises(InsecureSettingsError):
        Settings(env="production").validate_secrets()
    good = Settings(
        env="production",
        media_key=base64.b64encode(os.urandom(32)).decode(),
        signing_key=os.urandom(32).hex(),
        api_keys=[os.urandom(32).hex()],
        admin_api_keys=[os.urandom(32).hex()],
        metrics_token=os.urandom(32).hex(),
    )
    good.validate_secrets()
    with pytest.raises(InsecureSettingsError):
        good.model_copy(update={"media_key": DEV_MEDIA_KEY}).validate_secrets()
    with pytest.raises(InsecureSettingsError):
        Settings(media_key=base64.b64encode(b"short").decode()).validate_secrets()
