"""proxy certification: operators, bindings, proxy sessions

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proxy_operators",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("channel_hash", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("person_hash", sa.String(length=64), nullable=True),
        sa.Column("id_masked", sa.String(length=24), nullable=True),
        sa.Column("name", sa.String(length=64), nullable=True),
        sa.Column("verified_at", sa.DateTime(), nullable=True),
        sa.Column("template", sa.LargeBinary(), nullable=True),
        sa.Column("template_model", sa.String(length=64), nullable=True),
        sa.Column("template_consent", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "channel_hash", name="uq_proxy_operator_channel"),
    )
    op.create_index("ix_proxy_operators_token_hash", "proxy_operators", ["token_hash"])
    op.create_index("ix_proxy_operators_person_hash", "proxy_operators", ["person_hash"])
    op.create_table(
        "proxy_bindings",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("operator_id", sa.String(length=36), sa.ForeignKey("proxy_operators.id"), nullable=False),
        sa.Column("beneficiary_id", sa.Integer(), sa.ForeignKey("beneficiaries.id"), nullable=False),
        sa.Column("relationship", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("consent_method", sa.String(length=16), nullable=True),
        sa.Column("consent_ref", sa.String(length=64), nullable=True),
        sa.Column("consent_at", sa.DateTime(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_proxy_bindings_operator_id", "proxy_bindings", ["operator_id"])
    op.create_index("ix_proxy_bindings_beneficiary_id", "proxy_bindings", ["beneficiary_id"])
    op.create_index("ix_proxy_bindings_status", "proxy_bindings", ["status"])
    op.create_table(
        "proxy_sessions",
        sa.Column("session_id", sa.String(length=36), sa.ForeignKey("cert_sessions.id"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("operator_id", sa.String(length=36), sa.ForeignKey("proxy_operators.id"), nullable=False),
        sa.Column("binding_id", sa.String(length=36), sa.ForeignKey("proxy_bindings.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("session_id"),
    )
    op.create_index("ix_proxy_sessions_kind", "proxy_sessions", ["kind"])
    op.create_index("ix_proxy_sessions_operator_id", "proxy_sessions", ["operator_id"])
    op.create_index("ix_proxy_sessions_binding_id", "proxy_sessions", ["binding_id"])


def downgrade() -> None:
    op.drop_table("proxy_sessions")
    op.drop_table("proxy_bindings")
    op.drop_table("proxy_operators")
