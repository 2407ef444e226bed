"""certifications get own_validity: the row's valid_until is its own, as given when it was accepted

A revocation cuts back a certification in force that may carry the revoked one's date (a row entered late stored
the record's latest validity before docs/security.md Part BZ): revocation.cut_back, from a revocation and from the
daily run's repair (service/certification/carried_validity.py). It told such a row by recomputing its validity with
the record's region and the rules of today, so after a move to a region under another rule (the birthday-month
rule), or a change of VALIDITY_MONTHS or BIRTHDAY_MONTH_REGIONS, a genuine certification was shortened, and the
nightly repair audited it as having carried a revoked date. Every row accepted since Part BZ stores its own validity:
marked so now (the model's default), such a row is never cut.

Existing rows: false (may carry a date, judged as before): which of them were stored before Part BZ is not known. A
NOT NULL column with a constant default: on PostgreSQL a catalogue change only (no rewrite), under the migration's
lock_timeout. Downgrade drops it: after going back up the rows read false, judged as before this migration.

Revision ID: 0028
Revises: 0027
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("certifications") as batch:
        batch.add_column(sa.Column("own_validity", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("certifications") as batch:
        batch.drop_column("own_validity")
