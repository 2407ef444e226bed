"""Indexes for a large bureau's years of data: the notice run, the review queue, the audit-log viewer

- beneficiaries (status, valid_until): the WeChat notice run (every minute) finds the people whose date is within
  the reminder window by it (service/features/wechat/notice_queue.py, maybe_due); by `status` alone it read the
  whole roster each minute.
- cert_sessions (state, decision): the open review cases (`state = 'decided' AND decision = 'review'`, or failed:
  service/features/console/review_queue.py, open_case_filter) of the queue page, 下一件, the dashboard's backlog
  and the notices' in-flight check; by `state` alone each read every session the bureau ever decided.
- console_audit (actor, seq) and (action, seq): the audit-log viewer's filters by account and by action, newest
  first (service/features/console/routes_audit.py); each walked the whole staff log back to find a page. On
  PostgreSQL `action` takes varchar_pattern_ops: the filter is a prefix.

Existing rows: unchanged (indexes only). Downgrade drops them. On PostgreSQL each is built CONCURRENTLY (the roster,
the sessions and the staff log keep being written during the build) and an INVALID one a failed build left is
built again (service/infra/db/online_ddl.py; docs/operations.md, upgrading a running bureau).

Revision ID: 0025
Revises: 0024
"""

from __future__ import annotations

from service.infra.db import online_ddl

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_beneficiaries_status_valid_until", "beneficiaries", ["status", "valid_until"]),
    ("ix_cert_sessions_state_decision", "cert_sessions", ["state", "decision"]),
    ("ix_console_audit_actor_seq", "console_audit", ["actor", "seq"]),
    ("ix_console_audit_action_seq", "console_audit", ["action", "seq"]),
)
# The viewer's action filter is a prefix (`LIKE 'x%'`): PostgreSQL's index serves it under the bureau's collation
# (en_US and the like) only with the pattern operator class (staff_audit.action_prefix).
OPS = {"ix_console_audit_action_seq": {"action": "varchar_pattern_ops"}}


def upgrade() -> None:
    for name, table, columns in INDEXES:
        online_ddl.create_index(name, table, columns, postgresql_ops=OPS.get(name))


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        online_ddl.drop_index(name, table)
