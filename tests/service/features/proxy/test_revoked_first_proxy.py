"""The first proxy certification of an elder goes to staff review (service/features/proxy/hooks.py,
`first_proxy_certification`). Before: a relative's proxy certification later revoked as fraudulent (冒领:
service/certification/revocation.py) still counted as the elder's first, so the next proxy certification could be
accepted by the machine without a person ever having seen a genuine one."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, Certification, CertSession, utcnow
from service.certification.revocation import revoke_certification
from service.features.proxy.hooks import first_proxy_certification
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.proxy.helpers import P, active_binding, bearer, new_elder, verified_operator


def test_a_revoked_proxy_certification_is_no_first_one(client: TestClient, ctx: ServiceContext) -> None:
    ext, number, name = new_elder(ctx)
    child = verified_operator(client, ctx)
    binding = active_binding(client, child, number, name)
    fraud = client.post(f"{P}/bindings/{binding['binding_id']}/sessions", headers=bearer(child["token"])).json()
    factories.update(ctx, CertSession, fraud["session_id"], state="decided", decision="accept", decided_at=utcnow())
    today = local_today(ctx.settings)
    with ctx.db() as db:
        rec = db.scalar(select(Beneficiary).where(Beneficiary.external_id == ext))
        assert rec is not None
        bid = rec.id
        cert = Certification(
            beneficiary_id=bid,
            session_id=fraud["session_id"],
            certified_on=today,
            valid_until=today + dt.timedelta(days=364),
            code="test-fraud-proxy",
        )
        db.add(cert)
        db.flush()
        cid = cert.id
    nxt = client.post(f"{P}/bindings/{binding['binding_id']}/sessions", headers=bearer(child["token"])).json()
    with ctx.db() as db:
        assert not first_proxy_certification(db, bid, nxt["session_id"])  # one accepted, in force
        revoke_certification(
            db, ctx.rules, cid, "impersonation", "老人已去世，子女代为认证", "staff:sup1", hold_days=180
        )
    with ctx.db() as db:
        assert first_proxy_certification(db, bid, nxt["session_id"])  # revoked: the next one goes to staff
