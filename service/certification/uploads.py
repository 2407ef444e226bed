"""One upload, as a unit of work: the sequence the session API and the H5 card routes share.

Get the session, check its token, answer a retried request (same Idempotency-Key, same content) as stored, let
the caller's pre-check refuse the content, lock the row, store (`sessions.upload`), commit, and only then enqueue
the job and say what the citizen can expect (`sessions.processing_outlook`). Acknowledge only what is committed:
the job exists once committed, and only then is announced.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.orm import Session

from service.certification import sessions
from service.certification.context import ServiceContext
from service.certification.models import CertSession, SessionState, UploadKind

# Sees the session and the bytes before anything is stored; refuses by raising. It may end the transaction (a slow
# check should not hold the row lock): the row is locked again after it.
PreCheck = Callable[[CertSession, bytes], None]


def store_upload(
    db: Session,
    ctx: ServiceContext,
    session_id: str,
    token: str | None,
    kind: UploadKind,
    read: Callable[[], bytes],
    content_type: str,
    request_id: str,
    nonce: str | None = None,
    precheck: PreCheck | None = None,
    arrived_at: dt.datetime | None = None,
) -> dict[str, object]:
    """Store one upload of `kind` and answer with the session's status view.

    `read` is called only after the token is checked: an unauthorised request is refused before its body is read.
    `arrived_at`: when the server began receiving the request (`sessions.upload`: the challenge is judged then).
    Errors are the domain's (`ServiceError`: token, idempotency mismatch, media checks, session state)."""
    s = sessions.get_session(db, session_id, for_update=True)
    sessions.check_token(s, token, ctx.settings.certification.session_ttl_s)
    data = read()
    # A retried request (409 IDEMPOTENCY_MISMATCH for the same key, other content) skips the pre-check's cost.
    if sessions.replayed(s, kind, request_id, data, nonce):
        return _answer(db, ctx, s, queued=False)
    if precheck is not None:
        precheck(s, data)
        s = sessions.get_session(db, session_id, for_update=True)
    queued = sessions.upload(db, ctx, s, kind, data, content_type, request_id, nonce, arrived_at)
    return _answer(db, ctx, s, queued)


def _answer(db: Session, ctx: ServiceContext, s: CertSession, queued: bool) -> dict[str, object]:
    view = sessions.status_view(ctx, s)
    db.commit()
    if queued:
        ctx.enqueue(s.id)
    if s.state == SessionState.QUEUED:  # stored either way; "delayed" when no worker is alive to run it
        view.update(sessions.processing_outlook(ctx, alert=queued))
    return view
