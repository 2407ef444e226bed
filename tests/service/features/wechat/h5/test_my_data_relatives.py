"""The relatives on the elder's "我的信息" page: each named by their verified name, masked, so that the elder ends the
right one; a relative the elder ended who binds again waits for the elder's consent (docs/wechat.md)."""

from __future__ import annotations

import re

from proxy_auth import ConsentMethod
from service.certification.models import Beneficiary
from service.features.proxy import bindings, operators
from service.features.proxy.models import BindingStatus, ProxyOperator
from tests.service import factories
from tests.service.features.wechat.h5.conftest import App
from tests.service.features.wechat.h5.test_my_data import certified, form_token
from tests.service.features.wechat.h5.test_my_data_read_only import READ_ONLY, as_account


def _relative(app: App, openid: str, name: str, seq: int) -> str:
    """A relative's verified WeChat account (the family login)."""
    with app.ctx.db() as db:
        op = operators.login(db, app.ctx, "wechat", openid, "test").operator
        number = factories.id_number(region="110101", seq=seq)
        operators.mark_verified(op, app.ctx.keyring.id_hash(number), number[:4] + "**", name)
        db.commit()
        return op.id


def _bind(app: App, operator_id: str, consent: bool = True) -> tuple[str, str]:
    """The relative binds the test's person as their child (consented by staff unless the old consent is reused)."""
    with app.ctx.db() as db:
        op = db.get(ProxyOperator, operator_id)
        elder = db.get(Beneficiary, app.beneficiary_id)
        assert op is not None and elder is not None
        number = app.ctx.keyring.decrypt_field(elder.id_enc, "beneficiary.id_number")
        row = bindings.bind(db, app.ctx, op, elder.name, number, "child")
        if consent and row.consent_at is None:
            assert bindings.record_consent(db, row, ConsentMethod.STAFF_APPROVAL, "staff-007", "test") is None
        db.commit()
        return row.id, row.status


def _lines(page: str) -> list[str]:
    found = re.findall(r'<li class="binding">(.*?)<', page, re.S)
    return [re.sub(r"\s+", " ", line).strip() for line in found]


def test_the_elder_tells_two_children_apart_and_one_he_ended_waits_for_him(app: App) -> None:
    """Before: two lines "子女,…绑定,已经您同意" he could not tell apart; and the daughter he ended bound again,
    active at once, listed again as "已经您同意"."""
    certified(app)
    her = _relative(app, "openid-daughter", "王小红", 501)
    daughter, _ = _bind(app, her)
    _bind(app, _relative(app, "openid-son", "王小明", 502))
    page = app.client.get("/h5/me").text
    lines = _lines(page)
    assert len(lines) == 2 and lines[0].startswith("子女 王*红,") and lines[1].startswith("子女 王*明,"), lines
    assert "王小红" not in page and "王小明" not in page  # masked: enough to tell them apart
    r = app.client.post(
        f"/h5/me/{app.beneficiary_id}/bindings/{daughter}/end", data={"form": form_token(page)}, follow_redirects=True
    )
    assert "对方如再次绑定,须经您本人同意" in r.text
    _, status = _bind(app, her, consent=False)  # she binds again from the same account
    assert status == BindingStatus.PENDING_CONSENT
    lines = _lines(app.client.get("/h5/me").text)
    assert any(line.startswith("子女 王*红,") and line.endswith("等待您确认") for line in lines), lines


def test_a_relatives_read_only_view_names_no_other_relative(app: App) -> None:
    """The page a relative's account sees (read-only) keeps to the relationship: no relative's name."""
    certified(app)
    son = _relative(app, "openid-son", "王小明", 502)
    _bind(app, son)
    _bind(app, _relative(app, "openid-daughter", "王小红", 501))
    certified(app, openid="openid-son", enrol=False)  # the son filmed his father with the self flow, on his phone
    page = as_account(app, "openid-son")
    assert READ_ONLY in page and "子女" in page
    assert "王*红" not in page and "王*明" not in page
