"""What an outside web-security review of the H5 pages found, through the real app (SQLite, real storage, the
fake WeChat server): each test holds one fix (docs/security.md, Part I)."""

from __future__ import annotations

from sqlalchemy import select

from service.certification.models import AuditEntry, CertSession
from tests.service import factories
from tests.service.features.wechat.h5.conftest import App


def _open(app: App, name: str, number: str) -> tuple[int, dict[str, str]]:
    body = {"name": name, "id_number": number, "consent": True}
    r = app.client.post("/h5/api/sessions", json=body)
    return r.status_code, r.json()["error"] if r.status_code >= 400 else {}


def test_a_typed_deceased_person_reads_as_unknown_when_opening_a_session(app: App) -> None:
    """Anyone with a WeChat account who types a name and number must not learn from the session form that the
    roster records the person's death (the assistance form hides it too): the same 404 as a wrong name; the
    reason is in the audit for staff, and no session is opened."""
    number = factories.id_number(region="420102", seq=901)
    with app.ctx.db() as db:
        b = factories.beneficiary(db, app.ctx.keyring, name="周桂兰", id_number=number, status="deceased")
        external_id = b.external_id
    deceased = _open(app, "周桂兰", number)
    wrong_name = _open(app, "王五", number)
    assert deceased[0] == wrong_name[0] == 404
    assert deceased[1]["code"] == wrong_name[1]["code"] == "BENEFICIARY_UNKNOWN"
    assert deceased[1]["message"] == wrong_name[1]["message"]
    with app.ctx.db() as db:
        assert db.scalars(select(CertSession)).all() == []
        refused = db.scalars(select(AuditEntry).where(AuditEntry.action == "h5.session.refused")).all()
        assert [(e.target, e.detail) for e in refused] == [(external_id, {"reason": "deceased"})]
