"""The one order in which transactions take row locks (PostgreSQL; SQLite's BEGIN IMMEDIATE serialises writers).

    assist_requests → cert_sessions → review_claims → beneficiaries → proxy_operators → proxy_claims →
    proxy_bindings
    (then the console audit chain's advisory lock, always last: service/features/console/audit_chain.py; the
    restore records' advisory lock, restore_record.exclusive, is taken first, before any row, by `record-restore`
    and `rewrite-kept` only; so is the console's warning run's, assist_hold_end.WARN_LOCK, by the daily upkeep;
    all three taken with service/infra/db/locks.one_writer_at_a_time)

A transaction may skip tables, but once it holds a row of one table it takes no row of a table earlier in the
list. Two transactions that need the same rows then meet in the same order: one waits for the other instead of
PostgreSQL aborting one of them (DeadlockDetected: a roster import, a worker's decision or a relative's request
failing). Several rows of one table are taken in a fixed order (the cycle run's and a roster import's beneficiaries
by id, a record's bindings by creation then id) or with SKIP LOCKED (the retention purge, the bindings' expiry).

What counts as taking a row: SELECT … FOR UPDATE / FOR KEY SHARE, an UPDATE or DELETE of it, and an INSERT of a
row whose foreign key names it (PostgreSQL takes FOR KEY SHARE on the parent row, which waits for a FOR UPDATE).

Who takes what, in this order (docs/security.md, Part L):

- an upload queuing a session (`sessions._check_undecided_attempts`): the session, its beneficiary; a relative's
  verification: its operator;
- a worker applying a decision (`processing._apply`, embedded and Celery alike): the session, the beneficiary
  (an accept), then the proxy feature's operator and binding (`proxy.holds.hold`, `proxy.hooks.on_decided` /
  `on_accept`);
- a staff decision (`review.settle`; the console's `decide_case`): the session, its review claim, then the
  beneficiary (an accept: `review.lock_person` locks it before the two-person rule reads the person's revocations,
  and `accept_session` before the features' accept hooks read or lock their rows, and reads its `identity_since`
  only under that lock: a roster import changing the number is waited for, then seen: docs/security.md, Part AA),
  then the operator and binding (a consent or verification session); the console giving a case back
  (`release_case`) its review claim alone;
- a roster import (`roster.import_roster`): the stored beneficiaries its file changes (not those whose row is
  unchanged), locked by id before its first write (`roster_upsert.lock_records`; the rows are then updated in the
  file's order under locks already held), then the bindings of a record whose ID number changed
  (`proxy.bindings.end_for_identity_change`);
- the proxy feature's requests: a binding (`bind`) the elder then the relative's accounts (every operator of the
  verified person, by id), then the new binding; a request on a relative's own binding (`own_binding(for_update=
  True)`: unbind, consent, open a session) the elder and the operator (FOR KEY SHARE) before the binding; staff
  consent the elder then the binding (`staff_binding`); staff unlock the binding alone;
- the console (service/features/console): an alternative certification (at the counter, a home visit, an assistance
  request: the request first) the beneficiary, before inserting its session (`alt_cert.certify_alternative`, then
  `accept_session` on the row it holds); every certification (`processing.accept_session`, however made) then the
  person's open requests (`assist.close_on_certification`), a step against the order, taken with SKIP LOCKED
  so it never waits: a request the request page holds is closing anyway; the request page's 视频审核通过
  (`assist_video.accept_video`) the request, then the session and the beneficiary (`review.settle`); a citizen's
  manual-review request from the H5 form (`assist.submit`, then `assist_video.hold_video`) the request, then its
  video's session (FOR SHARE: a purge deleting that video is waited for, then seen); a death
  registration the beneficiary; a supervisor's finding on a roster
  change of ID number (`identity_alerts.settle_identity_alert`) the beneficiary, then its alert (`console_alerts`,
  a table no other transaction locks with these), then, for a same-person finding, every account of the relatives
  concerned by id and the record's bindings (`proxy.identity.restore_for_same_person`); a supervisor's revocation of
  a certification (`revocation.revoke_certification`) the certification's session (the media it may hold as
  evidence), the beneficiary, then the certification (a table no other transaction locks with these), then, for a
  relative's proxy certification, its binding (`console.revoke`), then the requests it answered, reopened
  (`assist.reopen_on_revocation`, the other step against the order: SKIP LOCKED, a request a page holds this
  moment stays closed); a supervisor's hold on a session's media or its
  release (`evidence_hold`) the session, then the hold (`evidence_holds`, a table no other transaction locks);
- the person withdrawing the consent to keep their face template (`template_withdrawal.withdraw_template`, from
  the H5 "我的信息" page or the console's counter action) their sessions not yet accepted (by id), then the person;
  a relative withdrawing their own (`proxy.own_template`) their verification sessions, then their accounts (by
  id), then those accounts' identities (both withdrawals look for their sessions again until none is left:
  `template_withdrawal.withdraw_session_consent`);
  a session continued on the H5 pages ("again", `wechat.h5.recovery.continue_session`) the old session first,
  then what its opener takes;
  the elder ending a relative's binding there (`proxy.elder_bindings.end_by_elder`) the elder and the operator (FOR
  KEY SHARE), then the binding;
- the signing-key rekey (`rekey.rehash_column`, docs/security.md Part AH): per batch, the beneficiaries' rows
  (UPDATE), then the claims carrying their old hashes, then the relatives' identities; a relative's verification
  decided (`proxy.hooks.on_decided` / `on_accept`) locks its claim after the operator (`proxy.hooks.locked_claim`)
  and writes the identity after it: a rekey batch moving the claim is waited for, then its new hash copied;
- the daily work: the cycle run the lapsed beneficiaries (by id); the expiry and the purge sessions; the erasure of
  the deceased's templates their beneficiaries (flushed in primary-key order).
"""

from __future__ import annotations

LOCK_ORDER = (
    "assist_requests",
    "cert_sessions",
    "review_claims",
    "beneficiaries",
    "proxy_operators",
    "proxy_claims",
    "proxy_bindings",
)
