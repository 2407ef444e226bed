"""console_audit_shown: one row per person a staff list page showed, so they count on that person's 查阅记录;
staff_users.granted_by: an admin-made account is nobody's second person (nor its granter's) until another
supervisor confirms it

The list pages (the review queue, the alerts, the citizens' requests, a roster search's results) named the people
they showed only inside their staff audit entry's JSON list (`shown`), which no index reaches: such views were
missing from the person's 查阅记录 (service/features/console/access_log.py) and from the day's volume of views
(docs/security.md, Part BK). Each list view now also writes one row per person shown (the entry's sequence number,
the person's row id), in one INSERT per page; the JSON list stays in the hashed entry (the record).

An admin could create an account (choosing its password) and be either person of every two-person rule through it.
`granted_by` names the admin who created, raised or reset an account in the console, until a supervisor other than
that admin confirms it (service/features/console/accounts.py).

Existing rows: none written (list views before the upgrade stay in their entries' JSON lists only; the page says
so); existing accounts get NULL (confirmed: they were in use before the rule). Downgrade drops the table and the
column, and refuses while either holds something: the list views on people's 查阅记录, or an account awaiting its
confirmation (it would count as confirmed: service/infra/db/lossy_downgrade.py).

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op
from service.infra.db.lossy_downgrade import refuse_to_lose

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_audit_shown",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("beneficiary_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["seq"], ["console_audit.seq"]),
        sa.PrimaryKeyConstraint("seq", "beneficiary_id"),
    )
    op.create_index("ix_console_audit_shown_beneficiary_id", "console_audit_shown", ["beneficiary_id"], unique=False)
    with op.batch_alter_table("staff_users") as batch:
        batch.add_column(sa.Column("granted_by", sa.Integer(), nullable=True))


def downgrade() -> None:
    shown = "views of a person by a list page (console_audit_shown; gone from their 查阅记录)"
    awaiting = "admin-made accounts awaiting a second supervisor (staff_users.granted_by; they would pass as confirmed)"
    refuse_to_lose("0021", [(shown, "console_audit_shown"), (awaiting, "staff_users WHERE granted_by IS NOT NULL")])
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("granted_by")
    op.drop_index("ix_console_audit_shown_beneficiary_id", table_name="console_audit_shown")
    op.drop_table("console_audit_shown")
