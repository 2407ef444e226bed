"""wechat_notices get claimed_at: a notice whose process died between the claim and the send is found

Delivery claims a pending notice (`pending → sending`) and sends it; a process that died in between (killed, a
deploy, OOM) left it `sending`, told apart from one being sent right now by nothing stored: neither retried nor
shown to staff, and the pensioner never told. The claim is now dated; a `sending` notice claimed longer ago than a
send can take, without WeChat's answer, goes to the console page 微信通知 like a lost answer
(service/features/wechat/notice_send.py, answer_unknown; docs/security.md, Part BF).

Existing rows: NULL. A `sending` one without the lost-answer mark was claimed by the code before this upgrade, whose
process is gone: it is answer-unknown at once (shown to staff). Downgrade drops the column: such notices are hidden
again, as before.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("wechat_notices") as batch:
        batch.add_column(sa.Column("claimed_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("wechat_notices") as batch:
        batch.drop_column("claimed_at")
