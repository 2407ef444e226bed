"""The claim of a relative's verification that never became their identity, emptied with its session's media.

Every verification session keeps a `ProxyClaim`: the ID number typed (sealed, the service can open it), the name
typed, their hash, masked form and region. An accepted one is the relative's verified identity (Part H keeps it);
a rejected or expired one (a typo, a stranger trying someone's number) has no purpose once its session's media
are purged at the end of the retention period: its number and name are emptied then (an `UpkeepHook`, run with
the purge), the rest kept: the hash for the near-duplicate check and the key rotation's copies
(`rekey`), the masked number and region for the review queue and the staff's pages. Readers of the sealed number
skip an emptied claim (`own_template._person_hashes`, `recovery.reopen_family`, the rekey).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import or_, select, update
from sqlalchemy.engine import CursorResult

from service.certification.audit import audit
from service.certification.context import ServiceContext
from service.certification.models import CertSession, SessionDecision
from service.features.proxy.models import ProxyClaim

ERASED = ""  # an emptied claim's id_enc and name (the columns are NOT NULL)


def erase_unverified_claims(ctx: ServiceContext, at: dt.datetime, /) -> dict[str, int]:
    """Empty the number and name of every claim whose session's media were purged and that was not accepted
    (the purge runs first in the daily upkeep: the same run empties the claims of the sessions it purged).
    One audit entry per run that emptied any."""
    purged = select(CertSession.id).where(
        CertSession.media_purged_at.is_not(None),
        or_(CertSession.decision.is_(None), CertSession.decision != SessionDecision.ACCEPT.value),
    )
    with ctx.db() as db:
        res = db.execute(
            update(ProxyClaim)
            .where(ProxyClaim.session_id.in_(purged), ProxyClaim.id_enc != ERASED)
            .values(id_enc=ERASED, name=ERASED)
            .execution_options(synchronize_session=False)
        )
        erased = int(cast(CursorResult[Any], res).rowcount or 0)
        if erased:
            audit(db, "system", "retention.proxy_claim", at.date().isoformat(), {"claims": erased})
    return {"proxy_claims_erased": erased}
