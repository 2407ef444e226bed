"""console_audit indexed by target: "who looked at this person" without a scan of the whole staff log

The person page's access log (service/features/console/access_log.py, /console/beneficiaries/{id}/access) lists
the staff audit entries that name the person: their external id (person views, revocations, counter certifications,
citizens' requests), their sessions' ids (case views and decisions), their alerts' ids. console_audit.target had
no index, so each such look-up read every entry of the chain, which grows all year (docs/security.md, Part BE).

Existing rows: unchanged (an index only). Downgrade drops the index. On PostgreSQL the index is built CONCURRENTLY
(console actions keep writing the log during the build) and an INVALID one a failed build left is built again
(service/infra/db/online_ddl.py; docs/operations.md, upgrading a running bureau).

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

from service.infra.db import online_ddl

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    online_ddl.create_index("ix_console_audit_target", "console_audit", ["target"])


def downgrade() -> None:
    online_ddl.drop_index("ix_console_audit_target", "console_audit")
