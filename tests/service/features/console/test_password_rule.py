"""The one rule for a new staff password (`auth.check_password`): long enough, not the username, and not guessable
(common passwords, keyboard walks, repeats, sequences, names, years, dates), on every path that sets one: the
users page, an admin's reset, a change of one's own, and the command line."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console.auth import MAX_PASSWORD_CHARS, PasswordError, check_password
from service.features.console.models import StaffUser
from tests.service.features.console.conftest import PASSWORD, login

# Each of these met the old rule (10 characters or more), and each is among the first an attacker tries.
GUESSABLE = [
    "1234567890",  # a sequence
    "qwertyuiop",  # a keyboard row
    "1qaz2wsx3edc",  # a keyboard walk
    "aaaaaaaaaaaa",  # one character repeated
    "5201314520",  # 我爱你一生一世我爱你, in digits
    "woaini1314",  # 我爱你一生一世, in pinyin and digits
    "P@ssw0rd2024",  # a common password with substitutions and a year
    "admin12345",
    "yanglao123456",  # what a pension bureau's staff might pick
]
STRONG = [
    "correct-horse-battery",
    "湖北武昌社保审核两千零二十六",
    "Wm3$kq9!Tz-bureau",
    "river cabinet lantern 47",
    # 74 and 128 characters (the most the rule takes): zxcvbn refused anything over 72, a 500 on every page.
    "a long passphrase of many plain words that a careful reviewer types slowly",
    "the river cabinet lantern and forty seven quiet orchards behind the old station wait for autumn rain while "
    "seven crows argue lou",
]


@pytest.mark.parametrize("password", GUESSABLE)
def test_guessable_passwords_are_refused_with_a_reason(password: str) -> None:
    with pytest.raises(PasswordError) as refused:
        check_password(password, "reviewer7")
    assert refused.value.code == "guessable" and "容易被猜到" in refused.value.message


@pytest.mark.parametrize("password", STRONG)
def test_long_irregular_passwords_are_taken(password: str) -> None:
    check_password(password, "reviewer7", "王建国")


def test_length_and_the_username() -> None:
    for password, username, code in (
        ("short", "rev9", "too_short"),
        ("x" * (MAX_PASSWORD_CHARS + 1), "rev9", "too_long"),
        ("Zhangwei-lantern-47", "zhangwei", "contains_username"),  # any case
        ("wangjianguo19580312", "wjg", "guessable"),  # the display name and a birth date
    ):
        with pytest.raises(PasswordError) as refused:
            check_password(password, username, "wangjianguo")
        assert refused.value.code == code, password
    assert "10" in str(PasswordError("too_short", "", "the password must have at least 10 characters"))


def test_the_users_page_refuses_a_guessable_password_and_creates_nothing(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    csrf = login(app_client, "admin")
    form = {"csrf": csrf, "username": "newrev", "role": "reviewer"}
    r = app_client.post("/console/users", data={**form, "password": "1qaz2wsx3edc"})
    assert r.status_code == 422 and "容易被猜到" in r.text
    assert 'id="password-hint"' in r.text  # the rule is stated under the field
    r = app_client.post("/console/users", data={**form, "password": "newrev-lantern-47"})
    assert r.status_code == 422 and "不能包含用户名" in r.text
    with ctx.db() as db:
        assert db.scalar(select(StaffUser).where(StaffUser.username == "newrev")) is None
    assert app_client.post("/console/users", data={**form, "password": "river cabinet lantern 47"}).status_code == 200
    with ctx.db() as db:
        assert db.scalar(select(StaffUser).where(StaffUser.username == "newrev")) is not None


def test_an_admin_reset_to_a_weak_password_says_so_and_changes_nothing(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """It redirected to the users page as if done, and the holder kept the old password with nothing said."""
    csrf = login(app_client, "admin")
    with ctx.db() as db:
        before = db.get(StaffUser, staff_users["rev1"])
        assert before is not None
        old_hash = before.password_hash
    for weak, why in (("short", "至少 10 个字符"), ("qwertyuiop", "容易被猜到")):
        r = app_client.post(
            f"/console/users/{staff_users['rev1']}", data={"op": "password", "password": weak, "csrf": csrf}
        )
        assert r.status_code == 422 and why in r.text, weak
    with ctx.db() as db:
        after = db.get(StaffUser, staff_users["rev1"])
        assert after is not None and after.password_hash == old_hash and not after.must_change_password
        actions = db.scalars(select(ConsoleAuditEntry.action).where(ConsoleAuditEntry.target == "rev1")).all()
    assert "user.password" not in actions
    r = app_client.post(
        f"/console/users/{staff_users['rev1']}",
        data={"op": "password", "password": "river cabinet lantern 47", "csrf": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with ctx.db() as db:
        after = db.get(StaffUser, staff_users["rev1"])
        assert after is not None and after.password_hash != old_hash and after.must_change_password


def test_a_long_passphrase_is_taken_on_the_password_page(app_client: TestClient, staff_users: dict[str, int]) -> None:
    """A 74-character passphrase: a 500 while the strength estimate refused anything over 72 characters."""
    csrf = login(app_client, "rev2")
    new = STRONG[4]
    data = {"current": PASSWORD, "new": new, "confirm": new, "csrf": csrf}
    assert app_client.post("/console/password", data=data, follow_redirects=False).status_code == 303


def test_ones_own_new_password_may_not_be_guessable_nor_ones_name(
    app_client: TestClient, staff_users: dict[str, int]
) -> None:
    csrf = login(app_client, "sup1")
    page = app_client.get("/console/password")
    assert 'id="password-hint"' in page.text and "不相关的词" in page.text
    for new, why in (("5201314520", "容易被猜到"), ("sup1-姓名-lantern-47", "不能包含用户名")):
        data = {"current": PASSWORD, "new": new, "confirm": new, "csrf": csrf}
        r = app_client.post("/console/password", data=data, follow_redirects=False)
        assert r.status_code == 422 and why in r.text, new
    data = {"current": PASSWORD, "new": "river cabinet lantern 47", "confirm": "river cabinet lantern 47", "csrf": csrf}
    assert app_client.post("/console/password", data=data, follow_redirects=False).status_code == 303
