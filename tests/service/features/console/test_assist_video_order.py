"""A person's attempts opened in the same instant (a batch, the clock's resolution: one `created_at`), in the request
page's list (assist_video.recent_attempts) and in the purge's batch read of it (`_recent_attempts_of`, through
`videos_awaited`). Before, both ranked by `created_at` alone: such attempts came back in whatever order the database
chose, so the video a manual-review request names by default (the latest machine reject) could differ between the
page, the accept it checks and the purge. Now both rank by `models.newest_first`: opened later, then undecided or
decided later, then the id. SQLite and PostgreSQL (the `ctx` fixture's backends)."""

from __future__ import annotations

import datetime as dt

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, utcnow
from service.features.console import assist
from service.features.console.assist_video import recent_attempts, video_of, videos_awaited
from service.features.console.models import AssistRequest
from tests.service import factories

OPENID = "openid-same-instant"
REASONS = ["CHALLENGE_MISSING_ACTION"]


def _attempts(ctx: ServiceContext) -> tuple[int, int, dict[str, str]]:
    """A person with four attempts opened in one instant, stored in the reverse of the order intended, and an open
    manual-review request naming none (the latest machine reject): (person id, request id, ids by role)."""
    at = utcnow().replace(microsecond=0) - dt.timedelta(hours=1)
    # role: (id, decided_at; None: still being checked)
    made = {
        "earlier": ("ffffffff-0000-4000-8000-000000000001", at + dt.timedelta(minutes=1)),
        "tie_lower_id": ("00000000-0000-4000-8000-000000000002", at + dt.timedelta(minutes=2)),
        "intended": ("aaaaaaaa-0000-4000-8000-000000000003", at + dt.timedelta(minutes=2)),
        "in_flight": ("11111111-0000-4000-8000-000000000004", None),
    }
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, name="周桂芝")
        db.flush()
        for sid, decided in made.values():
            if decided is None:
                s = factories.session_row(b.id, id=sid, state="queued", queued_at=at, created_at=at)
            else:
                s = factories.review_session(b.id, id=sid, decision="reject", reasons=REASONS, decided_at=decided)
                s.created_at = at
            db.add(s)
            db.flush()
        req = assist.submit(db, b, "manual_review", "13800138000", "请看视频", OPENID, "wechat:x")
        db.flush()
        return b.id, req.id, {role: sid for role, (sid, _) in made.items()}


def test_attempts_opened_in_one_instant_are_ranked_alike_on_every_read(ctx: ServiceContext) -> None:
    bid, rid, ids = _attempts(ctx)
    expected = [ids["in_flight"], ids["intended"], ids["tie_lower_id"], ids["earlier"]]
    with ctx.db() as db:
        b, req = db.get(Beneficiary, bid), db.get(AssistRequest, rid)
        assert b is not None and req is not None and req.session_id is None
        for _ in range(3):  # the page, the accept's check, the purge: the same list each time
            listed = recent_attempts(db, bid)
            assert [s.id for s in listed] == expected
            found = video_of(db, req, listed)  # the latest machine reject: the one decided last, then by id
            assert found is not None and found.id == ids["intended"]
        # The purge's batch read ranks them as the page does: the video it keeps is the one the page shows.
        assert videos_awaited(db, ctx, list(ids.values()), utcnow()) == {ids["intended"]}


def test_the_h5_form_reads_the_latest_attempt_as_the_request_page_does(ctx: ServiceContext) -> None:
    """Found by review: the H5 form's own read of the person's latest attempt (requests._reviewed: did staff just
    reject it? then a home visit only) still ranked by `created_at`, then the id. Of two attempts opened in one
    instant, it took the one with the higher id, a machine reject, where the request page and the purge take the
    one decided last, the staff reject: the form offered 人工审核 of a video staff had just refused."""
    from service.features.wechat.h5.requests import Subject, _reviewed

    at = utcnow().replace(microsecond=0) - dt.timedelta(hours=1)
    staff_rejected = "00000000-0000-4000-8000-0000000000aa"  # decided last, the lower id
    machine_rejected = "ffffffff-0000-4000-8000-0000000000bb"
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, name="吴秀兰")
        db.flush()
        later = factories.review_session(
            b.id, id=staff_rejected, decision="reject", reasons=REASONS, decided_at=at + dt.timedelta(minutes=9),
            result={"review": {"decision": "reject", "machine_decision": "review"}},
        )  # fmt: skip
        earlier = factories.review_session(
            b.id, id=machine_rejected, decision="reject", reasons=REASONS, decided_at=at + dt.timedelta(minutes=1)
        )
        for s in (later, earlier):
            s.created_at = at
            db.add(s)
        db.flush()
        assert [s.id for s in recent_attempts(db, b.id)][:1] == [staff_rejected]
        assert _reviewed(db, Subject(b, False, None)).reviewed is True
