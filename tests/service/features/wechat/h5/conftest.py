"""The real app (SQLite file, real storage) with the WeChat channel against the fake WeChat server, and a
browser already logged in through the H5 cookie (the OAuth round trip itself is tested in the WeChat tests)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import service.schema
from service.adapters.http.app import create_app
from service.certification.context import ServiceContext
from service.features.wechat.h5 import identity
from tests.service import factories
from tests.service.features.wechat.conftest import wechat_settings
from tests.service.features.wechat.fake_wechat import FakeWeChat

PHONE = "027-12345678"
OPENID = "openid-recover-1"


@dataclass
class App:
    client: TestClient
    ctx: ServiceContext
    beneficiary_id: int


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    with FakeWeChat() as fake:
        settings = wechat_settings(
            fake, tmp_path, database_url=f"sqlite:///{tmp_path / 'h5.db'}", bureau_phone=PHONE, failures_per_day=3
        )
        ctx = ServiceContext(settings, schema=service.schema.metadata)
        with TestClient(create_app(ctx=ctx)) as client:
            with ctx.db() as db:
                b = factories.beneficiary(db, ctx.keyring, name="李秀英")
                db.commit()
                bid = b.id
            client.cookies.set(identity.COOKIE, identity.mint(ctx, OPENID))
            yield App(client, ctx, bid)
