"""Which queued job a worker takes next: each requester its turn.

Claimed oldest first, one integrator key (or one WeChat account, one family operator) that queued a batch at the
peak put every pensioner who uploaded after it behind the whole batch: 300 jobs, two minutes of two workers' work
(review: queue 2). A worker now takes the oldest job of a requester with the fewest jobs in progress: a
requester with a job running waits while another one's job waits, so a batch holds about one worker while others
queue, and a requester alone (or requesters equally served) is served oldest first, as before.

The requester is the session's opener (`attempts.opening_entry`: its `session.create` audit entry, the actor that
QUEUED_PER_REQUESTER counts); a session without one is a requester of its own. The pick is a hint: the claim's
compare-and-set on the row (processing.claim) still decides, so two workers picking the same job at once take it
once, the other finding the next on its next poll, as with oldest-first. The polling workers pick so (embedded
deployments); a Celery task claims the session its message names, in the broker's order.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from service.certification.attempts import opening_entry
from service.certification.models import AuditEntry, CertSession, SessionState


def next_job(db: Session, ready: ColumnElement[bool], running: ColumnElement[bool]) -> str | None:
    """The id of the job to claim among those `ready` selects: by the number of jobs in progress (`running`, a
    condition on a processing session: its worker still holds it) of the job's requester, then oldest queued.

    Two reads, each indexed: the requesters of the jobs in progress (few: one per worker thread, found by state),
    then the queued jobs (by state, as oldest-first read them) each with one probe of the audit entries' (target,
    action) index for its opener (about 55 ms for 4,000 queued among 300,000 sessions on PostgreSQL). One query
    joining the counts made PostgreSQL count them again for every queued job (0.6 s for 4,000 queued)."""
    in_progress = {
        str(actor): int(n)
        for actor, n in db.execute(
            select(AuditEntry.actor, func.count())
            .select_from(CertSession)
            .join(AuditEntry, opening_entry())
            .where(CertSession.state == SessionState.PROCESSING, running)
            .group_by(AuditEntry.actor)
        )
    }
    oldest = select(CertSession.id).where(ready).limit(1)
    if not in_progress:  # nobody's turn to skip: oldest first, without reading the openers
        return db.scalar(oldest.order_by(CertSession.queued_at, CertSession.id))
    # The opener per queued job, a correlated probe: joined, PostgreSQL hashed every session.create entry there is.
    opener = select(AuditEntry.actor).where(opening_entry()).limit(1).scalar_subquery()
    turn = case(in_progress, value=opener, else_=0)
    return db.scalar(oldest.order_by(turn, CertSession.queued_at, CertSession.id))
