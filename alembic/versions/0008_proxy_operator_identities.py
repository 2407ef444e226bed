"""proxy operator identities: the relative's verified identity and face template in their own table

The channel account (`proxy_operators`) keeps only the login; who the relative proved to be (ID hash, masked
number, name, when) and their enrolled template move to `proxy_operator_identities`, one row per operator that
has either. Downgrade puts them back on `proxy_operators`.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

IDENTITY = ("person_hash", "id_masked", "name", "verified_at", "template", "template_model", "template_consent")


def upgrade() -> None:
    op.create_table(
        "proxy_operator_identities",
        sa.Column("operator_id", sa.String(length=36), nullable=False),
        sa.Column("person_hash", sa.String(length=64), nullable=True),
        sa.Column("id_masked", sa.String(length=24), nullable=True),
        sa.Column("name", sa.String(length=64), nullable=True),
        sa.Column("verified_at", sa.DateTime(), nullable=True),
        sa.Column("template", sa.LargeBinary(), nullable=True),
        sa.Column("template_model", sa.String(length=64), nullable=True),
        sa.Column("template_consent", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["operator_id"], ["proxy_operators.id"]),
        sa.PrimaryKeyConstraint("operator_id"),
    )
    op.create_index(
        op.f("ix_proxy_operator_identities_person_hash"), "proxy_operator_identities", ["person_hash"], unique=False
    )
    cols = ", ".join(IDENTITY)
    # Only operators with something to carry: an unverified account without a template has no identity.
    op.execute(
        f"INSERT INTO proxy_operator_identities (operator_id, {cols}) SELECT id, {cols} FROM proxy_operators "
        "WHERE verified_at IS NOT NULL OR person_hash IS NOT NULL OR template IS NOT NULL"
    )
    op.drop_index("ix_proxy_operators_person_hash", table_name="proxy_operators")
    with op.batch_alter_table("proxy_operators") as batch:
        for name in IDENTITY:
            batch.drop_column(name)


def downgrade() -> None:
    with op.batch_alter_table("proxy_operators") as batch:
        batch.add_column(sa.Column("person_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("id_masked", sa.String(length=24), nullable=True))
        batch.add_column(sa.Column("name", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("verified_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("template", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("template_model", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("template_consent", sa.Boolean(), nullable=False, server_default=sa.false()))
    # 0004 declared template_consent without a server default: the default only fills the existing rows.
    with op.batch_alter_table("proxy_operators") as batch:
        batch.alter_column("template_consent", server_default=None)
    op.create_index("ix_proxy_operators_person_hash", "proxy_operators", ["person_hash"])
    for name in IDENTITY:
        op.execute(
            f"UPDATE proxy_operators SET {name} = (SELECT i.{name} FROM proxy_operator_identities i "
            "WHERE i.operator_id = proxy_operators.id) "
            "WHERE id IN (SELECT operator_id FROM proxy_operator_identities)"
        )
    op.drop_index(op.f("ix_proxy_operator_identities_person_hash"), table_name="proxy_operator_identities")
    op.drop_table("proxy_operator_identities")
