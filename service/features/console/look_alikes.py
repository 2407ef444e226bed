"""One face under two pension accounts, raised as a supervisor's alert (预警).

`pension-cert calibrate-faces --from-enrolled` scores every pair of enrolled templates and lists the pairs of
different accounts whose faces reach the accept band: the same person enrolled twice (a duplicate payment, or
冒领 through a second identity), twins, or a true look-alike. Each pair becomes one alert on the alerts page,
with both people; a supervisor checks it and marks it handled. A pair alerted once is never raised again (a pair
found to be twins stays resolved), so the calibration can run every month.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.models import Beneficiary
from service.features.console.models import ConsoleAlert

KIND = "same_face_two_accounts"


def raise_look_alike_alerts(
    db: Session, pairs: Sequence[Mapping[str, Any]], threshold: float, found_on: str
) -> list[ConsoleAlert]:
    """An alert for each pair of accounts (``pairs``: external ids ``a``, ``b`` and ``similarity``) not alerted
    before; pairs naming an account no longer on the roster are skipped. Returns the new alerts."""
    external = {str(p[k]) for p in pairs for k in ("a", "b")}
    people = {b.external_id: b for b in db.scalars(select(Beneficiary).where(Beneficiary.external_id.in_(external)))}
    known = {str(a.detail.get("pair")) for a in db.scalars(select(ConsoleAlert).where(ConsoleAlert.kind == KIND))}
    raised: list[ConsoleAlert] = []
    for p in pairs:
        a, b = people.get(str(p["a"])), people.get(str(p["b"]))
        if a is None or b is None or a.id == b.id:
            continue
        first, other = sorted((a.id, b.id))
        key = f"{first}-{other}"
        if key in known:
            continue
        known.add(key)
        detail = {
            "pair": key,
            "other_id": other,
            "similarity": float(p["similarity"]),
            "threshold": float(threshold),
            "found_on": found_on,
        }
        raised.append(ConsoleAlert(kind=KIND, beneficiary_id=first, detail=detail))
    db.add_all(raised)
    db.flush()
    return raised


def other_id(alert: ConsoleAlert) -> int | None:
    """The second account of a look-alike alert (the first is ``beneficiary_id``); None for other alerts."""
    if alert.kind != KIND or "other_id" not in alert.detail:
        return None
    return int(alert.detail["other_id"])


def other_people(db: Session, alerts: Sequence[ConsoleAlert]) -> dict[int, Beneficiary]:
    """The second account of each look-alike alert, by id (for the alerts page)."""
    ids = {i for i in map(other_id, alerts) if i is not None}
    if not ids:
        return {}
    return {b.id: b for b in db.scalars(select(Beneficiary).where(Beneficiary.id.in_(ids)))}
