"""proxy claims: a relative's verification session without a `beneficiaries` row

A relative who is not a pensioner used to be stored, for their own real-name verification session, as a
`beneficiaries` row with status `proxy_operator` (external id `OPERATOR-…`). Now the session has no beneficiary
(`cert_sessions.beneficiary_id` and `video_fingerprints.beneficiary_id` nullable) and what it verifies (the
claimed ID number, encrypted as before, its hash, masked form and name) is a `proxy_claims` row. Upgrade moves
every verification session's claim off the row it pointed at and deletes the `proxy_operator` rows nothing
refers to any more. Downgrade recreates a `proxy_operator` row per claimed number no beneficiary holds (region
'': the clear number is not at hand) and points the sessions back at it.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op
from service.features.proxy import legacy
from service.infra.db.lossy_downgrade import refuse_to_lose

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proxy_claims",
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("operator_id", sa.String(length=36), nullable=False),
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("id_enc", sa.Text(), nullable=False),
        sa.Column("id_masked", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["operator_id"], ["proxy_operators.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["cert_sessions.id"]),
        sa.PrimaryKeyConstraint("session_id"),
    )
    op.create_index(op.f("ix_proxy_claims_id_hash"), "proxy_claims", ["id_hash"], unique=False)
    op.create_index(op.f("ix_proxy_claims_operator_id"), "proxy_claims", ["operator_id"], unique=False)
    for table, column in legacy.BENEFICIARY_COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(column, existing_type=sa.Integer(), nullable=True)
    legacy.claims_from_operator_rows(op.get_bind())


def downgrade() -> None:
    legacy.operator_rows_from_claims(op.get_bind())
    orphans = "rows without a beneficiary and no claim"
    refuse_to_lose("0009", [(f"{t} {orphans}", f"{t} WHERE {c} IS NULL") for t, c in legacy.BENEFICIARY_COLUMNS])
    for table, column in legacy.BENEFICIARY_COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(column, existing_type=sa.Integer(), nullable=False)
    op.drop_index(op.f("ix_proxy_claims_operator_id"), table_name="proxy_claims")
    op.drop_index(op.f("ix_proxy_claims_id_hash"), table_name="proxy_claims")
    op.drop_table("proxy_claims")
