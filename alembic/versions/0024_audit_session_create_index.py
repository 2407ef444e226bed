"""audit_entries indexed by (target, action): a key's sessions found by their `session.create` entry

`GET /api/v1/sessions/outcomes` (service/certification/outcome.py, channel_outcomes) lists the sessions a channel key
opened, by decision time: it walks cert_sessions by `decided_at` and keeps those whose `session.create` audit entry
names the key. audit_entries had indexes on `action` and `at` only, so each such test read every session.create
entry (millions by year end); by (target, action) it is one index probe per session (docs/security.md).

Existing rows: unchanged (an index only). Downgrade drops the index. On PostgreSQL the index is built CONCURRENTLY
(every API request writes audit entries during the build) and an INVALID one a failed build left is built again
(service/infra/db/online_ddl.py; docs/operations.md, upgrading a running bureau).

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

from service.infra.db import online_ddl

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    online_ddl.create_index("ix_audit_entries_target_action", "audit_entries", ["target", "action"])


def downgrade() -> None:
    online_ddl.drop_index("ix_audit_entries_target_action", "audit_entries")
