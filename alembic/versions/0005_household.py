"""beneficiary household: relatives on the roster, for the kinship face rule

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("beneficiaries", sa.Column("household", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_beneficiaries_household"), "beneficiaries", ["household"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_beneficiaries_household"), table_name="beneficiaries")
    # Batch mode: SQLite cannot drop a column in place, Alembic copies the table.
    with op.batch_alter_table("beneficiaries") as batch:
        batch.drop_column("household")
