"""assist requests: one open request per person and requester (not per person)

A stranger who knew a pensioner's name and ID number could file the one open request allowed for that person
with their own phone, so the pensioner's own request was refused and staff called the stranger. The partial
unique index now covers (beneficiary_id, openid): each WeChat user has at most one open request per person, and
staff see every one. Downgrade restores the per-person index (it fails if a person has two open requests then:
close one first).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

OPEN = sa.text("status = 'open'")


def _index(columns: list[str]) -> None:
    op.create_index(
        "uq_assist_requests_open", "assist_requests", columns, unique=True, sqlite_where=OPEN, postgresql_where=OPEN
    )


def upgrade() -> None:
    op.drop_index("uq_assist_requests_open", table_name="assist_requests")
    _index(["beneficiary_id", "openid"])


def downgrade() -> None:
    op.drop_index("uq_assist_requests_open", table_name="assist_requests")
    _index(["beneficiary_id"])
