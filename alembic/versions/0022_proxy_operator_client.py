"""proxy_operators get client: a relative's account answers the logins of the client that made it only

`POST /api/v1/proxy/operators` found the account by (channel, channel_id) alone and issued a fresh token to
whichever channel key asked, cancelling the previous one: any integrator's key that knew a relative's phone number
or openid took over their account (their verified name, elders, history, unbinding), the H5 pages' own `wechat`
accounts included. The account now records the client that made it (`api:<8 hex>`, `wechat-h5`); another key's
login is refused, its token left as it was (service/features/proxy/operators.py; docs/security.md).

Existing rows: the actor of the account's first `proxy.operator.login` audit entry (the login that made it); an
account no entry names stays NULL and is claimed by its next login. Downgrade drops the column.

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

# The first login's entry (the one that created the account): audit ids grow with time.
_BACKFILL = """
UPDATE proxy_operators SET client = (
    SELECT a.actor FROM audit_entries a
    WHERE a.action = 'proxy.operator.login' AND a.target = proxy_operators.id
    ORDER BY a.id LIMIT 1
)
"""


def upgrade() -> None:
    with op.batch_alter_table("proxy_operators") as batch:
        batch.add_column(sa.Column("client", sa.String(length=64), nullable=True))
    op.execute(_BACKFILL)


def downgrade() -> None:
    with op.batch_alter_table("proxy_operators") as batch:
        batch.drop_column("client")
