"""evidence_holds: a supervisor's hold on a session's media, kept from the retention purge

The ID-card photo and video of a session under investigation, or of a certification revoked as 冒领 / wrong accept,
are the evidence the bureau needs to recover an overpaid pension or report the fraud; the daily purge deleted them
`RETENTION_DAYS` after the decision (service/certification/evidence_hold.py). One row per hold: who placed it, when,
why, until when (`ends_at`: `EVIDENCE_HOLD_DAYS` after it was placed, the setting as it stood then: changing the
setting later never shortens nor extends a hold in force), and its early release. Existing sessions: no hold (purged as
before). Downgrade drops the table, and refuses while it holds a row: without its hold, the next purge deletes the
held media (service/infra/db/lossy_downgrade.py).

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op
from service.infra.db.lossy_downgrade import refuse_to_lose

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("placed_by", sa.String(length=64), nullable=False),
        sa.Column("placed_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=False),
        sa.Column("released_at", sa.DateTime(), nullable=True),
        sa.Column("released_by", sa.String(length=64), nullable=True),
        sa.Column("release_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["session_id"], ["cert_sessions.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_evidence_holds_session_id"), "evidence_holds", ["session_id"], unique=False)


def downgrade() -> None:
    what = "evidence holds (evidence_holds; without them the next purge deletes the media they keep)"
    refuse_to_lose("0017", [(what, "evidence_holds")])
    op.drop_index(op.f("ix_evidence_holds_session_id"), table_name="evidence_holds")
    op.drop_table("evidence_holds")
