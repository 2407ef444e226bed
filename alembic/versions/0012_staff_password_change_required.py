"""staff accounts: a password an admin set must be changed at the next login

An admin who creates an account or resets its password in the console chose that password and may still know it,
so they could act in the holder's name (the second supervisor of a proxy rejection included). The flag keeps the
holder on the password page until they have replaced it. Existing accounts are not flagged (their passwords may
have been changed since). Downgrade drops the column, and refuses while an account is flagged (the admin's password
would go on working: service/infra/db/lossy_downgrade.py).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op
from service.infra.db.lossy_downgrade import refuse_to_lose

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_users") as batch:
        batch.add_column(sa.Column("must_change_password", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    what = "staff accounts still to replace the password an admin set (staff_users.must_change_password)"
    refuse_to_lose("0012", [(what, "staff_users WHERE must_change_password")])
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("must_change_password")
