"""`pension-cert calibrate-faces`: face-match thresholds at FAR 1e-2/1e-3/1e-4 → calibration file.

Three sources, any of them in one run:
- ``--pairs/--root`` (LFW-style labelled pairs): the recognizer's LFW thresholds;
- ``--population-data`` (the face cache of ``scripts/fetch_face_data.sh``): thresholds measured on East-Asian
  adults and East-Asian faces aged 50+, with held-out figures. The deployed threshold at each FAR is the
  strictest over the populations; the file records which population set it;
- ``--from-enrolled`` (a deployment): its own enrolled pensioners' templates (with consent) in the service
  database, as the population ``deployment_enrolled`` of its own copy of the file
  (``PENSION_CERT_FACE_CALIBRATION``), with the pairs of different people that reach the accept band; each
  such pair not seen before becomes a supervisor's alert in the console (service/features/console/look_alikes.py).
"""

# lazy-imports: each command imports what it runs inside its handler, so --help, `models list` and usage errors
# answer without loading the model runtime or the app (tests/service/adapters/cli/test_cli_imports.py).
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from service.adapters.cli.common import CliError, emit, read_csv_rows
from service.adapters.cli.match_cmd import build_matcher


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("calibrate-faces", help="calibrate face-match thresholds (LFW pairs and/or population data)")
    p.add_argument("--pairs", type=Path, help="CSV path_a,path_b,label (1 = same person)")
    p.add_argument("--root", type=Path, help="directory the CSV paths are relative to")
    p.add_argument("--faces", type=Path, help="CSV path,identity,source: adds all-vs-all impostor pairs")
    p.add_argument("--faces-source", help="only this source of --faces (identities are unique per source)")
    p.add_argument(
        "--population-data",
        type=Path,
        help="face cache of scripts/fetch_face_data.sh (~/.cache/pension-cert/faces): East-Asian populations",
    )
    p.add_argument(
        "--from-enrolled",
        action="store_true",
        help="the service database's enrolled templates (with consent): this deployment's own population",
    )
    p.add_argument("--pack", help="model pack")
    p.add_argument("--no-flip", dest="flip", action="store_false", help="calibrate without flip test-time augmentation")
    p.add_argument("--out", type=Path, help="calibration file to update (default: the one the face-match stage reads)")
    p.add_argument("--dry-run", action="store_true", help="print, do not write")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    # Usage errors on stderr with the input exit code, as every command (not a JSON line on stdout).
    if (args.pairs is None) != (args.root is None):
        raise CliError("--pairs and --root go together")
    if args.pairs is None and args.population_data is None and not args.from_enrolled:
        raise CliError("give --pairs/--root, --population-data, --from-enrolled, or several")
    if args.from_enrolled and not args.dry_run:
        _refuse_the_shipped_file(args.out)
    # The CSVs are checked (file, UTF-8, columns, short rows) before the models load: the calibration's own
    # reader would stop on them with a traceback.
    if args.pairs is not None:
        read_csv_rows(args.pairs, ("path_a", "path_b", "label"))
    if args.faces is not None:
        read_csv_rows(args.faces, ("path", "identity") + (("source",) if args.faces_source else ()))
    try:
        return _calibrate(args)
    except ValueError as exc:  # too few impostors for a tail fit, no LFW entry to add populations to, ...
        raise CliError(str(exc)) from exc


def _refuse_the_shipped_file(out: Path | None) -> None:
    """--from-enrolled writes the deployment's own population (its pensioners' look-alike pairs by external id)
    into the deployment's own copy of the file, never into the one shipped inside the package."""
    from pipelines.face_match.calibration import DEFAULT_CALIBRATION_PATH, calibration_path  # lazy: as _calibrate

    target = out or calibration_path()
    if target.resolve() == DEFAULT_CALIBRATION_PATH.resolve():
        raise CliError(
            f"--from-enrolled would write this deployment's people into the shipped {DEFAULT_CALIBRATION_PATH}: "
            "copy it, set PENSION_CERT_FACE_CALIBRATION to the copy (the face-match stage reads it) and run "
            "again (docs/face_data.md), or --dry-run"
        )


def _calibrate(args: argparse.Namespace) -> int:
    # Lazy: numpy, OpenCV and onnxruntime load only when a calibration runs.
    from pipelines.face_match.calibrate import calibrate, write_entry, write_populations
    from pipelines.face_match.calibration import calibration_path

    out_path = args.out or calibration_path()
    matcher = build_matcher(args.pack, args.flip)
    out: dict[str, Any] = {}
    if args.pairs is not None:
        entry = calibrate(matcher, args.pairs, args.root, args.faces, args.faces_source)
        out["lfw"] = entry
        if not args.dry_run:
            out["calibration_version"] = write_entry(entry, out_path)
    if args.population_data is not None:
        from pipelines.face_match.population.calibrate import calibrate_populations
        from pipelines.face_match.population.dataset import load_population_data

        populations = calibrate_populations(load_population_data(matcher, args.population_data))
        out["populations"] = populations
        if not args.dry_run:
            key = matcher.thresholds.recognizer
            out["calibration_version"] = write_populations(key, populations, out_path)
    if args.from_enrolled:
        import service.schema
        from pipelines.face_match.population.enrolled import POPULATION
        from service.adapters.cli.common import load_settings
        from service.certification.context import ServiceContext

        ctx = ServiceContext(load_settings(), schema=service.schema.metadata)  # one for the read and the alerts
        entry = _enrolled_population(ctx, matcher)
        out["populations"] = {**out.get("populations", {}), POPULATION: entry}
        if not args.dry_run:
            out["calibration_version"] = write_populations(matcher.thresholds.recognizer, {POPULATION: entry}, out_path)
            out["look_alike_alerts_raised"] = _raise_look_alike_alerts(ctx, entry)
    emit(out)
    return 0


def _enrolled_population(ctx: Any, matcher: Any) -> dict[str, Any]:
    """The deployment's enrolled templates (consent given, enrolled by this recognizer), read once and audited."""
    import numpy as np
    from sqlalchemy import select

    from pipelines.face_match.population.enrolled import EnrolledFaces, calibrate_enrolled, genuine_outcomes
    from service.certification.audit import audit
    from service.certification.models import Beneficiary
    from service.certification.templates import load_template

    version = str(matcher.recognizer.version)
    with ctx.db() as db:
        rows = db.scalars(
            select(Beneficiary)
            .where(Beneficiary.template.is_not(None), Beneficiary.template_consent.is_(True))
            .where(Beneficiary.template_model == version)
            .order_by(Beneficiary.id)
        ).all()
        enrolled = [(b, t) for b, t in ((b, load_template(ctx, b)) for b in rows) if t is not None]
        audit(db, "cli:calibrate-faces", "templates.read", "beneficiaries", {"people": len(enrolled), "model": version})
        certified = _certified_face_bands(db)
    if len(enrolled) < 2:
        raise CliError(f"{len(enrolled)} enrolled templates of {version} (with consent): no pair to measure")
    faces = EnrolledFaces(
        np.stack([t.embedding for _, t in enrolled]),
        [b.external_id for b, _ in enrolled],
        [b.household for b, _ in enrolled],
    )
    entry = calibrate_enrolled(faces, matcher.thresholds.accept)
    entry["genuine_certified"] = genuine_outcomes(certified)
    if not entry["thresholds"]:
        raise CliError(
            f"{len(enrolled)} enrolled people are too few to measure any FAR (about 100 are needed for FAR 1e-2): "
            + "; ".join(f"{k}: {v}" for k, v in entry["not_measured"].items())
        )
    return entry


def _raise_look_alike_alerts(ctx: Any, entry: dict[str, Any]) -> int:
    """A supervisor's alert for each pair of accounts whose faces reach the accept band, not alerted before."""
    from service.certification.audit import audit
    from service.features.console.look_alikes import KIND, raise_look_alike_alerts

    look = entry["look_alikes_at_accept"]
    with ctx.db() as db:
        raised = raise_look_alike_alerts(db, look["pairs"], look["threshold"], entry["calibrated_on"])
        if raised:
            audit(db, "cli:calibrate-faces", "alerts.raise", "console_alerts", {"kind": KIND, "n": len(raised)})
    return len(raised)


def _certified_face_bands(db: Any) -> list[tuple[int | None, str | None]]:
    """(age at certification, the face band the decision showed) of every certification in force: genuine people,
    accepted by the stage or approved by staff (not revoked since, found fraudulent)."""
    from sqlalchemy import select

    from pipelines.face_match.population.enrolled import face_band
    from service.certification.idnumber import age_on
    from service.certification.models import Beneficiary, Certification, CertSession, in_force

    rows = db.execute(
        select(Certification.certified_on, Beneficiary.birth_date, CertSession.result)
        .join(CertSession, CertSession.id == Certification.session_id)
        .join(Beneficiary, Beneficiary.id == Certification.beneficiary_id)
        .where(in_force())  # a revoked certification (found fraudulent) is no genuine person's
    ).all()
    return [(None if born is None else age_on(born, on), face_band(result)) for on, born, result in rows]
