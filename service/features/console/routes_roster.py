"""Roster pages: import with a row-level report, search, the beneficiary page, mark deceased, and counter /
home-visit certifications."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy import select

from service.certification.certificates import certificate_png
from service.certification.cycle import states_of
from service.certification.errors import NotFoundError, ServiceError
from service.certification.evidence_hold import EvidenceOnPage, evidence_of
from service.certification.models import (
    Certification,
    CertSession,
    CycleEvent,
    RosterImport,
    utcnow,
)
from service.certification.revocation import revoke_asks
from service.certification.roster import import_roster, import_terms
from service.certification.second_person import Ask
from service.certification.template_withdrawal import pending_consent
from service.features.console import access_log, audit_chain, certificate_copy, roster_search, scope
from service.features.console.accounts import who_is
from service.features.console.alt_cert import (
    RESENT_FORM,
    AltCertError,
    ResentForm,
    StaleDeathForm,
    StaleIdentityForm,
    certify_alternative,
    identity_stamp,
    mark_deceased,
    withdraw_deceased,
)
from service.features.console.alt_cert_form import RefusedForm, refused_form
from service.features.console.auth import Staff
from service.features.console.inputs import RowId
from service.features.console.labels import roster_file_error_zh
from service.features.console.models import AltCertification, ConsoleAlert, DeathRecord
from service.features.console.template_erasure import withdraw_at_counter
from service.features.console.web import (
    PREFIX,
    CurrentStaff,
    Forbidden,
    Supervisor,
    check_csrf,
    ctx_of,
    no_store,
    redirect,
    render,
    unit,
)
from service.features.proxy.models import ProxyBinding, ProxyOperator
from service.infra.clock import local_today
from service.infra.security import new_token

router = APIRouter(prefix=PREFIX)
MAX_ROSTER_BYTES = 50 * 1024 * 1024
# What `?e=` may say after a refused form: a code, shown as its sentence. Never the parameter itself: a crafted
# link would otherwise put any text of its author's ("请拨打…核实") in the page's error box.
ERRORS = {
    "date": "日期无效",
    "deceased": "死亡日期不能晚于今天，并须填写信息来源",
    "certify": "请选择认证方式、填写日期（不晚于今天）和核验情况",
    "resent": RESENT_FORM,
    "template": "请填写本人如何提出申请（如本人持身份证到柜台）",
    "withdraw": "请填写撤销死亡登记的原因",
}


@router.get("/roster")
def roster_page(request: Request, staff: CurrentStaff) -> Response:
    with unit(request) as db:
        imports = db.scalars(select(RosterImport).order_by(RosterImport.id.desc()).limit(10)).all()
    return render(request, "roster.html", staff, imports=imports, results=None, report=None, error=None)


@router.post("/roster/search")
def search(
    request: Request, staff: CurrentStaff, q: Annotated[str, Form()], csrf: Annotated[str, Form()] = ""
) -> Response:
    """A POST, so that names and ID numbers typed here never appear in a URL or an access log."""
    check_csrf(staff, csrf)
    q = q.strip()[:64]
    ctx = ctx_of(request)
    with unit(request) as db:
        day = local_today(ctx.settings)  # a number's birth date is valid up to the bureau's today
        kind, results, more = roster_search.search(db, ctx.keyring, staff, q, day) if q else ("external_id", [], False)
        if q and not results and kind != "name":
            # A lookup of one person by number: someone outside the scope reads as not found. A scoped account's
            # miss is audited whether or not the person exists elsewhere (the log names the kind of number, or
            # the external id typed, never whom it found): the log must not answer "is this a pensioner?".
            scope.visible(db, staff, None, "beneficiary", q if kind == "external_id" else kind)
        # What was searched for is personal data: the audit keeps the kind of query and every record shown.
        shown = {"n": len(results), "shown": [b.external_id for b in results]}
        access_log.record_list(db, staff.actor, "roster.search", kind, shown, [b.id for b in results])
        imports = db.scalars(select(RosterImport).order_by(RosterImport.id.desc()).limit(10)).all()
    # The query goes back into the box (a POST answered no-store: nothing new is kept), and a cut list says so.
    return no_store(
        render(
            request,
            "roster.html",
            staff,
            imports=imports,
            results=results,
            report=None,
            error=None,
            q=q,
            more=more,
            limit=roster_search.LIMIT,
        )
    )


@router.post("/roster/import")
async def roster_import(
    request: Request, staff: Supervisor, file: Annotated[UploadFile, File()], csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(staff, csrf)
    if staff.scope:
        # An import creates and changes records anywhere in the jurisdiction, and its report names them.
        raise Forbidden("名册导入需要全辖区权限的账户")
    data = await file.read(MAX_ROSTER_BYTES + 1)
    name = file.filename or "roster.csv"
    error, report = None, None
    if len(data) > MAX_ROSTER_BYTES:
        error = "文件过大"
    else:
        try:
            with unit(request) as db:
                terms, keyring = import_terms(ctx_of(request)), ctx_of(request).keyring
                report = import_roster(db, keyring, name, data, staff.actor, terms).to_dict()
                audit_chain.record(
                    db,
                    staff.actor,
                    "roster.import",
                    str(report["import_id"]),
                    {k: report[k] for k in ("created", "updated", "unchanged", "rejected")},
                )
        except ServiceError as exc:
            error = f"导入失败：{roster_file_error_zh(exc)}"
    with unit(request) as db:
        imports = db.scalars(select(RosterImport).order_by(RosterImport.id.desc()).limit(10)).all()
    status = 200 if error is None else 422
    return render(
        request, "roster.html", staff, status=status, imports=imports, results=None, report=report, error=error
    )


@router.get("/beneficiaries/{bid}")
def beneficiary_page(request: Request, staff: CurrentStaff, bid: RowId) -> Response:
    return _person_page(request, staff, bid, ERRORS.get(request.query_params.get("e", "")))


def _person_page(
    request: Request, staff: Staff, bid: int, error: str | None, refused: RefusedForm | None = None
) -> Response:
    """The person's page; `refused`: a counter / home-visit form refused, its reason shown and its fields kept."""
    ctx = ctx_of(request)
    with unit(request) as db:
        b = scope.beneficiary(db, staff, bid)  # out of the staff member's scope: as missing
        if b is None:
            return render(request, "message.html", staff, status=404, message="人员不存在", back="/roster")
        sessions = db.scalars(
            select(CertSession)
            .where(CertSession.beneficiary_id == bid)
            .order_by(CertSession.created_at.desc())
            .limit(50)
        ).all()
        certs = db.scalars(
            select(Certification).where(Certification.beneficiary_id == bid).order_by(Certification.certified_on.desc())
        ).all()
        alts = {
            a.session_id: a for a in db.scalars(select(AltCertification).where(AltCertification.beneficiary_id == bid))
        }
        events = db.scalars(
            select(CycleEvent).where(CycleEvent.beneficiary_id == bid).order_by(CycleEvent.on_date)
        ).all()
        bindings = db.execute(
            select(ProxyBinding, ProxyOperator)
            .join(ProxyOperator, ProxyOperator.id == ProxyBinding.operator_id)
            .where(ProxyBinding.beneficiary_id == bid)
            .order_by(ProxyBinding.created_at)
        ).all()
        death = db.get(DeathRecord, bid)
        # In the order they were raised, as the history below reads (without an order, PostgreSQL returns an alert
        # resolved or merged since after the later ones: its rewritten row moved).
        alerts = db.scalars(
            select(ConsoleAlert)
            .where(ConsoleAlert.beneficiary_id == bid)
            .order_by(ConsoleAlert.created_at, ConsoleAlert.id)
        ).all()
        # The sessions' media: held (until when), deleted, none (service/certification/evidence_hold.py).
        shown = [s.id for s in sessions] + [c.session_id for c in certs]
        evidence = evidence_of(db, shown, utcnow(), ctx.settings.storage.evidence_hold_days)
        consent_pending = pending_consent(db, bid)  # sessions in flight that would keep a template
        revoke_asked = revoke_asks(db, certs)  # a revocation asked by one supervisor, for another to confirm
        who = who_is(db, _actors(certs, revoke_asked.values(), evidence, alerts))  # staff by their names
        audit_chain.record(db, staff.actor, "beneficiary.view", audit_chain.person_target(b))
        today = local_today(ctx.settings)
        # The one rule of the lists, the API view and the dashboard: a certification made in time that waits for
        # staff reads 认证待审核, not 已逾期 (cycle.states_of sees the sessions; state_of alone cannot).
        state = states_of(db, [b], today, ctx.rules, cases=ctx.hooks.case_sources())[b.id]
    return no_store(
        render(
            request,
            "beneficiary.html",
            staff,
            status=refused.status if refused else 200,
            b=b,
            state=state.value,
            sessions=sessions,
            certs=certs,
            alts=alts,
            events=events,
            bindings=bindings,
            death=death,
            alerts=alerts,
            evidence=evidence,
            consent_pending=consent_pending,
            revoke_asked=revoke_asked,
            who=who,
            today=today.isoformat(),
            form_token=new_token(),  # the counter form's own: sent twice, it records once (alt_cert.recorded_form)
            identity_stamp=identity_stamp(b),  # the record's ID number as the counter form saw it
            error=error,
            refused=refused,
        )
    )


def _actors(
    certs: Iterable[Certification], asks: Iterable[Ask], evidence: EvidenceOnPage, alerts: Iterable[ConsoleAlert]
) -> list[str | None]:
    """Every actor the person's page names: who revoked or asked to, who held media or asked to release them, who
    recorded a certification an alert asks to check."""
    holds = [h for hs in evidence.holds.values() for h in hs]
    found: list[str | None] = [c.revoked_by for c in certs] + [a.actor for a in asks]
    found += [h.hold.placed_by for h in holds] + [h.release_asked.actor for h in holds if h.release_asked]
    return found + [str(a.detail.get("actor") or "") for a in alerts]


@router.get("/beneficiaries/{bid}/certificate.png")
def print_certificate(request: Request, staff: CurrentStaff, bid: RowId) -> Response:
    """打印凭证: the person's certificate copy (certificate_copy.py), printed from the browser at the counter."""
    ctx = ctx_of(request)
    try:
        with unit(request) as db:
            found = certificate_copy.counter_copy(db, staff, bid, local_today(ctx.settings))
    except ServiceError as exc:
        status = 404 if isinstance(exc, NotFoundError) else 409
        message = certificate_copy.refusal_zh(exc)
        return render(request, "message.html", staff, status=status, message=message, back=f"/beneficiaries/{bid}")
    if found is None:
        return render(request, "message.html", staff, status=404, message="人员不存在", back="/roster")
    b, cert, st = found
    png = certificate_png(b.name, cert, st, ctx.settings.public_base_url)
    return no_store(Response(png, media_type="image/png"))


@router.post("/beneficiaries/{bid}/deceased")
def deceased(
    request: Request,
    staff: Supervisor,
    bid: RowId,
    date_of_death: Annotated[str, Form()],
    source: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    recorded_date: Annotated[str, Form()] = "",  # the date on record when the form was rendered ("": none)
    recorded_source: Annotated[str | None, Form()] = None,  # and its source (None: a form from before it was sent)
) -> Response:
    check_csrf(staff, csrf)
    try:
        when = dt.date.fromisoformat(date_of_death)
        seen = dt.date.fromisoformat(recorded_date) if recorded_date else None
        with unit(request) as db:
            b = scope.beneficiary(db, staff, bid)
            if b is None:
                return redirect("/roster")
            settings = ctx_of(request).settings
            today = local_today(settings)
            hold_days = settings.storage.evidence_hold_days  # the media of a certification dated after it: held
            mark_deceased(
                db, staff, b, when, source[:500], today, seen, recorded_source, hold_days=hold_days, zone=settings
            )
    except (ValueError, AltCertError) as exc:
        return _death_form_refused(request, staff, bid, exc, "deceased")
    return redirect(f"/beneficiaries/{bid}")


@router.post("/beneficiaries/{bid}/deceased/withdraw")
def death_withdrawal(
    request: Request,
    staff: Supervisor,
    bid: RowId,
    reason: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    recorded_date: Annotated[str, Form()] = "",  # the date of death on the page when it was rendered ("": none)
) -> Response:
    """撤销死亡登记: a death recorded by mistake, withdrawn by a supervisor as it is registered (alt_cert.py)."""
    check_csrf(staff, csrf)
    try:
        seen = dt.date.fromisoformat(recorded_date) if recorded_date else None
        with unit(request) as db:
            b = scope.beneficiary(db, staff, bid)
            if b is None:
                return redirect("/roster")
            withdraw_deceased(db, staff, b, reason, seen)
    except (ValueError, AltCertError) as exc:
        return _death_form_refused(request, staff, bid, exc, "withdraw")
    return redirect(f"/beneficiaries/{bid}")


def _death_form_refused(
    request: Request, staff: Staff, bid: int, exc: ValueError | AltCertError, refused: str
) -> Response:
    """The one answer to a refused death registration or withdrawal: a form rendered before the record changed
    (StaleDeathForm) is its own 409 page naming what is on record now; a date that is no date returns to the page
    with 日期无效 (`e=date`); the form's other refusals with its own line (`e=<refused>`, ERRORS)."""
    if isinstance(exc, StaleDeathForm):
        return render(request, "message.html", staff, status=409, message=exc.message, back=f"/beneficiaries/{bid}")
    return redirect(f"/beneficiaries/{bid}?e={refused if isinstance(exc, AltCertError) else 'date'}")


@router.post("/beneficiaries/{bid}/certify")
def certify(
    request: Request,
    staff: CurrentStaff,
    bid: RowId,
    kind: Annotated[str, Form()],
    on_date: Annotated[str, Form()],
    evidence: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    form_token: Annotated[str, Form()] = "",
    seen_identity: Annotated[str | None, Form(alias="identity_stamp")] = None,  # the record's, as rendered
) -> Response:
    """Counter or home-visit certification, recorded with the staff member and what they saw; once per form, and
    not for a record whose ID number changed since the form was rendered (StaleIdentityForm)."""
    check_csrf(staff, csrf)
    if kind not in ("counter", "home_visit") or not evidence.strip():
        return redirect(f"/beneficiaries/{bid}?e=certify")
    try:
        when = dt.date.fromisoformat(on_date)
        with unit(request) as db:
            b = scope.beneficiary(db, staff, bid)
            if b is None:
                return redirect("/roster")
            note = {"note": evidence.strip()[:1000]}
            token = form_token[:64] or None
            certify_alternative(db, ctx_of(request), b, kind, when, staff, note, token, seen_identity)
    except ResentForm:
        return redirect(f"/beneficiaries/{bid}?e=resent")
    except StaleIdentityForm as exc:
        return render(request, "message.html", staff, status=409, message=exc.message, back=f"/beneficiaries/{bid}")
    except (ValueError, AltCertError) as exc:
        return _person_page(request, staff, bid, None, refused_form(exc, kind, on_date, evidence))
    return redirect(f"/beneficiaries/{bid}")


@router.post("/beneficiaries/{bid}/template/withdraw")
def withdraw_template(
    request: Request,
    staff: CurrentStaff,
    bid: RowId,
    note: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """The person asks at the counter to erase their face template (template_erasure.py)."""
    check_csrf(staff, csrf)
    if not note.strip():
        return redirect(f"/beneficiaries/{bid}?e=template")
    with unit(request) as db:
        if withdraw_at_counter(db, staff, bid, note) is None:
            return redirect("/roster")
    return redirect(f"/beneficiaries/{bid}")
