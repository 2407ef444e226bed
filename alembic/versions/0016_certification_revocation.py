"""certifications get revoked_at, revoked_by, revoke_reason, revoke_note: a supervisor's revocation

A certification found fraudulent after its acceptance (冒领: a relative certified with the dead parent's face; a
wrong person accepted on review) is revoked by a supervisor (service/certification/revocation.py): the row stays,
its certificate's public check reads revoked (已撤销), and it counts toward nobody's validity any more. Existing
rows: NULL (not revoked). Downgrade drops the columns, and refuses while a certification is revoked: a downgraded
service would read a revoked certificate as valid again, and the revocation would be lost on the way back up
(service/infra/db/lossy_downgrade.py).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op
from service.infra.db.lossy_downgrade import refuse_to_lose

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("certifications") as batch:
        batch.add_column(sa.Column("revoked_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("revoked_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("revoke_reason", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("revoke_note", sa.Text(), nullable=True))


def downgrade() -> None:
    what = "revoked certifications (certifications.revoked_at; their certificates would read valid again)"
    refuse_to_lose("0016", [(what, "certifications WHERE revoked_at IS NOT NULL")])
    with op.batch_alter_table("certifications") as batch:
        for column in ("revoke_note", "revoke_reason", "revoked_by", "revoked_at"):
            batch.drop_column(column)
