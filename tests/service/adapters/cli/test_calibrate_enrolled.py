"""`pension-cert calibrate-faces --from-enrolled`: a deployment measures its thresholds on its own enrolled
pensioners (real face templates of distinct people from shared data), in its own copy of the calibration file,
and learns which accounts carry the same face. Run as users run it: a subprocess on a real database."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

import service.schema
from models.packs import load_pack
from pipelines.face_match import FaceMatcher
from pipelines.face_match.calibration import DEFAULT_CALIBRATION_PATH, Calibration
from pipelines.face_match.pooling import pooled_template
from pipelines.face_match.population.enrolled import POPULATION
from pipelines.media import load_image
from service.certification.context import ServiceContext
from service.certification.models import AuditEntry, Beneficiary
from service.features.console.look_alikes import KIND as LOOK_ALIKE
from service.features.console.models import ConsoleAlert
from service.infra.config import Settings, as_environment
from tests.service import factories
from tests.service.adapters.cli.conftest import CliRunner, json_lines
from tests.service.conftest import make_settings

PEOPLE = 120
KEY = "mobilefacenet_foamliu@b7120c095d60+flip"


@pytest.fixture(scope="module")
def enrolled_faces(faces_dir: Path) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """(identity, template of a first image, template of a second image when there is one) for PEOPLE people."""
    with (faces_dir / "faces.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    by_person: dict[str, list[str]] = {}
    for r in rows:
        by_person.setdefault(r["identity"], []).append(r["path"])
    matcher = FaceMatcher(load_pack("default"))
    out: list[tuple[str, np.ndarray, np.ndarray | None]] = []
    for person, paths in sorted(by_person.items()):
        obs = [matcher.observe(load_image(faces_dir / p)) for p in paths[:2]]
        first = pooled_template(obs[:1])
        assert first is not None
        out.append((person, first, pooled_template(obs[1:]) if len(obs) > 1 else None))
        if len(out) == PEOPLE:
            return out
    raise AssertionError("shared data has fewer people than the test needs")


def deployment(tmp_path: Path, faces: list[tuple[str, np.ndarray, np.ndarray | None]]) -> Settings:
    """A deployment's database with each person enrolled, one of them twice (a second account, another photo),
    and two people of one household; its own copy of the calibration file."""
    calibration = tmp_path / "face_calibration.json"
    shutil.copy(DEFAULT_CALIBRATION_PATH, calibration)
    settings = make_settings(
        tmp_path, database_url=f"sqlite:///{tmp_path / 'service.db'}", face_calibration=str(calibration)
    )
    ctx = ServiceContext(settings, schema=service.schema.metadata)
    version = KEY.removesuffix("+flip")
    with ctx.db() as db:
        for i, (_, template, _) in enumerate(faces):
            b = factories.beneficiary(db, ctx.keyring, external_id=f"E{i:04d}", household="H1" if i < 2 else None)
            factories.enrol_template(ctx.keyring, b, template, version)
        twin = next(second for _, _, second in faces if second is not None)
        b = factories.beneficiary(db, ctx.keyring, external_id="E-SECOND-ACCOUNT")
        factories.enrol_template(ctx.keyring, b, twin, version)
        refused = factories.beneficiary(db, ctx.keyring, external_id="E-NO-CONSENT")
        factories.enrol_template(ctx.keyring, refused, faces[0][1], version)
        refused.template_consent = False
        certify_genuine_people(db, ctx.keyring)
    return settings


# (birth year, face band of the decision, decision): accepted by the stage, or approved by staff after review.
CERTIFIED = [(1950, "accept", "accept"), (1950, "review", "review"), (1940, "accept", "accept"),
             (1940, "accept", "accept"), (1940, "review", "review"), (1970, None, "review")]  # fmt: skip


def certify_genuine_people(db: Any, keyring: Any) -> None:
    """Certifications of the year: a decided session each, its stored result showing the template's band."""
    import datetime as dt

    from service.certification.models import Certification

    for i, (year, band, decision) in enumerate(CERTIFIED):
        b = factories.beneficiary(db, keyring, external_id=f"C{i}", birth_date=dt.date(year, 6, 1))
        result = {"decision": decision, "template_match": {"band": band} if band else None, "card_match": None}
        s = factories.session_row(b.id, state="decided", decision=decision, result=result)
        db.add(s)
        db.flush()
        on = dt.date(2026, 12, 1)
        db.add(Certification(beneficiary_id=b.id, session_id=s.id, certified_on=on, valid_until=on, code=f"K{i}"))


def run(cli: CliRunner, settings: Settings, *args: str) -> Any:
    return cli("calibrate-faces", "--from-enrolled", *args, env=as_environment(settings))


def test_a_deployment_measures_its_own_population_and_finds_a_face_under_two_accounts(
    cli: CliRunner, tmp_path: Path, enrolled_faces: list[tuple[str, np.ndarray, np.ndarray | None]]
) -> None:
    settings = deployment(tmp_path, enrolled_faces)
    shipped = Calibration.load(DEFAULT_CALIBRATION_PATH).recognizers[KEY]
    done = run(cli, settings)
    assert done.returncode == 0, done.stderr
    (out,) = json_lines(done.stdout)
    entry = out["populations"][POPULATION]
    # 121 consenting people (the refusal is not read); each half gives well over 1,000 pairs: FAR 1e-2 observed.
    assert entry["people_enrolled"] == PEOPLE + 1
    assert entry["method"]["1e-2"] == "empirical" and "1e-4" in entry["not_measured"]
    ev = entry["evaluation_half"]
    assert ev["impostor_pairs"] > 1000 and 0 <= ev["impostor_accept"]["1e-2"]["rate"] <= 0.03
    # Relatives (one household) are never counted as impostors.
    cal, n = entry["calibration_half"], entry["calibration_half"]["people"]
    assert cal["impostor_pairs"] <= n * (n - 1) // 2
    # The second account of the same face reaches the accept band and is named (ids only).
    look = entry["look_alikes_at_accept"]
    assert look["threshold"] == pytest.approx(shipped["thresholds"]["1e-4"], abs=1e-6)
    assert any("E-SECOND-ACCOUNT" in (p["a"], p["b"]) for p in look["pairs"]), look
    # Written to the deployment's copy, which the stage now reads: only ever stricter than what was shipped.
    written = Calibration.load(settings.certification.face_calibration).recognizers[KEY]
    assert written["populations"][POPULATION]["thresholds"] == entry["thresholds"]
    for far, t in shipped["thresholds"].items():
        assert written["thresholds"][far] >= t
    assert json.loads(DEFAULT_CALIBRATION_PATH.read_text(encoding="utf-8"))["recognizers"][KEY] == shipped
    # What the thresholds cost its genuine people: of the certified (by the stage or by staff), the share the face
    # match accepted by itself, per age band (the one without a face comparison is left out).
    genuine = entry["genuine_certified"]
    assert genuine["70-79"] == {"accepted": 1, "n": 2, "rate": 0.5, "clopper_pearson_95": [0.0126, 0.9874]}
    assert genuine["80+"]["accepted"] == 2 and genuine["80+"]["n"] == 3
    assert genuine["all"]["n"] == 5 and "50-59" not in genuine and "<60" not in genuine
    ctx = ServiceContext(settings, schema=service.schema.metadata)
    with ctx.db() as db:
        (read,) = db.scalars(select(AuditEntry).where(AuditEntry.action == "templates.read")).all()
        assert read.detail == {"people": PEOPLE + 1, "model": KEY.removesuffix("+flip")}
        # Each pair became a supervisor's alert naming both accounts, the face under two accounts among them.
        alerts = db.scalars(select(ConsoleAlert).where(ConsoleAlert.kind == LOOK_ALIKE)).all()
        assert out["look_alike_alerts_raised"] == len(alerts) == len(look["pairs"])
        second = db.scalar(select(Beneficiary).where(Beneficiary.external_id == "E-SECOND-ACCOUNT"))
        assert second is not None
        assert any(second.id in (a.beneficiary_id, a.detail["other_id"]) for a in alerts)
        (raised,) = db.scalars(select(AuditEntry).where(AuditEntry.action == "alerts.raise")).all()
        assert raised.detail == {"kind": LOOK_ALIKE, "n": len(alerts)}
    # A monthly rerun raises nothing twice.
    again = run(cli, settings)
    assert again.returncode == 0, again.stderr
    assert json_lines(again.stdout)[0]["look_alike_alerts_raised"] == 0


def test_too_few_enrolled_people_is_said_not_written(
    cli: CliRunner, tmp_path: Path, enrolled_faces: list[tuple[str, np.ndarray, np.ndarray | None]]
) -> None:
    settings = deployment(tmp_path, enrolled_faces[:20])
    before = Path(settings.certification.face_calibration).read_bytes()
    done = run(cli, settings)
    assert done.returncode == 2 and done.stdout == ""
    assert "too few to measure any FAR" in done.stderr and "Traceback" not in done.stderr
    assert Path(settings.certification.face_calibration).read_bytes() == before


def test_a_missing_calibration_file_is_a_settings_problem(cli: CliRunner, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, face_calibration=str(tmp_path / "nowhere.json"))
    done = cli("calibrate-faces", "--from-enrolled", env=as_environment(settings))
    assert done.returncode != 0
    assert "PENSION_CERT_FACE_CALIBRATION" in done.stderr and "does not exist" in done.stderr


def test_a_dry_run_writes_nothing_and_raises_no_alert(
    cli: CliRunner, tmp_path: Path, enrolled_faces: list[tuple[str, np.ndarray, np.ndarray | None]]
) -> None:
    settings = deployment(tmp_path, enrolled_faces)
    before = Path(settings.certification.face_calibration).read_bytes()
    done = run(cli, settings, "--dry-run")
    assert done.returncode == 0, done.stderr
    (out,) = json_lines(done.stdout)
    assert out["populations"][POPULATION]["look_alikes_at_accept"]["pairs"]  # found, only not acted upon
    assert "look_alike_alerts_raised" not in out and "calibration_version" not in out
    assert Path(settings.certification.face_calibration).read_bytes() == before
    with ServiceContext(settings, schema=service.schema.metadata).db() as db:
        assert db.scalars(select(ConsoleAlert)).all() == []


def test_the_shipped_file_never_receives_a_deployment_s_people(
    cli: CliRunner, tmp_path: Path, enrolled_faces: list[tuple[str, np.ndarray, np.ndarray | None]]
) -> None:
    """docs/security.md Part Q: without PENSION_CERT_FACE_CALIBRATION (and without --out) the enrolled population,
    its look-alike pairs of pensioners' external ids included, was written into the file shipped inside the
    installed package (a source checkout: the next commit or upgrade carries or drops it). Refused now, before
    anything is read; the deployment's own copy is named, as docs/face_data.md shows."""
    settings = deployment(tmp_path, enrolled_faces)
    env = {k: v for k, v in as_environment(settings).items() if k != "PENSION_CERT_FACE_CALIBRATION"}
    shipped = DEFAULT_CALIBRATION_PATH.read_bytes()
    try:
        for extra in ((), ("--out", str(DEFAULT_CALIBRATION_PATH))):
            done = cli("calibrate-faces", "--from-enrolled", *extra, env=env)
            assert done.returncode == 2 and done.stdout == "", done.stderr
            assert "PENSION_CERT_FACE_CALIBRATION" in done.stderr and "Traceback" not in done.stderr
            assert DEFAULT_CALIBRATION_PATH.read_bytes() == shipped
    finally:
        DEFAULT_CALIBRATION_PATH.write_bytes(shipped)  # the old code wrote there
    with ServiceContext(settings, schema=service.schema.metadata).db() as db:
        assert db.scalars(select(AuditEntry).where(AuditEntry.action == "templates.read")).all() == []
