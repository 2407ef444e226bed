"""A pensioner opening a self session types (or confirms from the card read) a name with a middle dot: the
phone's keyboard gives • or ・ where the roster has ·, or a space around it. Before, the exact comparison
answered "unknown person" (404) to a listed pensioner; now the name is compared as a name
(pipelines.names.same_name), and another name is still the unknown-person answer. The assistance form checks
"who" the same way."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.certification.context import ServiceContext
from service.certification.roster import import_roster
from service.features.wechat.h5 import identity
from tests.service import factories
from tests.service.features.wechat.h5.test_assist_requests import World, apply, w  # noqa: F401 (w: the fixture)
from tests.service.test_roster import TERMS
from tests.service.test_roster_western import text_of

LISTED = "阿依古丽·买买提"


@pytest.mark.parametrize("typed", ["阿依古丽•买买提", "阿依古丽・买买提", "阿依古丽 · 买买提", "阿依古丽．买买提"])
def test_a_middle_dot_variant_opens_the_pensioners_session(client: TestClient, ctx: ServiceContext, typed: str) -> None:
    number = factories.id_number(region="650102", birth=dt.date(1950, 5, 6))
    with ctx.db() as db:
        factories.beneficiary(db, ctx.keyring, id_number=number, name=LISTED)
    client.cookies.set(identity.COOKIE, identity.mint(ctx, "openid-dot-1"))
    r = client.post("/h5/api/sessions", json={"name": typed, "id_number": number, "consent": True})
    assert r.status_code == 200, r.text


def test_another_name_is_still_unknown(client: TestClient, ctx: ServiceContext) -> None:
    number = factories.id_number(region="650102", birth=dt.date(1950, 5, 7))
    with ctx.db() as db:
        factories.beneficiary(db, ctx.keyring, id_number=number, name=LISTED)
    client.cookies.set(identity.COOKIE, identity.mint(ctx, "openid-dot-2"))
    r = client.post("/h5/api/sessions", json={"name": "阿依古丽·买买", "id_number": number, "consent": True})
    assert r.status_code == 404, r.text


def test_the_assistance_form_takes_a_middle_dot_variant_of_the_name(w: World) -> None:  # noqa: F811
    # The form's "who" check is the self session's: before, the same 404 (姓名与身份证号不一致).
    number = factories.id_number(region="650102", birth=dt.date(1950, 5, 8))
    with w.ctx.db() as db:
        factories.beneficiary(db, w.ctx.keyring, id_number=number, name=LISTED)
    status, text = apply(w, name="阿依古丽・买买提", id_number=number)
    assert status == 200 and "已提交" in text


def test_a_roster_in_traditional_characters_opens_the_session_typed_in_simplified(
    client: TestClient, ctx: ServiceContext
) -> None:
    # Part AV: an old benefit system's roster writes 陳秀英; the card, and the pensioner, 陈秀英. Before: 404.
    number = factories.id_number(region="110101", birth=dt.date(1950, 5, 9))
    with ctx.db() as db:
        factories.beneficiary(db, ctx.keyring, id_number=number, name="陳秀英")
    client.cookies.set(identity.COOKIE, identity.mint(ctx, "openid-trad-1"))
    r = client.post("/h5/api/sessions", json={"name": "陈秀英", "id_number": number, "consent": True})
    assert r.status_code == 200, r.text
    r = client.post("/h5/api/sessions", json={"name": "程秀英", "id_number": number, "consent": True})
    assert r.status_code == 404, r.text


def test_a_roster_writing_the_middle_dot_as_a_full_width_space_opens_the_session_typed_as_the_card_prints(
    client: TestClient, ctx: ServiceContext, tmp_path: Path
) -> None:
    # Part BI: an old benefit system's GB18030 export writes the dot as the full-width space (A1A1), or leaves it
    # out; the pensioner types the card's 阿依古丽·买买提. Before: 404 "未找到待遇领取人信息".
    path = tmp_path / "roster.csv"
    path.write_bytes(text_of(["阿依古丽　买买提", "热依拉买买提"]).encode("gb18030"))
    with ctx.db() as db:
        report = import_roster(db, ctx.keyring, "roster.csv", path.read_bytes(), "t", TERMS)
    assert report.encoding == "GB18030" and report.created == 2, report.to_dict()
    client.cookies.set(identity.COOKIE, identity.mint(ctx, "openid-dot-space"))
    for i, card in enumerate(["阿依古丽·买买提", "热依拉·买买提"]):
        number = factories.id_number(region="420106", seq=100 + i)
        r = client.post("/h5/api/sessions", json={"name": card, "id_number": number, "consent": True})
        assert r.status_code == 200, r.text
