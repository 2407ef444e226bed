"""Certification without a selfie, and deaths.

Face recognition must never be the only way to certify: staff record counter and home-visit
certifications, and activity evidence (hospital settlements, bank-counter withdrawals in person) imported as
CSV certifies a beneficiary for the cycle. Each becomes a decided `staff` session and goes through the same
`accept_session` as a selfie (validity, resumption, certificate), plus an `AltCertification` row with the
evidence. Marking a beneficiary deceased blocks certification, writes the payment system's row for the death
(service/certification/deaths.py, the one rule of every death path) and raises an alert for every certification
accepted after the date of death.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.current_person import dated_for_current_person
from service.certification.deaths import made_after, record_death, withdraw_death
from service.certification.errors import ServiceError
from service.certification.evidence_hold import MAX_NOTE_CHARS, HoldReason, ask_release, hold_if_stored
from service.certification.models import (
    Beneficiary,
    BeneficiaryStatus,
    CertSession,
    CycleEvent,
    EvidenceHold,
    SessionDecision,
    SessionState,
    one_of_hashes,
    utcnow,
)
from service.certification.processing import accept_session
from service.features.console import accounts, audit_chain, scope
from service.features.console.alert_review import raise_for_import, raise_if_recertified
from service.features.console.auth import Staff
from service.features.console.models import AltCertification, ConsoleAlert, DeathRecord
from service.infra.clock import HasTimeZone, local_today
from service.infra.security import mask_id, mask_text, new_token, normalise_id, token_hash

KINDS = ("counter", "home_visit", "activity")
EVIDENCE_COLUMNS = ("event_date", "source", "reference")
MAX_EVIDENCE_ROWS = 100_000
DEATH_ALERT = "certified_after_death"  # a certification accepted after the recorded date of death
WITHDRAWN = "death_withdrawn"  # a DEATH_ALERT's detail: closed by the withdrawal of the death that raised it
FORM_KEY = "form"  # the evidence's key for the token of the console form that recorded it


# An import by an account awaiting confirmation (Part BN: its admin would be the only other person).
EVIDENCE_UNCONFIRMED = "您的账号尚未经另一位主管确认，不能导入活动轨迹凭证。请先请另一位主管在预警页确认您的账号。"
RESENT_FORM = "此页面已提交过一次认证，本次内容不同，未保存。请刷新页面核对后重新填写。"
# Evidence seen before the roster gave the record another ID number was the previous number's person's
# (service/certification/current_person.py).
BEFORE_IDENTITY_CHANGE = "认证日期早于该档案身份证号变更之日，当时核验的是变更前号码的人员，不能为现档案人员认证"


class AltCertError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ResentForm(AltCertError):
    """A counter form sent again from the same page with other content (back, edit, send): its first send stands."""


class StaleIdentityForm(AltCertError):
    """A counter form rendered before the roster gave the record another ID number: its staff member checked the
    card of the number the page showed, the previous one (service/certification/current_person.py)."""

    def __init__(self) -> None:
        super().__init__(
            "您打开此页面后，名册已变更该档案的身份证号，本次认证未保存。请刷新页面，核对本人现用身份证后再提交。"
        )


def identity_stamp(b: Beneficiary) -> str:
    """The record's identity as a console form saw it: its last change of ID number, or "unchanged" (not "": an
    empty form field reads as one not sent)."""
    return b.identity_since.isoformat() if b.identity_since is not None else "unchanged"


class StaleDeathForm(AltCertError):
    """A death form rendered before the record it would change: another registration came in meanwhile (`rec`
    None: the record on the page is gone, a withdrawal's form finding a death from the roster since)."""

    def __init__(self, rec: DeathRecord | None) -> None:
        now = f"（现登记死亡日期 {rec.date_of_death.isoformat()}，来源：{rec.source}）" if rec is not None else ""
        super().__init__(f"该人员的死亡信息已在您打开此页面后被更新{now}，本次提交未保存。请刷新页面核对后再提交。")


def certify_alternative(
    db: Session,
    ctx: ServiceContext,
    b: Beneficiary,
    kind: str,
    on_date: dt.date,
    staff: Staff | None,
    evidence: dict[str, Any],
    form: str | None = None,
    seen_identity: str | None = None,
) -> AltCertification:
    """`form`: the token of the console form that sent it (FORM_KEY in the evidence). A form already recorded for
    this person (a double click, or sent again after a slow answer) records nothing: its record is returned.
    `seen_identity`: the form's `identity_stamp` as rendered (None: not a form that carries one); another than
    the record's now (a change of ID number since) records nothing (StaleIdentityForm)."""
    if kind not in KINDS:
        raise AltCertError("认证方式无效")
    # The person's row first, then the new session (the lock order, service/certification/lock_order.py): the
    # session's insert takes the row FOR KEY SHARE and `accept_session` then FOR UPDATE, so two certifications of
    # one person at once each held the weak lock the other's strong one waited for (a deadlock on PostgreSQL).
    # Re-read under the lock: a death recorded meanwhile is seen, and so is the same form's first send.
    db.refresh(b, with_for_update=True)
    done = recorded_form(db, b, form)
    if done is not None:
        if (done.kind, done.on_date, (done.evidence or {}).get("note")) != (kind, on_date, evidence.get("note")):
            # The same page sent again with other content (back, edit, send): not the double click, and not
            # silently dropped while the page says it was saved.
            raise ResentForm(RESENT_FORM)
        return done
    if seen_identity is not None and seen_identity != identity_stamp(b):
        raise StaleIdentityForm()
    if form:
        evidence = evidence | {FORM_KEY: form}
    if b.status == BeneficiaryStatus.DECEASED:
        raise AltCertError("该人员已登记死亡，不能认证")
    if on_date > local_today(ctx.settings):  # the bureau's today: 07:30 in Beijing is already the next day
        raise AltCertError("认证日期不能晚于今天")
    if not dated_for_current_person(b, on_date, ctx.settings):
        raise AltCertError(BEFORE_IDENTITY_CHANGE)
    s = _staff_session(b, kind, on_date, staff)
    db.add(s)
    db.flush()
    accept_session(db, ctx, s, b, on_date, None)
    alt = AltCertification(
        beneficiary_id=b.id,
        session_id=s.id,
        kind=kind,
        on_date=on_date,
        staff_id=staff.id if staff else None,
        evidence=evidence,
    )
    db.add(alt)
    db.flush()
    actor = staff.actor if staff else "system"
    audit_chain.record(
        db, actor, f"altcert.{kind}", audit_chain.person_target(b), {"on_date": on_date.isoformat(), "session": s.id}
    )
    # A second supervisor checks it: after a fraud revocation (docs/security.md Part BC), and any counter or home
    # visit (Part BN) (alert_review.py).
    raise_if_recertified(db, b.id, s.id, kind, on_date, str(evidence.get("note", "")), actor)
    return alt


def _staff_session(b: Beneficiary, kind: str, on_date: dt.date, staff: Staff | None) -> CertSession:
    """The decided `staff` session an alternative certification goes through `accept_session` as."""
    now = utcnow()
    return CertSession(
        id=str(uuid.uuid4()),
        beneficiary_id=b.id,
        channel="staff",
        token_hash=token_hash(new_token()),  # nobody holds this token: the session takes no uploads
        actions=[],
        nonce="alt-" + uuid.uuid4().hex,
        nonce_expires_at=now,
        nonce_used_at=now,
        expires_at=now,
        state=SessionState.DECIDED,
        decision=SessionDecision.ACCEPT,
        reasons=[],
        result={
            "alternative": {"kind": kind, "on_date": on_date.isoformat(), "staff": staff.username if staff else None}
        },
        decided_at=now,
    )


def recorded_form(db: Session, b: Beneficiary, form: str | None) -> AltCertification | None:
    """The certification of `b` the console form `form` already recorded, if any (call with `b` locked)."""
    if not form:
        return None
    alts = db.scalars(select(AltCertification).where(AltCertification.beneficiary_id == b.id))
    return next((a for a in alts if (a.evidence or {}).get(FORM_KEY) == form), None)


def mark_deceased(
    db: Session,
    staff: Staff,
    b: Beneficiary,
    date_of_death: dt.date,
    source: str,
    today: dt.date,
    seen: dt.date | None = None,
    seen_source: str | None = None,
    *,
    hold_days: int,
    zone: HasTimeZone,
) -> list[ConsoleAlert]:
    """Block further certification; alert on every certification made after the date of death (someone certified
    for a dead person: fraud or a wrong death record, either way a person must look; made: the day of the video's
    upload, deaths.made_on, in the bureau's calendar `zone`, not the day staff accepted it), once per
    certification however often the death is registered (a double submit, a second tab, a corrected date), and
    hold each one's media for `hold_days` (EVIDENCE_HOLD_DAYS; evidence_hold.py): the purge would otherwise delete
    the video of the very certification under suspicion while its alert is open.
    `today`: the bureau's date (service/infra/clock.local_today), required (the UTC date refused a death on the
    bureau's today from 00:00 to 08:00 in Beijing). `seen`: the date of death
    on record when the form was rendered (None: none was), and `seen_source` its source (None: not sent): a record
    that differs from them is not overwritten (StaleDeathForm), unless the form says exactly what it says (the
    same form sent twice)."""
    if date_of_death > today:
        raise AltCertError("死亡日期不能晚于今天")
    if not source.strip():
        raise AltCertError("请填写死亡信息来源")
    # The sessions of the certifications dated after the death first (their media may be held below), then the
    # person's row, re-read (service/certification/lock_order.py): a second registration at the same moment waits
    # here, then sees the first's record (the same one: nothing to do; another: refused).
    _lock_sessions_after(db, zone, b, date_of_death)
    db.refresh(b, with_for_update=True)
    # populate_existing: the record as committed now, not as this unit may have loaded it before the lock.
    rec = db.get(DeathRecord, b.id, populate_existing=True)
    changed = rec is not None and (
        rec.date_of_death != seen or (seen_source is not None and rec.source != seen_source.strip())
    )
    if rec is not None and changed:
        if (rec.date_of_death, rec.source) != (date_of_death, source.strip()):
            raise StaleDeathForm(rec)
        b.status = BeneficiaryStatus.DECEASED
        return []  # the same registration again: on record already, with its alerts and its payment row
    # The status and the payment system's row (one per date of death: a corrected date gets its own), the one rule
    # every death path follows (service/certification/deaths.py).
    event = record_death(db, b, date_of_death, today)
    if rec is None:
        db.add(
            DeathRecord(beneficiary_id=b.id, date_of_death=date_of_death, source=source.strip(), recorded_by=staff.id)
        )
    else:
        rec.date_of_death, rec.source, rec.recorded_by = date_of_death, source.strip(), staff.id
    alerts = _late_certification_alerts(db, zone, b, date_of_death)
    held = sum(_hold_evidence(db, staff, b, alert, hold_days) for alert in alerts)
    db.add_all(alerts)
    audit_chain.record(
        db,
        staff.actor,
        "beneficiary.deceased",
        audit_chain.person_target(b),
        {
            "date_of_death": date_of_death.isoformat(),
            "alerts": len(alerts),
            "evidence_held": held,
            "payment_event": event.id if event is not None else None,
        },
    )
    return alerts


def withdraw_deceased(
    db: Session, staff: Staff, b: Beneficiary, reason: str, seen: dt.date | None
) -> CycleEvent | None:
    """Withdraw `b`'s death, recorded by mistake (deaths.withdraw_death: the status it had, and the payment
    system's row voiding the stop), by a supervisor with a `reason`, audited; the payment row, or None when none was
    written. The console's DeathRecord goes (the page offers 登记死亡 again); its date and source stay in the audit
    entry. `seen`: the date of death on the page when its form was rendered (None: none was): another on record
    now is not withdrawn unseen (StaleDeathForm). A record no longer deceased changes nothing (withdrawn already)."""
    if not reason.strip():
        raise AltCertError("请填写撤销死亡登记的原因")
    db.refresh(b, with_for_update=True)  # a registration or withdrawal at the same moment waits here
    rec = db.get(DeathRecord, b.id, populate_existing=True)
    if b.status != BeneficiaryStatus.DECEASED:
        return None
    if (rec.date_of_death if rec is not None else None) != seen:
        raise StaleDeathForm(rec)
    was = {"date_of_death": rec.date_of_death.isoformat(), "source": rec.source} if rec is not None else {}
    event = withdraw_death(db, b)
    if rec is not None:
        db.delete(rec)
    closed, asked = _close_death_alerts(db, staff, b, reason.strip())
    audit_chain.record(
        db,
        staff.actor,
        "beneficiary.death_withdrawn",
        audit_chain.person_target(b),
        was
        | {
            "reason": reason.strip()[:500],
            "status": str(b.status),
            "payment_event": event.id if event is not None else None,
            "alerts_closed": closed,
            "hold_release_asked": asked,
        },
    )
    return event


def _close_death_alerts(db: Session, staff: Staff, b: Beneficiary, reason: str) -> tuple[int, int]:
    """Close the open `certified_after_death` alerts of `b` (a certification after a death that is withdrawn is no
    longer under suspicion), each audited as handled by the withdrawal (`alert.resolve`, `death_withdrawn`), and ask
    the release of the evidence holds they placed: the withdrawing supervisor's request, a second supervisor's
    confirmation releasing them (evidence_hold.ask_release: one person alone, a withdrawal being one supervisor's
    act, never lets the purge delete held evidence). Before, both stayed open for a supervisor to find on the alerts
    page. How many alerts were closed and releases asked. `b`'s row locked (the alerts after it, as
    alert_review.resolve_alert takes them)."""
    query = select(ConsoleAlert).where(
        ConsoleAlert.beneficiary_id == b.id, ConsoleAlert.kind == DEATH_ALERT, ConsoleAlert.resolved.is_(False)
    )
    alerts = db.scalars(query.order_by(ConsoleAlert.id).with_for_update()).all()
    note = mask_text(f"死亡登记已撤销：{reason}")[:MAX_NOTE_CHARS]
    asked = 0
    for a in alerts:
        a.resolved = True
        a.detail = {**a.detail, "resolved_by": staff.username, "resolve_note": note, WITHDRAWN: True}
        audit_chain.record(db, staff.actor, "alert.resolve", str(a.id), {"kind": a.kind, "note": note, WITHDRAWN: True})
        hold = db.get(EvidenceHold, a.detail["hold"]) if "hold" in a.detail else None
        if hold is not None and ask_release(db, hold, note, staff.actor, b.external_id):
            asked += 1
    return len(alerts), asked


def _lock_sessions_after(db: Session, zone: HasTimeZone, b: Beneficiary, date_of_death: dt.date) -> None:
    """Lock the sessions of `b`'s certifications made after `date_of_death`, by id (before the person's row)."""
    late = [c.session_id for c, _ in made_after(db, zone, b.id, date_of_death)]
    db.scalars(select(CertSession.id).where(CertSession.id.in_(late)).order_by(CertSession.id).with_for_update()).all()


def _hold_evidence(db: Session, staff: Staff, b: Beneficiary, alert: ConsoleAlert, hold_days: int) -> bool:
    """Hold the media of the certification `alert` names (a release then takes two supervisors, as any hold's);
    the alert says what became of them: held, already purged, or none stored (a counter certification). Whether
    a hold was placed."""
    session_id = str(alert.detail["session"])
    died, made, certified = (alert.detail[k] for k in ("date_of_death", "made_on", "certified_on"))
    note = f"死亡日期 {died} 后仍认证通过（认证材料提交日期 {made}，认证日期 {certified}），待核实"
    state, hold = hold_if_stored(db, session_id, HoldReason.INVESTIGATION, staff.actor, b.external_id, note, hold_days)
    alert.detail = {**alert.detail, "evidence": state.value} | ({"hold": hold.id} if hold is not None else {})
    return hold is not None


def _late_certification_alerts(
    db: Session, zone: HasTimeZone, b: Beneficiary, date_of_death: dt.date
) -> list[ConsoleAlert]:
    """An alert for each certification of `b` made after `date_of_death` (deaths.made_on: a video made while the
    person lived, accepted by staff after the death, is none) not alerted yet."""
    late = made_after(db, zone, b.id, date_of_death)
    raised = {  # an alert a withdrawal closed was about the death withdrawn: a death registered again raises anew
        str(a.detail.get("session"))
        for a in db.scalars(
            select(ConsoleAlert).where(ConsoleAlert.beneficiary_id == b.id, ConsoleAlert.kind == DEATH_ALERT)
        )
        if not a.detail.get(WITHDRAWN)
    }
    return [
        ConsoleAlert(
            kind=DEATH_ALERT,
            beneficiary_id=b.id,
            detail={
                "date_of_death": date_of_death.isoformat(),
                "made_on": made_on.isoformat(),
                "certified_on": c.certified_on.isoformat(),
                "session": c.session_id,
            },
        )
        for c, made_on in late
        if c.session_id not in raised
    ]


@dataclass
class EvidenceReport:
    filename: str
    certified: int = 0
    unchanged: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    refused: str | None = None  # why nothing was imported (the account awaits confirmation), in Chinese


def import_evidence(db: Session, ctx: ServiceContext, staff: Staff, filename: str, data: bytes) -> EvidenceReport:
    """CSV of activity evidence: external_id or id_number, event_date, source, reference. Each valid row
    certifies its beneficiary on the event date unless a certification as recent already exists (so a
    re-import changes nothing). An import that certified anyone raises one alert for a second supervisor
    (alert_review.raise_for_import); an account awaiting confirmation imports nothing (refused, recorded)."""
    try:
        accounts.check_second_person(None, staff)  # the one check of a confirmed account (Part BK)
    except ServiceError as exc:
        audit_chain.record(db, staff.actor, "evidence.import.refused", filename[:64], {"reason": exc.code})
        return EvidenceReport(filename, refused=EVIDENCE_UNCONFIRMED)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AltCertError("CSV 文件须为 UTF-8 编码") from exc
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in EVIDENCE_COLUMNS if c not in header]
    if missing or not ({"external_id", "id_number"} & set(header)):
        raise AltCertError("缺少列：" + ", ".join(missing or ["external_id 或 id_number"]))
    report = EvidenceReport(filename)
    today = local_today(ctx.settings)
    certified: list[Beneficiary] = []
    for n, raw in enumerate(reader):
        if n >= MAX_EVIDENCE_ROWS:
            raise AltCertError(f"超过 {MAX_EVIDENCE_ROWS} 行")
        row, unreadable = _cells(raw)
        line = n + 2
        errors, b, when = ([unreadable], None, None) if unreadable else _evidence_row(db, ctx, staff, row, today)
        if errors or b is None or when is None:
            ident = row.get("external_id") or mask_id(normalise_id(row.get("id_number", "")))
            ident = ident.replace("\x00", "")
            report.rejected.append({"line": line, "who": ident, "errors": errors})
            continue
        if b.last_certified_on is not None and b.last_certified_on >= when:
            report.unchanged += 1
            continue
        evidence = {
            "source": row["source"][:64],
            "reference": row["reference"][:128],
            "file": filename[:128],
            "line": line,
        }
        certify_alternative(db, ctx, b, "activity", when, staff, evidence)
        certified.append(b)
        report.certified += 1
    raise_for_import(db, staff.actor, filename, certified)
    audit_chain.record(
        db,
        staff.actor,
        "evidence.import",
        filename[:64],
        {"certified": report.certified, "unchanged": report.unchanged, "rejected": len(report.rejected)},
    )
    return report


def _cells(raw: dict[Any, Any]) -> tuple[dict[str, str], str | None]:
    """A CSV row's cells by lower-case column name, and what makes the row unreadable (None: nothing)."""
    extra = raw.pop(None, None)  # csv.DictReader puts the fields beyond the header under None, as a list
    row = {str(k).strip().lower(): (v or "").strip() for k, v in raw.items()}
    if extra and any(e.strip() for e in extra):  # blank ones (a trailing comma) are harmless
        return row, "该行的列数多于表头"
    if any("\x00" in v for v in row.values()):
        # A NUL character (a damaged export) is no id, date or reference; PostgreSQL cannot even look it up.
        return row, "该行含有无效字符"
    return row, None


def _evidence_row(
    db: Session, ctx: ServiceContext, staff: Staff, row: dict[str, str], today: dt.date
) -> tuple[list[str], Beneficiary | None, dt.date | None]:
    errors: list[str] = []
    b: Beneficiary | None = None
    if row.get("external_id"):
        b = db.scalar(select(Beneficiary).where(Beneficiary.external_id == row["external_id"]))
    elif row.get("id_number"):
        numbers = ctx.keyring.id_hashes(row["id_number"])  # under any signing key in use
        b = db.scalar(select(Beneficiary).where(one_of_hashes(Beneficiary.id_hash, numbers)))
    asked = row.get("external_id") or ("id_number" if row.get("id_number") else "")
    if asked and not scope.visible(db, staff, b.region if b is not None else None, "beneficiary", asked):
        b = None  # missing, or outside the importer's region scope: reported as not on the roster, alike
    if b is None:
        errors.append("名册中无此人")
    elif b.status == BeneficiaryStatus.DECEASED:
        errors.append("已登记死亡")
    when: dt.date | None = None
    try:
        when = dt.date.fromisoformat(row.get("event_date", ""))
        if when > today:
            errors.append("日期晚于今天")
        elif b is not None and not dated_for_current_person(b, when, ctx.settings):
            errors.append("日期早于该档案身份证号变更之日")
    except ValueError:
        errors.append("event_date 须为 YYYY-MM-DD")
    if not row.get("source") or not row.get("reference"):
        errors.append("缺少来源或凭证号")
    return errors, b, when
