"""Found by review of the media key rotation (docs/security.md Part AE, "Found by review"): a mistyped secret
setting echoed into errors, a rekey that overwrote or deleted a concurrent write of the live service, and a rekey
that ended in a traceback on one object it could not read or write."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

import service.schema
from service.adapters.cli import main
from service.adapters.cli.common import EXIT_FAILED, EXIT_UNAVAILABLE
from service.certification.context import ServiceContext
from service.certification.rekey import reseal_media
from service.infra.config import SECRET_SETTINGS, Settings, settings_from_flat, settings_variables
from service.infra.storage import LocalEncryptedStorage, Sealer, StorageFullError
from service.infra.storage_s3 import S3EncryptedStorage, S3Location, S3Options, make_client
from tests.service.servers import s3_server

ROOT = Path(__file__).resolve().parents[2]


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def _secret_text() -> str:
    return b64(os.urandom(31))  # a real key one byte short: a copy-paste cut


def _bad_values(secret: str) -> dict[str, str]:
    """One value of each secret setting that the settings refuse, each carrying `secret`."""
    return {
        "PENSION_CERT_MEDIA_KEY": secret,
        "PENSION_CERT_MEDIA_KEYS_PREVIOUS": json.dumps([b64(os.urandom(32)), secret]),
        "PENSION_CERT_MEDIA_KEYS_PREVIOUS ": secret,  # bare, as MEDIA_KEY is written (not JSON)
        "PENSION_CERT_API_KEYS": secret,
        "PENSION_CERT_ADMIN_API_KEYS": f'["ok", {int.from_bytes(secret.encode()[:12])}]',  # an entry not a string
        "PENSION_CERT_WECHAT_ENCODING_AES_KEY": secret,
    }


def _shown(secret: str, text: str) -> bool:
    number = str(int.from_bytes(secret.encode()[:12]))  # the ADMIN_API_KEYS entry
    return any(s[i : i + 8] in text for s in (secret, number) for i in range(len(s) - 7))


@pytest.mark.parametrize("variable", sorted(_bad_values("x")))
def test_a_bad_secret_setting_never_appears_in_the_cli_or_the_error(variable: str, tmp_path: Path) -> None:
    """A mistyped PENSION_CERT_MEDIA_KEYS_PREVIOUS printed nearly the whole previous key: the CLI's settings line
    echoed `(got '…')` of the input and pydantic's error carried `input_value=`. No 8 characters of it now appear
    in the real CLI's stderr or in the raised error."""
    secret = _secret_text()
    name, value = variable.strip(), _bad_values(secret)[variable]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PENSION_CERT_")}
    env |= {"PENSION_CERT_VAR_DIR": str(tmp_path), name: value}
    cmd = [sys.executable, "-m", "service.adapters.cli", "rekey", "--check"]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert run.returncode == 4 and name in run.stderr, run.stderr
    assert not _shown(secret, run.stderr + run.stdout) and "Traceback" not in run.stderr
    with pytest.MonkeyPatch.context() as mp:
        for k in [k for k in os.environ if k.startswith("PENSION_CERT_")]:
            mp.delenv(k)
        mp.setenv(name, value)
        with pytest.raises(Exception) as raised:
            Settings().validate_secrets()
    assert not _shown(secret, str(raised.value) + repr(raised.value))


def test_every_secret_looking_setting_is_a_secret_and_its_group_hides_inputs() -> None:
    """The one list (config.SECRET_SETTINGS): every key, secret, token or URL that may carry a password is on it,
    and pydantic leaves the input out of the errors of every group holding one."""
    for variable, (owner, _name) in settings_variables().items():
        secret_like = any(w in variable for w in ("KEY", "SECRET", "TOKEN", "PASSWORD")) or variable.endswith(
            ("DATABASE_URL", "BROKER_URL", "REDIS_URL")
        )
        # A rate ("20000/minute") and a lifetime in seconds, not a key or a token.
        if secret_like and not variable.endswith(("RATE_LIMIT_API_KEY", "TOKEN_TTL_S")):
            assert variable in SECRET_SETTINGS, variable
        if variable in SECRET_SETTINGS:
            assert owner.model_config.get("hide_input_in_errors"), owner


# -- the rekey and a live write of the service ---------------------------------------------------------------------


@pytest.fixture
def live_write_after_the_read(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], None]:
    """Between the rekey's read of an object and its write, the service writes the same key anew (a retaken card,
    sealed with the current key): `arm(store)` makes the next ``Sealer.resealed`` do that through ``store``."""

    def arm(live: Any) -> None:
        real = Sealer.resealed

        def racing(self: Sealer, key: str, blob: bytes) -> bytes | None:
            out = real(self, key, blob)
            live.put(key, b"RETAKEN card")
            monkeypatch.setattr(Sealer, "resealed", real)
            return out

        monkeypatch.setattr(Sealer, "resealed", racing)

    return arm


def test_a_live_write_between_the_rekey_read_and_its_rename_is_kept(
    tmp_path: Path, live_write_after_the_read: Callable[[Any], None]
) -> None:
    """The rekey replaced the file with the old card sealed anew: the card retaken meanwhile was lost."""
    old, new = os.urandom(32), os.urandom(32)
    LocalEncryptedStorage(tmp_path, old).put("sessions/s1/id_card", b"FIRST card")
    live = LocalEncryptedStorage(tmp_path, new, [old])
    live_write_after_the_read(live)
    assert LocalEncryptedStorage(tmp_path, new, [old]).reseal("sessions/s1/id_card") is False
    assert LocalEncryptedStorage(tmp_path, new).get("sessions/s1/id_card") == b"RETAKEN card"
    assert [p.name for p in (tmp_path / "sessions/s1").iterdir()] == ["id_card.enc"]  # no temporary file left


@pytest.fixture
def versioned() -> Iterator[tuple[Any, S3Options]]:
    with s3_server() as server:
        options = S3Options(server.endpoint, "us-east-1", "test", "test")
        raw = make_client(options)
        raw.create_bucket(Bucket="media")
        raw.put_bucket_versioning(Bucket="media", VersioningConfiguration={"Status": "Enabled"})
        yield raw, options


def _versions(raw: Any, key: str) -> list[str]:
    listed = raw.list_object_versions(Bucket="media", Prefix=f"p/{key}.enc")
    return [v["VersionId"] for v in listed.get("Versions", [])]


@pytest.mark.parametrize("sealed_with", ["previous key", "current key"])
def test_a_live_write_between_the_rekey_get_and_its_put_is_kept_in_a_bucket(
    versioned: tuple[Any, S3Options], live_write_after_the_read: Callable[[Any], None], sealed_with: str
) -> None:
    """The rekey PUT the old card over a card retaken after its GET, and on a versioned bucket deleted every
    version but its own: the retaken card's among them, even when the object was already on the current key."""
    raw, options = versioned
    old, new = os.urandom(32), os.urandom(32)
    location, key = S3Location("media", "p"), "sessions/s2/id_card"
    S3EncryptedStorage(location, old if sealed_with == "previous key" else new, options).put(key, b"FIRST card")
    live = S3EncryptedStorage(location, new, options, previous_keys=[old])
    live_write_after_the_read(live)
    assert S3EncryptedStorage(location, new, options, previous_keys=[old]).reseal(key) is False
    assert S3EncryptedStorage(location, new, options).get(key) == b"RETAKEN card"
    assert len(_versions(raw, key)) == 2  # the one read stays too: nothing was rewritten over it


def test_in_a_bucket_only_the_versions_older_than_the_one_read_go(
    versioned: tuple[Any, S3Options], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-sealed, the versions up to the one read are deleted; one the service put after the rekey's PUT stays."""
    raw, options = versioned
    old, new = os.urandom(32), os.urandom(32)
    location, key = S3Location("media", "p"), "sessions/s3/video"
    first = S3EncryptedStorage(location, old, options)
    first.put(key, b"take 1")
    first.put(key, b"take 2")
    store = S3EncryptedStorage(location, new, options, previous_keys=[old])
    real = store._client.put_object

    def then_live(**kw: Any) -> Any:
        done = real(**kw)
        S3EncryptedStorage(location, new, options).put(key, b"take 3")  # after the rekey's PUT
        return done

    monkeypatch.setattr(store._client, "put_object", then_live)
    assert store.reseal(key) is True
    assert S3EncryptedStorage(location, new, options).get(key) == b"take 3"
    assert len(_versions(raw, key)) == 2  # take 3 and the re-sealed take 2; take 2 and take 1 on the old key gone


# -- an object the rekey cannot read or write ----------------------------------------------------------------------


def _rekey_cli(var_dir: Path, new: bytes, old: bytes) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PENSION_CERT_")}
    env |= {
        "PENSION_CERT_VAR_DIR": str(var_dir),
        "PENSION_CERT_MEDIA_KEY": b64(new),
        "PENSION_CERT_MEDIA_KEYS_PREVIOUS": json.dumps([b64(old)]),
    }
    cmd = [sys.executable, "-m", "service.adapters.cli", "rekey"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def test_a_stray_file_in_the_media_folder_is_reported_and_the_rekey_goes_on(tmp_path: Path) -> None:
    """`sessions/s1/video copy.enc` (a copy made beside a video) ended the rekey in a traceback, and every rerun
    stopped on it again: it is now counted as failed, named in the report, and the rest is re-sealed."""
    old, new = os.urandom(32), os.urandom(32)
    ctx = ServiceContext(settings_from_flat(var_dir=tmp_path, media_key=b64(old)), schema=service.schema.metadata)
    ctx.storage.put("sessions/s1/video", b"v")
    ctx.storage.put("sessions/s2/video", b"w")
    (ctx.settings.effective_media_dir / "sessions/s1/video copy.enc").write_bytes(b"x" * 40)
    ctx.engine.dispose()
    run = _rekey_cli(tmp_path, new, old)
    assert run.returncode == EXIT_FAILED and "Traceback" not in run.stderr, run.stderr
    media = json.loads(run.stdout)["media"]
    assert (media["resealed"], media["failed"], media["failed_ids"]) == (2, 1, ["sessions/s1/video copy"])
    assert LocalEncryptedStorage(ctx.settings.effective_media_dir, new).get("sessions/s2/video") == b"w"


def test_an_object_the_bucket_refuses_is_reported_and_the_rekey_goes_on(
    ctx: ServiceContext, versioned: tuple[Any, S3Options], monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 AccessDenied on one object (a bucket policy, an object lock) stopped the run there with a traceback."""
    _raw, options = versioned
    old, new = os.urandom(32), os.urandom(32)
    location = S3Location("media", "p")
    for n in range(3):
        S3EncryptedStorage(location, old, options).put(f"sessions/s{n}/video", b"v")
    store = ctx.storage = S3EncryptedStorage(location, new, options, previous_keys=[old])
    real = store._client.get_object

    def denied(**kw: Any) -> Any:
        if kw["Key"] == "p/sessions/s1/video.enc":
            raise ClientError({"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "Get")
        return real(**kw)

    monkeypatch.setattr(store._client, "get_object", denied)
    counts = reseal_media(ctx, 10, True, {"os_user": "test"}).as_dict()
    assert (counts["resealed"], counts["failed"], counts["failed_ids"]) == (2, 1, ["sessions/s1/video"])


def test_a_full_disk_stops_the_rekey_with_one_line_and_exit_5(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = os.urandom(32), os.urandom(32)
    ctx = ServiceContext(settings_from_flat(var_dir=tmp_path, media_key=b64(old)), schema=service.schema.metadata)
    ctx.storage.put("sessions/s1/video", b"v")
    ctx.engine.dispose()
    for k in [k for k in os.environ if k.startswith("PENSION_CERT_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("PENSION_CERT_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("PENSION_CERT_MEDIA_KEY", b64(new))
    monkeypatch.setenv("PENSION_CERT_MEDIA_KEYS_PREVIOUS", json.dumps([b64(old)]))

    def full(self: Any, key: str, write: bool = True) -> bool:
        raise StorageFullError(f"no space left for {key!r}: No space left on device")

    monkeypatch.setattr(LocalEncryptedStorage, "reseal", full)
    assert main(["rekey"]) == EXIT_UNAVAILABLE
    err = capsys.readouterr().err
    assert "STORAGE_FULL" in err and len(err.strip().splitlines()) == 1, err
