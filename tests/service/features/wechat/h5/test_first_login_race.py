"""Two first sign-ins of one WeChat account at once (the OAuth callback loaded twice, two tabs), on PostgreSQL:
both find no user row, both insert it; the second insert failed on the key and the callback answered 500."""

from __future__ import annotations

import threading
import time

from sqlalchemy import select

from service.certification.context import ServiceContext
from service.features.wechat.h5.identity import remember_user
from service.features.wechat.models import WeChatUser
from tests.service.test_races import pg_ctx  # noqa: F401  (the two-transaction PostgreSQL context)


def test_two_first_sign_ins_of_one_account_at_once_make_one_user(pg_ctx: ServiceContext) -> None:  # noqa: F811
    ctx = pg_ctx
    with ctx.db() as other:
        other.add(WeChatUser(openid="openid-twice"))
        other.flush()  # the first sign-in's row, not committed yet: the second one finds none

        def commit_soon() -> None:
            time.sleep(0.5)
            other.commit()

        committer = threading.Thread(target=commit_soon, daemon=True)
        committer.start()
        with ctx.db() as db:
            remember_user(db, "openid-twice")  # waits on the key for the first, then finds its row taken
        committer.join(timeout=10)
    with ctx.db() as db:
        rows = db.scalars(select(WeChatUser).where(WeChatUser.openid == "openid-twice")).all()
        assert len(rows) == 1 and rows[0].last_seen_at is not None
