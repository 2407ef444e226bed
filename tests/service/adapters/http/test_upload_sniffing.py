"""Uploads are typed by their bytes, not their label: `curl -F file=@card.jpg` (sent as
application/octet-stream) uploads a JPEG, an MP4 or a WebM, and a file that is none of the accepted types is
refused with a reason code and a detail naming what it is (pipelines/sniff.py, called by
service.certification.sessions.upload
for the API and the H5 pages alike)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipelines.sniff import accepted_type, sniff
from service.certification.context import ServiceContext
from service.certification.models import CertSession
from tests.service import factories
from tests.service.adapters.http.helpers import beneficiary_with_number, open_session, put_card, put_video
from tests.service.media import LIVE_VIDEO

OCTET = "application/octet-stream"


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("word/document.xml", "<w:document/>")
    return buf.getvalue()


def test_octet_stream_card_and_video_are_accepted_by_content(
    client: TestClient, ctx: ServiceContext, data_dir: Path
) -> None:
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    card = (data_dir / "idcard/synthetic/card_003.jpg").read_bytes()
    r = put_card(client, s, card, ctype=OCTET)
    assert r.status_code == 200, r.text
    r = put_video(client, s, (data_dir / LIVE_VIDEO).read_bytes(), ctype=OCTET)
    assert r.status_code == 200 and r.json()["state"] == "queued", r.text
    with ctx.db() as db:
        row = db.get(CertSession, s["session_id"])
        assert row is not None and row.video_content_type == sniff((data_dir / LIVE_VIDEO).read_bytes()).mime


@pytest.mark.parametrize(
    ("kind", "data", "named"),
    [
        ("card", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "a PDF document"),
        ("card", _zip(), "a ZIP archive"),
        ("card", b"GIF89a" + b"\0" * 64, "a GIF image (image/gif); accepted: image/jpeg, image/png, image/webp"),
        ("video", _zip(), "a ZIP archive"),
        ("video", b"\xff\xd8\xff\xe0" + b"\0" * 64, "a JPEG image (image/jpeg), not a video"),
    ],
)
def test_content_of_no_accepted_type_is_refused_naming_it(
    client: TestClient, ctx: ServiceContext, kind: str, data: bytes, named: str
) -> None:
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    r = put_card(client, s, data, ctype="image/jpeg") if kind == "card" else put_video(client, s, data, "video/mp4")
    assert r.status_code == 415, r.text
    error = r.json()["error"]
    assert error["code"] == "MEDIA_UNSUPPORTED" and error["message"] == "文件格式不支持"
    assert named in error["detail"] and "declared" in error["detail"]


def test_sniff_names_the_real_files(data_dir: Path) -> None:
    assert sniff((data_dir / "idcard/synthetic/card_000.jpg").read_bytes()).mime == "image/jpeg"
    mp4s = sorted((data_dir / "videos").glob("*.mp4"))
    assert mp4s and all(sniff(p.read_bytes()[:64]).mime in ("video/mp4", "video/quicktime") for p in mp4s)
    assert sniff(b"").name == "an empty file" and sniff(b"hello\n").mime == "text/plain"
    assert accepted_type(b"\x1a\x45\xdf\xa3" + b"\0" * 40, "video", ["video/webm"]) == "video/webm"
