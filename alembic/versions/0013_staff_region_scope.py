"""staff accounts get a region scope: the division-code prefixes whose pensioners they may see

Least privilege (PIPL): a reviewer of one district sees the faces, ID numbers and videos of that district's
pensioners only (service/features/console/scope.py). The column holds a JSON list of GB/T 2260 code prefixes;
existing accounts get '[]', the whole jurisdiction, as before. Downgrade drops the column, and refuses while an
account is limited to a region (it would see the whole jurisdiction: service/infra/db/lossy_downgrade.py).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op
from service.infra.db.lossy_downgrade import refuse_to_lose

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_users") as batch:
        batch.add_column(sa.Column("scope", sa.JSON(), server_default=sa.text("'[]'"), nullable=False))


def downgrade() -> None:
    what = "staff accounts limited to a region (staff_users.scope; they would see the whole jurisdiction)"
    refuse_to_lose("0013", [(what, "staff_users WHERE CAST(scope AS TEXT) NOT IN ('[]', '')")])
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("scope")
