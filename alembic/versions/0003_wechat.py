"""wechat channel: users (openid), session links, notification records

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 16:45:00
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wechat_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("beneficiary_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["beneficiary_id"], ["beneficiaries.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("openid"),
    )
    op.create_index(op.f("ix_wechat_users_beneficiary_id"), "wechat_users", ["beneficiary_id"], unique=False)
    op.create_table(
        "wechat_sessions",
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["cert_sessions.id"]),
        sa.PrimaryKeyConstraint("session_id"),
    )
    op.create_index(op.f("ix_wechat_sessions_openid"), "wechat_sessions", ["openid"], unique=False)
    op.create_table(
        "wechat_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=80), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("msgid", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "ref", "openid", name="uq_wechat_notice"),
    )
    op.create_index(op.f("ix_wechat_notices_status"), "wechat_notices", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_wechat_notices_status"), table_name="wechat_notices")
    op.drop_table("wechat_notices")
    op.drop_index(op.f("ix_wechat_sessions_openid"), table_name="wechat_sessions")
    op.drop_table("wechat_sessions")
    op.drop_index(op.f("ix_wechat_users_beneficiary_id"), table_name="wechat_users")
    op.drop_table("wechat_users")
