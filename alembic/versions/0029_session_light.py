"""cert_sessions get light: the screen-light sequence issued with the session's challenge

The screen-light challenge (pipelines/liveness/light.py; docs/wechat.md): each session is issued a random sequence
of screen colours that the capture page shows while it records; the worker hands it to the certifier with the
video, which measures whether the face follows it (a video replayed on a monitor does not). Stored as the
sequence's JSON form (colours, rgb, step_ms, start_ms).

Existing rows: NULL (no sequence was issued: nothing shown, nothing to measure). A nullable column without a
default: on PostgreSQL a catalogue change only (no rewrite), under the migration's lock_timeout. Downgrade drops
it: the sequences of open sessions are lost, and their videos are analysed without one, as before this migration.

Revision ID: 0029
Revises: 0028
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cert_sessions") as batch:
        batch.add_column(sa.Column("light", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cert_sessions") as batch:
        batch.drop_column("light")
