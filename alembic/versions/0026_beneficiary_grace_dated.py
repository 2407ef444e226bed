"""beneficiaries get grace_dated: the record's validity is the first-import grace date, not a certification's

A person imported with neither `valid_until` nor `last_certified_on` is given a grace date (the import or cycle start
plus NEW_IMPORT_GRACE_DAYS, 90 days by default: service/certification/roster_upsert.py). That date is more than
`due_soon_days` ahead, so the cycle state read `certified` (已认证) for a person never certified: on the day a bureau
loaded its roster the dashboard, its CSV, the person page, the API view and the family page said everyone was
certified. The import now marks the records it dates so, and the cycle state tells them apart
(`awaiting_first`, 待首次认证: service/certification/cycle.py, cycle_state) until they certify; a row the benefit
system dated (its `valid_until`) clears the mark.

Existing rows: false (the imports before the upgrade did not record which dates were the grace's: those people read as
before until they certify or a roster row dates them). A NOT NULL column with a constant default: on PostgreSQL a
catalogue change only (no rewrite), under the migration's lock_timeout. Downgrade drops it, and refuses while a
record is marked (service/infra/db/lossy_downgrade.py): the mark cannot be rebuilt (the date alone does not say it
was the grace's), so after going back up every grace-dated person read 已认证 until they certified.

Revision ID: 0026
Revises: 0025
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op
from service.infra.db.lossy_downgrade import refuse_to_lose

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("beneficiaries") as batch:
        batch.add_column(sa.Column("grace_dated", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    refuse_to_lose("0026", [("people awaiting a first certification (grace-dated)", "beneficiaries WHERE grace_dated")])
    with op.batch_alter_table("beneficiaries") as batch:
        batch.drop_column("grace_dated")
