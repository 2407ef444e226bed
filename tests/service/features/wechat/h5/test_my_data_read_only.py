"""The "我的信息" page of an account that is a relative's (docs/security.md, Part AL, reviewer rv5): a son who filmed
his mother through the ordinary self flow on his own phone is, to the service, the account of her latest
self-certification; it cannot tell him from her. When that account is a relative's (a proxy operator bound to the
elder, or verified as someone else), the elder's data is shown read-only: no withdrawal, no binding ended."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from service.certification.models import Beneficiary, CertSession
from service.features.proxy import operators
from service.features.proxy import sessions as proxy_sessions
from service.features.proxy.elder_bindings import end_by_elder
from service.features.proxy.errors import ProxyServiceError
from service.features.proxy.models import BindingStatus, ProxyBinding, ProxyOperator
from service.features.wechat.h5 import identity, my_data
from tests.service import factories
from tests.service.features.wechat.h5.conftest import App
from tests.service.features.wechat.h5.test_my_data import bound_relative, certified, form_token, template_of

READ_ONLY = "请本人或到柜台办理"


def verified_account(app: App, openid: str, id_number: str | None = None) -> str:
    """A relative's account verified as the person of `id_number` (by default not the test's elder)."""
    with app.ctx.db() as db:
        op = operators.login(db, app.ctx, "wechat", openid, "test").operator
        number = id_number or factories.id_number(region="110101", birth=dt.date(1980, 5, 6))
        operators.mark_verified(op, app.ctx.keyring.id_hash(number), number[:4] + "**", "李建华")
        db.commit()
        return op.id


def as_account(app: App, openid: str) -> str:
    app.client.cookies.set(identity.COOKIE, identity.mint(app.ctx, openid))
    page = app.client.get("/h5/me")
    assert page.status_code == 200, page.text
    text: str = page.text
    return text


def binding_status(app: App, binding: str) -> str:
    with app.ctx.db() as db:
        row = db.get(ProxyBinding, binding)
        assert row is not None
        return row.status


def test_a_relative_who_filmed_the_elder_sees_her_page_read_only(app: App) -> None:
    """rv5: a sibling is bound; another relative, verified as himself, certified the elder through the self flow
    on his phone. Before: he withdrew her template and ended his sibling's binding."""
    sibling = bound_relative(app)
    verified_account(app, "openid-helper")
    certified(app, openid="openid-helper", enrol=True)
    page = as_account(app, "openid-helper")
    assert "李*英" in page and READ_ONLY in page
    assert 'id="withdraw"' not in page and "end-binding" not in page and "/bindings/" not in page
    token = my_data.form_token(app.ctx, "openid-helper")
    r = app.client.post(f"/h5/me/{app.beneficiary_id}/template/withdraw", data={"form": token}, follow_redirects=False)
    assert r.status_code == 403 and READ_ONLY in r.text
    r = app.client.post(
        f"/h5/me/{app.beneficiary_id}/bindings/{sibling}/end", data={"form": token}, follow_redirects=False
    )
    assert r.status_code == 403 and READ_ONLY in r.text
    assert template_of(app)[0] is not None and binding_status(app, sibling) == BindingStatus.ACTIVE


def test_a_bound_relative_who_used_the_self_flow_cannot_end_their_locked_binding(app: App) -> None:
    """rv5: the relative bound to the elder (locked for staff review) certified her with the self flow too."""
    binding = bound_relative(app)
    with app.ctx.db() as db:
        row = db.get(ProxyBinding, binding)
        assert row is not None
        row.locked = True
        db.commit()
    certified(app, openid="openid-relative", enrol=True)
    page = as_account(app, "openid-relative")
    assert "李*英" in page and READ_ONLY in page and "/bindings/" not in page and 'id="withdraw"' not in page
    token = my_data.form_token(app.ctx, "openid-relative")
    r = app.client.post(
        f"/h5/me/{app.beneficiary_id}/bindings/{binding}/end", data={"form": token}, follow_redirects=False
    )
    assert r.status_code == 403
    r = app.client.post(f"/h5/me/{app.beneficiary_id}/template/withdraw", data={"form": token}, follow_redirects=False)
    assert r.status_code == 403
    assert binding_status(app, binding) == BindingStatus.ACTIVE and template_of(app)[0] is not None


def test_an_unverified_account_bound_to_the_elder_is_read_only_too(app: App) -> None:
    """Any binding of the account's to this elder (its status whatever) makes it a relative's for her."""
    binding = bound_relative(app)
    with app.ctx.db() as db:
        row = db.get(ProxyBinding, binding)
        assert row is not None
        row.status = BindingStatus.ENDED
        op = db.get(ProxyOperator, row.operator_id)
        assert op is not None and op.identity is not None
        op.identity.person_hash = None
        db.commit()
    certified(app, openid="openid-relative", enrol=True)
    page = as_account(app, "openid-relative")
    assert "李*英" in page and READ_ONLY in page and 'id="withdraw"' not in page


def test_an_elder_who_is_also_a_verified_relative_keeps_her_page(app: App) -> None:
    """The elder herself verified (she certifies for her husband): her own number's hash, her page as before."""
    with app.ctx.db() as db:
        b = db.get(Beneficiary, app.beneficiary_id)
        assert b is not None
        number = app.ctx.keyring.decrypt_field(b.id_enc, "beneficiary.id_number")
    verified_account(app, "openid-elder", number)
    certified(app, openid="openid-elder", enrol=True)
    page = as_account(app, "openid-elder")
    assert "李*英" in page and READ_ONLY not in page and 'id="withdraw"' in page
    r = app.client.post(
        f"/h5/me/{app.beneficiary_id}/template/withdraw",
        data={"form": my_data.form_token(app.ctx, "openid-elder")},
        follow_redirects=False,
    )
    assert r.status_code == 303 and template_of(app)[0] is None


def test_ending_a_locked_binding_as_its_own_operator_is_refused(app: App) -> None:
    """bindings.unbind's refusal (the lock waits for staff) holds in end_by_elder when the poster is the binding's
    own relative; the elder (no operator) still ends it."""
    binding = bound_relative(app)
    with app.ctx.db() as db:
        row = db.get(ProxyBinding, binding)
        assert row is not None
        row.locked = True
        db.commit()
    with app.ctx.db() as db:
        row = db.get(ProxyBinding, binding)
        assert row is not None
        op = db.get(ProxyOperator, row.operator_id)
        elder = db.get(Beneficiary, app.beneficiary_id)
        assert op is not None and elder is not None
        with pytest.raises(ProxyServiceError) as refused:
            end_by_elder(db, elder, binding, "wechat:x", poster=op)
        assert refused.value.code == "PROXY_BINDING_LOCKED"
        db.rollback()
    assert binding_status(app, binding) == BindingStatus.ACTIVE
    with app.ctx.db() as db:
        elder = db.get(Beneficiary, app.beneficiary_id)
        assert elder is not None
        end_by_elder(db, elder, binding, "wechat:x", poster=None)
        db.commit()
    assert binding_status(app, binding) == BindingStatus.WITHDRAWN


def test_the_elders_own_page_is_unchanged(app: App) -> None:
    certified(app)
    page = as_account(app, "openid-recover-1")
    assert READ_ONLY not in page and 'id="withdraw"' in page


def test_a_relatives_withdrawal_covers_their_unverified_accounts_pending_verification(app: App) -> None:
    """rv5: the relative's second account (here their phone) is not verified yet, its verification session (same
    ID number) with consent still in flight: the withdrawal from the first account takes that consent too, so its
    accept stores no template. Before: only verified accounts (their identity's person hash) were covered."""
    number = factories.id_number(region="110101", birth=dt.date(1975, 1, 2), seq=321)
    with app.ctx.db() as db:
        op = operators.login(db, app.ctx, "wechat", "openid-relative", operators.H5_CLIENT).operator
        operators.mark_verified(op, app.ctx.keyring.id_hash(number), number[:4] + "**", "王建国")
        db.flush()
        operators.store_template(app.ctx, op, np.ones(8, dtype=np.float32), "test-model")
        phone = operators.login(db, app.ctx, "phone", "13800000001", "test").operator
        pending = proxy_sessions.open_verification(db, app.ctx, phone, number, "王建国", True).session.id
        stranger = operators.login(db, app.ctx, "phone", "13800000002", "test").operator
        other = factories.id_number(region="110101", birth=dt.date(1976, 1, 2), seq=322)
        unrelated = proxy_sessions.open_verification(db, app.ctx, stranger, other, "张三", True).session.id
        db.commit()
    page = as_account(app, "openid-relative")
    r = app.client.post("/h5/me/relative-template/withdraw", data={"form": form_token(page)}, follow_redirects=False)
    assert r.status_code == 303
    with app.ctx.db() as db:
        assert db.get(CertSession, pending).template_consent is False  # type: ignore[union-attr]
        assert db.get(CertSession, unrelated).template_consent is True  # type: ignore[union-attr]
