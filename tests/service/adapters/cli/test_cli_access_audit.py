"""Every access audited, on the command line (docs/security.md, Part Y): `pension-cert certify --beneficiary-id
EXTERNAL_ID` takes the person's full ID number and enrolled face template out of the service database; that read
(and a look-up that found nobody) is audited like the API's, naming the OS account that ran it."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

import service.schema
from service.adapters.cli.certify_cmd import _Beneficiaries
from service.adapters.cli.common import CliError
from service.certification.context import ServiceContext
from service.certification.models import AuditEntry
from service.infra.config import as_environment
from tests.service import factories
from tests.service.conftest import make_settings


def test_certify_by_external_id_audits_the_read_of_the_number_and_the_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, database_url=f"sqlite:///{tmp_path / 'service.db'}")
    ctx = ServiceContext(settings, schema=service.schema.metadata)
    number = factories.id_number(region="420106", seq=95)
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, external_id="EXT-CLI-1", id_number=number)
        factories.enrol_template(ctx.keyring, b, np.ones(128, dtype=np.float32), "test-model")
    for name, value in as_environment(settings).items():
        monkeypatch.setenv(name, value)

    people = _Beneficiaries()
    expected, template = people.expected("EXT-CLI-1")
    assert expected == number and template is not None
    with pytest.raises(CliError):
        people.expected("EXT-NOBODY")

    with ctx.db() as db:
        rows = db.scalars(select(AuditEntry).where(AuditEntry.actor == "cli:certify").order_by(AuditEntry.id)).all()
        got = [(e.action, e.target, e.detail) for e in rows]
    who = pwd.getpwuid(os.geteuid()).pw_name  # the account running the command, by its uid
    assert got == [
        (
            "beneficiary.read",
            "EXT-CLI-1",
            {"by": "external_id", "id_number": True, "template": True, "os_user": who},
        ),
        ("beneficiary.miss", "-", {"by": "external_id", "asked": "EXT-NOBODY", "os_user": who}),
    ]
    assert number not in str(got)
