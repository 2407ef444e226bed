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

# Each account's first login entry (the one that made it; audit ids grow with time), read in one pass over the login
# entries (ix_audit_entries_action). A subquery per account would scan those entries once per account: on a bureau's
# log, with hundreds of thousands of accounts, for hours, under the migration's locks.
_FIRST_LOGINS = """
SELECT a.target, a.actor FROM audit_entries a
JOIN (
    SELECT target, MIN(id) AS first FROM audit_entries WHERE action = 'proxy.operator.login' GROUP BY target
) f ON a.id = f.first
"""


def upgrade() -> None:
    with op.batch_alter_table("proxy_operators") as batch:
        batch.add_column(sa.Column("client", sa.String(length=64), nullable=True))
    bind = op.get_bind()
    firsts = [{"id": target, "client": actor} for target, actor in bind.execute(sa.text(_FIRST_LOGINS))]
    if firsts:  # by primary key, one statement run for each account
        bind.execute(sa.text("UPDATE proxy_operators SET client = :client WHERE id = :id"), firsts)


def downgrade() -> None:
    with op.batch_alter_table("proxy_operators") as batch:
        batch.drop_column("client")
