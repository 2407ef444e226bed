"""beneficiaries get identity_since: when a roster import last gave the record another ID number

The certifications stored before such a change are the previous person's; the cycle run no longer lets them keep
the record's benefit running after the new person's grace date (service/certification/cycle.py). Existing records
are back-filled from the audit trail: the time of their latest `roster.identity_changed` entry (NULL for records
never changed). Downgrade drops the column.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# Only the records a change names are written (a large roster's other rows are left as they are).
BACKFILL = """
UPDATE beneficiaries SET identity_since = (
    SELECT max(a.at) FROM audit_entries a
    WHERE a.action = 'roster.identity_changed' AND a.target = beneficiaries.external_id
)
WHERE external_id IN (SELECT target FROM audit_entries WHERE action = 'roster.identity_changed')
"""


def upgrade() -> None:
    with op.batch_alter_table("beneficiaries") as batch:
        batch.add_column(sa.Column("identity_since", sa.DateTime(), nullable=True))
    op.execute(sa.text(BACKFILL))


def downgrade() -> None:
    with op.batch_alter_table("beneficiaries") as batch:
        batch.drop_column("identity_since")
