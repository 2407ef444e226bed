"""review claims get released_by: who gave the case back last

A claim's lifetime (`CLAIM_TTL_S`) runs from its holder's first claim: claiming the case again no longer starts it
again, and neither does giving it back (放弃) and claiming it again, for which the row now keeps who gave it back
(with the time of their claim). Existing rows: NULL (nobody gave them back under this rule). Downgrade drops the
column.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_claims") as batch:
        batch.add_column(sa.Column("released_by", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_review_claims_released_by", "staff_users", ["released_by"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("review_claims") as batch:
        batch.drop_constraint("fk_review_claims_released_by", type_="foreignkey")
        batch.drop_column("released_by")
