"""beneficiaries get roster_status: the status word the roster's last import of the row gave

A roster row saying `deceased` for a record whose death a supervisor withdrew is held back only when it is the same
roster statement as the death withdrawn: the roster said `deceased` at its last import of that row too
(service/certification/deaths.py, roster_death_withdrawn). The record's own `status` cannot tell it (the withdrawal
sets it), so each roster import of the row records what the roster said (service/certification/roster_upsert.py).
Before, any later `deceased` was held back: a real death after the roster had said living again, or the roster's first
`deceased` after a console death was withdrawn, was dropped and the pension went on being paid.

Existing rows: NULL (not known: a roster `deceased` applies, as before docs/security.md Part DA), no backfill. A
nullable column: on PostgreSQL a catalogue change only (no rewrite), under the migration's lock_timeout. Downgrade
drops it: a memo of the roster's last word, no security data (the deaths and withdrawals are `cycle_events` rows);
after going back up the records read NULL again until their next import.

Revision ID: 0027
Revises: 0026
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("beneficiaries") as batch:
        batch.add_column(sa.Column("roster_status", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("beneficiaries") as batch:
        batch.drop_column("roster_status")
