"""assist requests: a citizen asks for a manual review or a home visit from the H5 pages; staff close them

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assist_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("beneficiary_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("by_relative", sa.Boolean(), nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("outcome_note", sa.String(length=500), nullable=True),
        sa.Column("closed_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["beneficiary_id"], ["beneficiaries.id"]),
        sa.ForeignKeyConstraint(["closed_by"], ["staff_users.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["cert_sessions.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_assist_requests_beneficiary_id"), "assist_requests", ["beneficiary_id"], unique=False)
    op.create_index(op.f("ix_assist_requests_status"), "assist_requests", ["status"], unique=False)
    op.create_index(
        "uq_assist_requests_open",
        "assist_requests",
        ["beneficiary_id"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )


def downgrade() -> None:
    op.drop_index("uq_assist_requests_open", table_name="assist_requests")
    op.drop_index(op.f("ix_assist_requests_status"), table_name="assist_requests")
    op.drop_index(op.f("ix_assist_requests_beneficiary_id"), table_name="assist_requests")
    op.drop_table("assist_requests")
