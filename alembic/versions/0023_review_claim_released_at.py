"""review_claims get released_at: when a reviewer gave the case back (放回队列)

A reviewer whose claim had lapsed could give the case back and claim it again at once for a fresh lifetime
(docs/security.md Part CG's "left"), holding a case off colleagues, and a four-eyes case off the other
supervisors, for as long as they liked. The time of giving back is now stored: once the given-back claim's
lifetime has run out, its giver may claim the case again only `RECLAIM_WAIT_S` after giving it back, colleagues
at once (service/features/console/review_queue.py, reclaim_at).

Existing rows: NULL (a case given back before the upgrade): claimed afresh as before. A nullable column without a
default: on PostgreSQL a catalogue change only (no rewrite), under the migration's lock_timeout. Downgrade drops it.

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_claims") as batch:
        batch.add_column(sa.Column("released_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("review_claims") as batch:
        batch.drop_column("released_at")
