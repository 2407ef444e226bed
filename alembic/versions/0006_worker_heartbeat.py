"""worker heartbeats: readiness needs a live worker; a dead worker's job is reclaimed before its lease ends

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_index(op.f("ix_worker_heartbeats_last_seen"), "worker_heartbeats", ["last_seen"], unique=False)
    op.add_column("cert_sessions", sa.Column("worker_process", sa.String(length=255), nullable=True))


def downgrade() -> None:
    # Batch mode: SQLite cannot drop a column in place, Alembic copies the table.
    with op.batch_alter_table("cert_sessions") as batch:
        batch.drop_column("worker_process")
    op.drop_index(op.f("ix_worker_heartbeats_last_seen"), table_name="worker_heartbeats")
    op.drop_table("worker_heartbeats")
