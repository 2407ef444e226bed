"""certifications get notice_state: telling the person of a revocation stays due until settled

The notice of a revoked certification (service/features/wechat/revoked.py) was found from the revocations' audit
entries of the last 7 days: a WeChat schedule stopped (or the channel switched off) for longer never sent it. A
revocation now leaves `notice_state` = 'due' (service/certification/revocation.py, NoticeState), which the schedule
settles, whatever the gap: 'queued' (a notice recorded; wechat_notices keeps its delivery) or 'skipped' (nothing to
tell, or no account to tell it to). Indexed: the schedule asks every minute for the due ones.

Existing rows: NULL, also for a certification revoked before: such a revocation is told as it was then, found by
its audit entry within the week after it (docs/security.md, Part AO). Downgrade drops the column: revocations still
due are then found by the older code's week only.

Also indexes wechat_notices (kind, sent_at): under WECHAT_REMINDERS_PER_DAY every run (every minute) counts the
reminders sent today, which scanned every reminder ever sent (docs/security.md, Part AU).

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op
from service.infra.db import online_ddl

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A live PostgreSQL database: the indexes are built CONCURRENTLY (certifying and sending go on meanwhile), each
    # step re-runnable after a failed build (service/infra/db/online_ddl.py).
    online_ddl.add_column("certifications", sa.Column("notice_state", sa.String(length=8), nullable=True))
    online_ddl.create_index(op.f("ix_certifications_notice_state"), "certifications", ["notice_state"])
    online_ddl.create_index("ix_wechat_notices_kind_sent_at", "wechat_notices", ["kind", "sent_at"])


def downgrade() -> None:
    op.drop_index("ix_wechat_notices_kind_sent_at", table_name="wechat_notices")
    with op.batch_alter_table("certifications") as batch:
        batch.drop_index(batch.f("ix_certifications_notice_state"))
        batch.drop_column("notice_state")
