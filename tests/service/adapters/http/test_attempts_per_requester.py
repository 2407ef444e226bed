"""Issue #22 item 5 on the API channel and in the rate limiter: failures and session-creation limits are
counted per requester (the API key; the WeChat account of a valid H5 cookie; else the client IP) and, with a
higher cap, per beneficiary, so one requester cannot spend another's attempts at the same person."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.certification import attempts
from service.certification.audit import audit
from service.certification.models import CertSession, Channel, SessionState, utcnow
from service.certification.sessions import create_session, find_beneficiary
from service.features.proxy.models import ProxyOperator, ProxySession, ProxySessionKind
from service.features.wechat.h5 import identity
from service.features.wechat.models import WeChatSessionLink
from tests.service.adapters.http.helpers import beneficiary_with_number
from tests.service.adapters.http.ops import ops_app
from tests.service.adapters.http.test_ratelimit import limited
from tests.service.conftest import ADMIN, API_KEY
from tests.service.factories import id_number

OTHER_KEY = "test-other-channel-key-0001"  # a second channel back-end (say, a bank's counter app)


def reject(app: Any, session_id: str) -> None:
    with app.state.ctx.db() as db:
        s = db.get(CertSession, session_id)
        assert s is not None
        s.state, s.decision, s.decided_at = SessionState.DECIDED, "reject", utcnow()
        db.commit()


def open_as(c: TestClient, key: str, ext: str) -> Any:
    return c.post("/api/v1/sessions", json={"external_id": ext}, headers={"X-API-Key": key})


def test_one_channels_failures_do_not_block_another_channel(tmp_path: Path) -> None:
    app = ops_app(tmp_path, api_keys=[API_KEY, OTHER_KEY], rate_limit_enabled=False)
    ext = beneficiary_with_number(app.state.ctx, id_number())
    with TestClient(app) as c:
        for _ in range(3):
            r = open_as(c, API_KEY, ext)
            assert r.status_code == 201, r.text
            reject(app, r.json()["session_id"])
        refused = open_as(c, API_KEY, ext)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "ATTEMPTS_EXCEEDED"
        assert refused.json()["error"]["staff_review"] is True
        assert open_as(c, OTHER_KEY, ext).status_code == 201  # the other channel's own count is 0
        with app.state.ctx.db() as db:
            bid = db.query(CertSession).first().beneficiary_id  # type: ignore[union-attr]
            f = attempts.failures(db, app.state.ctx, bid, None)
            assert (f.total, f.mine) == (3, 3)  # no requester known: the strict count


def test_the_beneficiary_cap_holds_across_channels(tmp_path: Path) -> None:
    app = ops_app(tmp_path, api_keys=[API_KEY, OTHER_KEY], rate_limit_enabled=False, failures_per_day_beneficiary=4)
    ext = beneficiary_with_number(app.state.ctx, id_number())
    with TestClient(app) as c:
        for key in (API_KEY, API_KEY, OTHER_KEY, OTHER_KEY):
            r = open_as(c, key, ext)
            assert r.status_code == 201, r.text
            reject(app, r.json()["session_id"])
        for key in (API_KEY, OTHER_KEY):  # each has 1 of their 3 left, but the person's cap (4) is reached
            r = open_as(c, key, ext)
            assert r.status_code == 429 and r.json()["error"]["staff_review"] is True, r.text
        staff = c.post("/api/v1/sessions", json={"external_id": ext, "channel": "staff"}, headers=ADMIN)
        assert staff.status_code == 201


@pytest.mark.usefixtures("windows_held")
def test_session_creation_limit_per_beneficiary_is_per_requester(tmp_path: Path) -> None:
    app = ops_app(
        tmp_path, api_keys=[API_KEY, OTHER_KEY], rate_limit_beneficiary="2/hour", rate_limit_beneficiary_all="5/hour"
    )
    ext = beneficiary_with_number(app.state.ctx, id_number())
    with TestClient(app) as c:
        assert [open_as(c, API_KEY, ext).status_code for _ in range(2)] == [201, 201]
        assert limited(open_as(c, API_KEY, ext), "beneficiary")
        assert [open_as(c, OTHER_KEY, ext).status_code for _ in range(2)] == [201, 201]  # its own bucket
        # The refused third try of API_KEY did not count against the person: the operator's first is the 5th.
        assert open_as(c, ADMIN["X-API-Key"], ext).status_code == 201
        assert limited(open_as(c, ADMIN["X-API-Key"], ext), "beneficiary_all")  # 6th counted try at this person


@pytest.mark.usefixtures("windows_held")
def test_h5_session_creation_limit_per_wechat_account(tmp_path: Path) -> None:
    """Without a login the IP is the requester; a valid cookie makes the WeChat account the requester, and a
    forged cookie is only the IP again (it cannot mint fresh buckets)."""
    app = ops_app(tmp_path, rate_limit_beneficiary="2/hour", rate_limit_beneficiary_all="10/hour")
    ctx = app.state.ctx
    form = {"name": "张三", "id_number": id_number(), "consent": True}
    with TestClient(app) as c:
        c.cookies.set(identity.COOKIE, identity.mint(ctx, "openid-attacker"))
        answers = [c.post("/h5/api/sessions", json=form) for _ in range(3)]
        assert [r.status_code for r in answers[:2]] == [404, 404]  # not in the roster (same as a wrong name)
        assert limited(answers[2], "beneficiary")
        c.cookies.set(identity.COOKIE, identity.mint(ctx, "openid-pensioner"))
        assert [c.post("/h5/api/sessions", json=form).status_code for _ in range(2)] == [404, 404]
        c.cookies.set(identity.COOKIE, "openid-forged|9999999999|" + "0" * 64)
        assert [c.post("/h5/api/sessions", json=form).status_code for _ in range(2)] == [401, 401]
        assert limited(c.post("/h5/api/sessions", json=form), "beneficiary")  # the IP's bucket is full now


def test_who_asked_is_read_from_the_operator_the_wechat_link_or_the_audit(tmp_path: Path) -> None:
    """The three records of a session's requester, in that order (a proxy session opened from the H5 pages is
    linked to the WeChat account too: the operator asked for it)."""
    app = ops_app(tmp_path)
    ctx = app.state.ctx
    ext = beneficiary_with_number(ctx, id_number())
    with ctx.db() as db:
        b = find_beneficiary(db, ctx, ext, None)
        op = ProxyOperator(id=str(uuid.uuid4()), channel="wechat", channel_hash="h" * 64, token_hash="t" * 64)
        db.add(op)
        made = {who: create_session(db, ctx, b, Channel.SELF, False, who).session for who in ("a", "b", "c", "d")}
        db.add(ProxySession(session_id=made["a"].id, kind=ProxySessionKind.CERTIFICATION, operator_id=op.id))
        db.add(WeChatSessionLink(session_id=made["a"].id, openid="openid-relative"))
        db.add(WeChatSessionLink(session_id=made["b"].id, openid="openid-self"))
        audit(db, "api:other", "session.update", made["d"].id)  # not the creation: ignored
        for s in made.values():
            s.decision, s.decided_at = "reject", utcnow()
        db.flush()
        who = attempts.requesters(db, ctx, attempts.rejected_today(db, ctx.settings, b.id, utcnow()))
        assert who == {
            made["a"].id: f"operator:{op.id}",
            made["b"].id: attempts.wechat_requester(ctx, "openid-self"),
            made["c"].id: "c",  # the actor of its session.create audit entry
            made["d"].id: "d",
        }
        f = attempts.failures(db, ctx, b.id, attempts.wechat_requester(ctx, "openid-self"))
        assert (f.total, f.mine) == (4, 1)
        left = attempts.attempts_left(db, ctx, b.id, "c")
        assert left == ctx.settings.certification.failures_per_day - 1
