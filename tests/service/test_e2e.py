"""End to end through the real HTTP API and a real worker, with real media from shared data: a card made
around a real selfie video's face (accept), a card of another person (reject), another beneficiary's number
(reject); then the cycle resumes the suspended benefit and the certificate verifies from its QR code."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.infra.config import Settings
from tests.service import factories
from tests.service.adapters.http.helpers import open_session, put_card, put_video
from tests.service.conftest import ADMIN
from tests.service.live import live_service, wait_decided
from tests.service.media import LIVE_VIDEO, card_for_video
from tests.service.test_roster import HEADER

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(
    backend_urls: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Settings]]:
    with live_service(backend_urls, tmp_path_factory.mktemp("e2e")) as svc:
        yield svc


def roster(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerows([HEADER, *rows])
    return buf.getvalue().encode()


def certify(client: TestClient, external_id: str, card: bytes, video: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    s = open_session(client, external_id)
    assert put_card(client, s, card).status_code == 200
    r = put_video(client, s, video)
    assert r.status_code == 200 and r.json()["state"] == "queued", r.text
    return s, wait_decided(client, s)


def test_accept_resumes_benefit_and_issues_verifiable_certificate(
    service: tuple[TestClient, Settings], data_dir: Path
) -> None:
    client, _ = service
    card, fields = card_for_video(data_dir, LIVE_VIDEO)
    row = ["E2E-1", fields.id_number, fields.name, "", "enterprise_pension;nursing_care", "", "2025-01-31"]
    r = client.post("/api/v1/roster", files={"file": ("r.csv", roster([row]), "text/csv")}, headers=ADMIN)
    assert r.json()["created"] == 1
    # Lapsed since January 2025: due soon from the import (a date lapsed before it: ImportTerms.arrival_valid_until),
    # suspended by the run after that window.
    assert r.json()["lapsed_on_import"] == ["E2E-1"]
    window_end = client.get("/api/v1/beneficiaries/E2E-1").json()["valid_until"]
    after = (dt.date.fromisoformat(window_end) + dt.timedelta(days=1)).isoformat()
    assert client.post("/api/v1/cycle/run", params={"today": after}, headers=ADMIN).json()["suspended"] == 1

    s, result = certify(client, "E2E-1", card, (data_dir / LIVE_VIDEO).read_bytes())
    assert result["decision"] == "accept", result
    res = result["result"]
    assert res["scores"]["card_similarity"] >= res["thresholds"]["face_accept"]
    assert res["model_versions"]["recognizer"] and res["liveness"]["passed"] is True
    assert fields.id_number not in str(result)  # stored and returned masked

    b = client.get("/api/v1/beneficiaries/E2E-1").json()
    assert b["status"] == "active" and b["cycle_state"] == "certified" and b["template_enrolled"] is True
    resumed = list(csv.DictReader(io.StringIO(client.get("/api/v1/exports/resumptions.csv", headers=ADMIN).text)))
    assert [(r["external_id"], r["kind"]) for r in resumed] == [("E2E-1", "resumed")]

    headers = {"Authorization": f"Bearer {s['token']}"}
    cert = client.get(f"/api/v1/sessions/{s['session_id']}/certificate", headers=headers).json()
    assert cert["valid_until"] == b["valid_until"]
    png = client.get(f"/api/v1/sessions/{s['session_id']}/certificate.png", headers=headers)
    assert png.headers["content-type"] == "image/png"
    img = cv2.imdecode(np.frombuffer(png.content, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    # OpenCV's classic QRCodeDetector misses about 1 in 10 version-9 codes whatever the rendering (it depends on the
    # payload, so on the day's date); the ArUco-based detector reads every one, as a phone's scanner does.
    url, _, _ = cv2.QRCodeDetectorAruco().detectAndDecode(img)
    assert url == cert["verify_url"]
    public = TestClient(client.app)  # the verification endpoint needs no key
    ok = public.get("/api/v1/certificates/verify", params={"code": cert["code"]})
    assert ok.status_code == 200 and ok.json()["valid"] is True and ok.json()["valid_until"] == cert["valid_until"]
    forged = cert["code"][:-1] + ("0" if cert["code"][-1] != "0" else "1")
    bad = public.get("/api/v1/certificates/verify", params={"code": forged})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "CERTIFICATE_INVALID"
    hostile = public.get("/api/v1/certificates/verify", params={"code": cert["code"][:-32] + "证" * 32})
    assert hostile.status_code == 400 and hostile.json()["error"]["code"] == "CERTIFICATE_INVALID"


def test_card_of_another_person_is_rejected(service: tuple[TestClient, Settings], data_dir: Path) -> None:
    client, _ = service
    with (data_dir / "idcard/synthetic_labels.csv").open(encoding="utf-8") as fh:
        label = next(csv.DictReader(fh))  # card_000: an LFW portrait
    row = ["E2E-2", label["id_number"], label["name"], "", "resident_pension", "", ""]
    client.post("/api/v1/roster", files={"file": ("r.csv", roster([row]), "text/csv")}, headers=ADMIN)
    # The same real video re-muxed with trailing bytes: another file for the exact-duplicate check.
    video = (data_dir / LIVE_VIDEO).read_bytes() + b"\0" * 16 + b"copy-2"
    _, result = certify(client, "E2E-2", (data_dir / "idcard/synthetic/card_000.jpg").read_bytes(), video)
    assert result["decision"] == "reject" and "FACE_MISMATCH" in result["reasons"]
    b = client.get("/api/v1/beneficiaries/E2E-2").json()
    assert b["last_certified_on"] is None and b["template_enrolled"] is False  # a reject certifies nobody


def test_card_number_of_another_beneficiary_is_rejected(service: tuple[TestClient, Settings], data_dir: Path) -> None:
    client, _ = service
    row = ["E2E-3", factories.id_number(), "王桂兰", "", "survivor_pension", "", ""]
    client.post("/api/v1/roster", files={"file": ("r.csv", roster([row]), "text/csv")}, headers=ADMIN)
    card, _ = card_for_video(data_dir, LIVE_VIDEO)
    video = (data_dir / LIVE_VIDEO).read_bytes() + b"\0" * 16 + b"copy-3"
    _, result = certify(client, "E2E-3", card, video)
    assert result["decision"] == "reject" and result["reasons"] == ["ID_NUMBER_MISMATCH"]
