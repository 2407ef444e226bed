"""Console test set-up: staff accounts of every role, a logged-in browser-like client, and review cases made
by the real pipeline from real media (a card around a real selfie video's face, and that video).

The bureau policy of these tests is strict about passive liveness (pass threshold 0.95 plus the default
0.05 review margin), so the real live video lands in the review queue as a borderline SPOOF_SUSPECTED case,
exactly as a borderline session would in production.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from pipelines.decision.rules import DecisionConfig
from pipelines.decision.runner import Certifier
from pipelines.id_card.synthetic import CardFields
from service.certification import processing
from service.certification.context import ServiceContext
from service.certification.models import Certification, CertSession, Channel, SessionState, UploadKind
from service.certification.sessions import create_session, upload
from service.features.console.alt_cert import certify_alternative
from service.features.console.auth import Role, hash_password
from service.features.console.models import StaffUser
from service.infra.clock import local_today
from tests.service import factories
from tests.service.certifiers import RememberingCertifier
from tests.service.conftest import ADMIN
from tests.service.media import LIVE_VIDEO, card_for_video

PASSWORD = "correct-horse-battery"
USERS = {
    "rev1": Role.REVIEWER,
    "rev2": Role.REVIEWER,
    "sup1": Role.SUPERVISOR,
    "sup2": Role.SUPERVISOR,
    "admin": Role.ADMIN,
}
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass(frozen=True)
class Sample:
    card: bytes
    fields: CardFields
    video: bytes


@pytest.fixture(scope="session")
def sample(data_dir: Path) -> Sample:
    card, fields = card_for_video(data_dir, LIVE_VIDEO)
    return Sample(card, fields, (data_dir / LIVE_VIDEO).read_bytes())


@pytest.fixture(scope="session")
def strict_certifier() -> Certifier:
    # Pass line 0.95 and a review margin up to 1.0: every live sample's passive score lands in the review band.
    # The real pipeline, each distinct card and video run once (tests/service/certifiers.py).
    return RememberingCertifier(config=DecisionConfig(passive_pass_threshold=0.95, passive_review_margin=0.05))


@functools.cache
def _hash() -> str:
    # argon2 is slow on purpose: hashed once per test session, verified at every login.
    return hash_password(PASSWORD)


@pytest.fixture
def staff_users(ctx: ServiceContext) -> dict[str, int]:
    ids: dict[str, int] = {}
    with ctx.db() as db:
        for name, role in USERS.items():
            user = StaffUser(username=name, display_name=f"{name}-姓名", role=role.value, password_hash=_hash())
            db.add(user)
            db.flush()
            ids[name] = user.id
    return ids


@pytest.fixture
def app_client(ctx: ServiceContext) -> Iterator[TestClient]:
    from service.adapters.http.app import create_app

    with TestClient(create_app(ctx=ctx)) as c:
        yield c


def csrf_of(html: str) -> str:
    m = CSRF_RE.search(html)
    if m is None:
        raise AssertionError("no CSRF token on the page")
    return m.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Log in like a browser (login page, then the form). Returns the session's CSRF token."""
    page = client.get("/console/login")
    r = client.post("/console/login", data={"username": username, "password": password, "csrf": csrf_of(page.text)})
    assert r.status_code == 200 and "审核队列" in r.text, r.text[:500]
    return csrf_of(r.text)


def api_settle(client: TestClient, sid: str, decision: str) -> tuple[int, str]:
    """The operator API's review decision on a case: (HTTP status, the error's code or "")."""
    r = client.post(
        f"/api/v1/sessions/{sid}/review", json={"decision": decision, "reviewer": "ops-desk"}, headers=ADMIN
    )
    return r.status_code, r.json().get("error", {}).get("code", "") if r.status_code != 200 else ""


def new_client(ctx_client: TestClient) -> TestClient:
    """Another browser on the same app (its own cookie jar)."""
    return TestClient(ctx_client.app)


def make_case(
    ctx: ServiceContext,
    certifier: Certifier,
    sample: Sample,
    channel: Channel = Channel.SELF,
    video: bytes | None = None,
) -> tuple[str, int]:
    """A suspended beneficiary and one session through the real upload and worker path: (session id,
    beneficiary id)."""
    with ctx.db() as db:
        b = factories.beneficiary(
            db,
            ctx.keyring,
            id_number=sample.fields.id_number,
            name=sample.fields.name,
            status="suspended",
            valid_until=dt.date(2025, 1, 31),
            suspended_on=dt.date(2025, 2, 1),
        )
        new = create_session(db, ctx, b, channel, consent=False, actor="test")
        s = new.session
        upload(db, ctx, s, UploadKind.ID_CARD, sample.card, "image/jpeg", uuid.uuid4().hex)
        upload(db, ctx, s, UploadKind.VIDEO, video or sample.video, "video/webm", uuid.uuid4().hex, nonce=s.nonce)
        sid, bid = s.id, b.id
    worker = "console-test"
    assert processing.claim(ctx, sid, worker) == sid
    assert processing.process(ctx, certifier, sid, worker)
    return sid, bid


@pytest.fixture
def case(
    ctx: ServiceContext, staff_users: dict[str, int], strict_certifier: Certifier, sample: Sample
) -> tuple[str, int]:
    """A borderline review case made by the real pipeline, the staff accounts in place: (session id, person id)."""
    return make_case(ctx, strict_certifier, sample)


def revoke_by_two(client: TestClient, action: str, form: dict[str, str], second: str = "sup2") -> Response:
    """A revocation from the person's page as the console takes it (docs/security.md, Part BK): `client`, logged in
    as a supervisor, asks (`form` with its CSRF token); supervisor `second`, in a browser of their own, confirms
    with the same reason. The confirmation's answer."""
    asked = client.post(action, data=form)
    assert asked.status_code == 200 and "须由另一位主管确认" in asked.text, asked.text[:500]
    other = new_client(client)
    confirmed: Response = other.post(action, data={**form, "csrf": login(other, second), "note": "复核属实"})
    return confirmed


def certified_at_counter(ctx: ServiceContext) -> tuple[int, int]:
    """A person (济南, region 370102) certified at the counter five days ago: (person id, certification id)."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        alt = certify_alternative(db, ctx, b, "counter", local_today(ctx.settings) - dt.timedelta(days=5), None, {})
        cid = db.scalars(select(Certification.id).where(Certification.session_id == alt.session_id)).one()
        return b.id, cid


def revoke_form(
    csrf: str, reason: str = "impersonation", note: str = "家属持老人照片认证，老人已于上月去世"
) -> dict[str, str]:
    """The person page's revocation form (reason code and the supervisor's note) with its CSRF token."""
    return {"csrf": csrf, "reason": reason, "note": note}


class PoisonCertifier:
    """The models fail on this input the same way every time (a crafted upload that crashes the worker)."""

    def run(self, *_args: object) -> object:
        raise ValueError("operands could not be broadcast together with shapes (480,640,3) (3,)")


def failed_case(ctx: ServiceContext, sample: Sample, channel: Channel) -> tuple[str, int]:
    """A case whose job failed: a real upload, and the worker's every attempt crashing on it until it gives up
    (state `failed`, no pipeline result, the video kept): (session id, person id)."""
    ctx.settings.workers.job_retry_backoff_s = 0
    poison = cast(Certifier, PoisonCertifier())
    sid, bid = make_case(ctx, poison, sample, channel=channel)
    for _ in range(ctx.settings.workers.job_max_attempts - 1):
        assert processing.claim(ctx, sid, "console-test") == sid
        assert processing.process(ctx, poison, sid, "console-test")
    failed = factories.update(ctx, CertSession, sid)
    assert failed.state == SessionState.FAILED and failed.result is None and failed.video_key is not None
    return sid, bid
