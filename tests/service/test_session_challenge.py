"""A person's challenge is drawn again only after a video was sent: opening and dropping sessions until a
challenge comes up that a recording made in advance performs costs an attempt each time, not nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import update

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, CertSession, Channel, utcnow
from service.certification.sessions import create_session
from service.infra.config import Settings
from tests.service import factories
from tests.service.conftest import make_settings


@pytest.fixture
def settings(tmp_path: Path, backend_urls: dict[str, str]) -> Settings:
    """The service's own random challenge (the other tests fix one to match their videos)."""
    return make_settings(tmp_path, database_url=backend_urls["database_url"], challenge_actions=[])


def _open(ctx: ServiceContext, b_id: int, video: bool = False) -> tuple[str, ...]:
    with ctx.db() as db:
        b = db.get(Beneficiary, b_id)
        assert b is not None
        s = create_session(db, ctx, b, Channel.SELF, False, "test").session
        if video:
            s.video_key = f"sessions/{s.id}/video"  # the attempt was made
        return tuple(s.actions)


def test_the_challenge_stays_until_a_video_is_sent(ctx: ServiceContext) -> None:
    with ctx.db() as db:
        b_id = factories.beneficiary(db, ctx.keyring).id
        other_id = factories.beneficiary(db, ctx.keyring).id
    first = _open(ctx, b_id)
    assert 2 <= len(first) <= 3
    assert {_open(ctx, b_id) for _ in range(15)} == {first}  # dropping sessions draws nothing new
    # Each session that received a video is an attempt: the next one is drawn afresh (80 possible challenges,
    # so 15 draws all equal to one would happen with probability 80**-14).
    drawn = {_open(ctx, b_id, video=True) for _ in range(15)}
    assert len(drawn) > 1
    # Another person's sessions are theirs.
    assert len({_open(ctx, other_id, video=True) for _ in range(15)}) > 1


def test_yesterdays_unused_session_does_not_fix_todays_challenge(ctx: ServiceContext) -> None:
    with ctx.db() as db:
        b_id = factories.beneficiary(db, ctx.keyring).id
    drawn = set()
    for _ in range(15):
        _open(ctx, b_id)
        with ctx.db() as db:
            db.execute(
                update(CertSession)
                .where(CertSession.beneficiary_id == b_id)
                .values(created_at=utcnow() - dt.timedelta(days=2))
            )
        drawn.add(_open(ctx, b_id, video=True))
    assert len(drawn) > 1
