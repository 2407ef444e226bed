"""A migration's downgrade that would destroy what the service recorded since refuses instead (0009's rule).

`alembic downgrade` is the documented way back for the code's rollback (docs/operations.md), and several downgrades
drop what their upgrade let the service keep: a revocation (the certificate reads valid again), an evidence hold (the
next purge deletes the media), a region scope (the account sees the whole jurisdiction). Gone by a plain
`drop_column`, with exit 0 and, before env.py printed its steps, no word. The downgrade now first counts what it would
lose and, while anything would be lost, refuses before changing anything (its migration's transaction is rolled back;
the database stays at that migration). There is no override: the way back to an older version is the dump taken
before the upgrade, which holds the older schema with its own data.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic.util import CommandError

from alembic import op


class DowngradeRefusedError(CommandError):
    """The refusal: Alembic's command line prints it as one `FAILED: …` line (exit 1), no traceback."""

    code = "DOWNGRADE_REFUSED"


def refuse_to_lose(revision: str, kept: Sequence[tuple[str, str]]) -> None:
    """Refuse `revision`'s downgrade while it would lose rows: `kept` is (what a row is, to the operator, and where
    it lives: ``table`` or ``table WHERE condition``); each is counted, those with rows are named in the refusal."""
    bind = op.get_bind()
    lost = []
    for what, where in kept:
        count = int(bind.exec_driver_sql(f"SELECT count(*) FROM {where}").scalar_one())
        if count:
            lost.append(f"{count} {what}")
    if lost:
        raise DowngradeRefusedError(
            f"cannot go below {revision}: the older schema cannot hold {'; '.join(lost)}. Nothing of {revision} was "
            f"changed (the database stays at {revision}: `alembic current`). To run a version older than {revision}, "
            f"restore the dump taken before the upgrade to {revision} (pg_restore, or the copy of the SQLite file: "
            "docs/operations.md), or run this version again"
        )
