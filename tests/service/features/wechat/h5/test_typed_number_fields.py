"""Every field an ID number is typed into takes it as people type it: in groups with spaces or hyphens, full-width,
pasted with invisible characters, its X as the phone offers it (Ⅹ, ×, χ).

The normaliser (service.infra.security.normalise_id) accepts those forms, but the H5 self session and the
assistance form held the field to 18 characters and a relative's verification and binding to 20: "110101
19490101 0012" (20), "1101 0119 4901 0100 12" (22) or the same typed full-width with spaces was a 422 before the
normaliser saw it. One bound now (ID_INPUT_MAX) for the H5 pages, the forms, the relatives' API and the API's
lookups.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from service.certification.context import ServiceContext
from service.features.wechat.h5 import identity
from service.infra.security import ID_INPUT_MAX
from tests.service import factories
from tests.service.conftest import API_KEY
from tests.service.features.proxy.helpers import P, bearer, bind, login, new_elder, verified_operator
from tests.service.features.wechat.h5.conftest import App
from tests.service.features.wechat.h5.test_assist_requests import World, apply, w  # noqa: F401 (w: the fixture)

FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


def grouped(number: str) -> str:
    """Region, birth date, sequence and check digit, as the card prints it: 20 characters."""
    return f"{number[:6]} {number[6:14]} {number[14:]}"


def fours(number: str) -> str:
    """In fours, as a bank card is read out: 22 characters."""
    return " ".join(number[i : i + 4] for i in range(0, 18, 4))


def full_width_grouped(number: str) -> str:
    return grouped(number).translate(FULL_WIDTH).replace(" ", "\u3000")


def hyphen_groups(number: str) -> str:
    return f"{number[:6]}-{number[6:14]}-{number[14:]}"


def dash_groups(number: str) -> str:
    """Em dash and full-width hyphen, as a Chinese input method gives "-"."""
    return f"{number[:6]}\u2014{number[6:14]}\uff0d{number[14:]}"


def pasted_from_a_chat(number: str) -> str:
    """Copied from a WeChat message: zero-width space and BOM around it, a zero-width joiner inside."""
    return f"\u200b{number[:9]}\u200d{number[9:]}\ufeff"


TYPINGS = [grouped, fours, full_width_grouped, hyphen_groups, dash_groups, pasted_from_a_chat]


def elder_number() -> str:
    return factories.id_number(region="110101", birth=dt.date(1949, 1, 1))


def x_elder_number() -> str:
    """A number whose check digit is X (about one in eleven)."""
    while not (number := elder_number()).endswith("X"):
        pass
    return number


def x_as(lookalike: str) -> Callable[[str], str]:
    def typed(number: str) -> str:
        return number[:-1] + lookalike

    typed.__name__ = f"x_as_U{ord(lookalike):04X}"
    return typed


# The digit pad of inputmode="numeric" has no X: the phone's Chinese IME offers Ⅹ/ⅹ (Roman numerals) or ×, and
# ✕ or Greek Χ/χ in its symbol panels. Before, each was a 404 "未找到待遇领取人信息" for a person on the roster.
X_TYPINGS = [x_as(c) for c in "\u2169\u2179\u00d7\u2715\u03a7\u03c7"]
X_TYPINGS += [lambda n: hyphen_groups(n[:-1] + "\u2169"), lambda n: pasted_from_a_chat(n[:-1] + "\u00d7")]


@pytest.mark.parametrize("typing", TYPINGS)
def test_a_self_session_opens_with_the_number_as_typed(
    client: TestClient, ctx: ServiceContext, typing: Callable[[str], str]
) -> None:
    number = elder_number()
    with ctx.db() as db:
        factories.beneficiary(db, ctx.keyring, id_number=number, name="王淑珍")
    client.cookies.set(identity.COOKIE, identity.mint(ctx, f"openid-typed-{number}"))
    typed = typing(number)
    r = client.post("/h5/api/sessions", json={"name": "王淑珍", "id_number": typed, "consent": True})
    assert r.status_code == 200, r.text


def test_elder_mode_reads_the_birth_date_of_the_number_as_typed(client: TestClient, ctx: ServiceContext) -> None:
    # A roster row without a birth date: elder mode is read from the confirmed number, here typed in groups.
    number = elder_number()
    with ctx.db() as db:
        factories.beneficiary(db, ctx.keyring, id_number=number, name="王淑珍", birth_date=None)
    client.cookies.set(identity.COOKIE, identity.mint(ctx, "openid-typed-elder"))
    r = client.post("/h5/api/sessions", json={"name": "王淑珍", "id_number": grouped(number), "consent": True})
    assert r.status_code == 200 and r.json()["elder_mode"] is True, r.text


@pytest.mark.parametrize("typing", TYPINGS)
def test_the_assistance_form_takes_the_number_as_typed(w: World, typing: Callable[[str], str]) -> None:  # noqa: F811
    number = elder_number()
    with w.ctx.db() as db:
        factories.beneficiary(db, w.ctx.keyring, id_number=number, name="王淑珍")
    status, text = apply(w, name="王淑珍", id_number=typing(number))
    assert status == 200 and "已提交" in text, text


@pytest.mark.parametrize("typing", TYPINGS)
def test_a_relative_binds_an_elder_by_the_number_as_typed(
    client: TestClient, ctx: ServiceContext, typing: Callable[[str], str]
) -> None:
    _, number, name = new_elder(ctx, id_number=elder_number())
    op = verified_operator(client, ctx)
    r = bind(client, op, typing(number), name)
    assert r.status_code == 201, r.text


def test_a_relative_opens_their_verification_with_the_number_as_typed(client: TestClient) -> None:
    op = login(client)
    number = factories.id_number(region="420106", birth=dt.date(1975, 6, 1))
    body = {"id_number": fours(number), "name": "李建国"}
    r = client.post(f"{P}/operators/me/verification", json=body, headers=bearer(op["token"]))
    assert r.status_code == 201, r.text


def test_the_api_lookup_takes_the_number_as_typed(client: TestClient, ctx: ServiceContext) -> None:
    number = elder_number()
    with ctx.db() as db:
        ext = factories.beneficiary(db, ctx.keyring, id_number=number).external_id
    r = client.post(
        "/api/v1/beneficiaries/lookup", json={"id_number": full_width_grouped(number)}, headers={"X-API-Key": API_KEY}
    )
    assert r.status_code == 200 and r.json()["external_id"] == ext, r.text


def test_a_number_longer_than_the_bound_is_still_refused(client: TestClient, ctx: ServiceContext) -> None:
    client.cookies.set(identity.COOKIE, identity.mint(ctx, "openid-typed-long"))
    body = {"name": "王淑珍", "id_number": "1" * (ID_INPUT_MAX + 1), "consent": True}
    assert client.post("/h5/api/sessions", json=body).status_code == 422


def test_every_number_input_on_the_pages_takes_the_same_length(app: App) -> None:
    certify = app.client.get("/h5/certify?mode=self").text
    family = app.client.get("/h5/family").text
    form = app.client.get("/h5/apply").text
    assert f'id="id-number" maxlength="{ID_INPUT_MAX}"' in certify and 'pattern="[0-9]{17}' not in certify
    assert f'<input name="id_number" maxlength="{ID_INPUT_MAX}"' in form
    for field in ("op-id", "elder-id"):
        assert f'id="{field}" inputmode="numeric" autocomplete="off" maxlength="{ID_INPUT_MAX}"' in family


def test_a_self_session_opens_with_the_x_as_the_phone_offers_it(client: TestClient, ctx: ServiceContext) -> None:
    # One test over the typings (each its own person and login): one app and database, not one per typing.
    for typing in X_TYPINGS:
        number = x_elder_number()
        with ctx.db() as db:
            factories.beneficiary(db, ctx.keyring, id_number=number, name="王淑珍")
        client.cookies.set(identity.COOKIE, identity.mint(ctx, f"openid-x-{number}"))
        r = client.post("/h5/api/sessions", json={"name": "王淑珍", "id_number": typing(number), "consent": True})
        assert r.status_code == 200, (typing(number), r.text)


@pytest.mark.parametrize("typing", X_TYPINGS[:3])
def test_the_assistance_form_takes_the_x_as_the_phone_offers_it(w: World, typing: Callable[[str], str]) -> None:  # noqa: F811
    number = x_elder_number()
    with w.ctx.db() as db:
        factories.beneficiary(db, w.ctx.keyring, id_number=number, name="王淑珍")
    status, text = apply(w, name="王淑珍", id_number=typing(number))
    assert status == 200 and "已提交" in text, text


def test_a_relative_binds_an_elder_by_the_x_as_the_phone_offers_it(client: TestClient, ctx: ServiceContext) -> None:
    for typing in X_TYPINGS[:3]:
        _, number, name = new_elder(ctx, id_number=x_elder_number())
        op = verified_operator(client, ctx)
        r = bind(client, op, typing(number), name)
        assert r.status_code == 201, (typing(number), r.text)


def test_a_look_alike_x_anywhere_but_the_check_digit_is_still_a_format_error(client: TestClient) -> None:
    # Read as X only in the last place: 17 digits with a Ⅹ among them are no number, and the relative's
    # verification (which tells a malformed number from others) answers the format error, not "unknown".
    op = login(client)
    number = x_elder_number()
    body = {"id_number": number[:10] + "\u2169" + number[11:], "name": "李建国", "template_consent": False}
    r = client.post(f"{P}/operators/me/verification", json=body, headers=bearer(op["token"]))
    assert r.status_code == 422 and r.json()["error"]["code"] == "PROXY_ID_NUMBER", r.text
