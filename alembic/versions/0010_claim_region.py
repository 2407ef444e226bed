"""proxy claims get a region: the review queue's region filter finds a relative's verification session

A claim's region is the roster's region when the claimed number is a beneficiary's, else the number's own area
code (its first six digits), written when the claim is made. Upgrade adds the column (indexed, default '') and
fills it from the roster for claims whose number the roster holds (by the keyed hash; a migration holds no key,
so claims of numbers the roster lacks keep ''). Downgrade drops it.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("proxy_claims") as batch:
        batch.add_column(sa.Column("region", sa.String(length=12), server_default="", nullable=False))
        batch.create_index(batch.f("ix_proxy_claims_region"), ["region"], unique=False)
    op.get_bind().exec_driver_sql(
        "UPDATE proxy_claims SET region = (SELECT b.region FROM beneficiaries b WHERE b.id_hash = proxy_claims.id_hash)"
        " WHERE EXISTS (SELECT 1 FROM beneficiaries b WHERE b.id_hash = proxy_claims.id_hash)"
    )


def downgrade() -> None:
    with op.batch_alter_table("proxy_claims") as batch:
        batch.drop_index(batch.f("ix_proxy_claims_region"))
        batch.drop_column("region")
