"""A roster import's terms (how it dates the people it brings in) and its report (what it did to each row).

Shared by the import (service/certification/roster.py), its writing of each row (roster_upsert.py) and its changes
of ID number (roster_identity.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from service.certification.cycle import CycleRules, first_valid_until
from service.certification.roster_rows import RosterRow
from service.infra.clock import local_today

if TYPE_CHECKING:
    from service.certification.context import ServiceContext
    from service.certification.contract import FeatureHooks


@dataclass(frozen=True)
class ImportTerms:
    """How an import dates the people it brings in (see service/certification/roster.py's docstring)."""

    today: dt.date
    rules: CycleRules
    grace_days: int
    cycle_start: dt.date | None = None  # the roster's cycle start; None: the import date
    # The features told of each ID-number change (import_terms: the context's); None: no feature is told.
    hooks: FeatureHooks | None = None

    def first_valid_until(self, row: RosterRow) -> dt.date:
        # A start before the import counts from the import: a cycle that began in January, imported in December,
        # made the person overdue on the day of the import and suspended that night, never reminded.
        start = row.cycle_start or self.cycle_start or self.today
        return first_valid_until(max(start, self.today), self.grace_days)


def import_terms(ctx: ServiceContext, cycle_start: dt.date | None = None) -> ImportTerms:
    """The terms of an import made now with the service's settings."""
    grace = ctx.settings.cycle.new_import_grace_days
    return ImportTerms(local_today(ctx.settings), ctx.rules, grace, cycle_start, ctx.hooks)


@dataclass
class ImportReport:
    filename: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    import_id: int | None = None
    grace_dated: int = 0  # people given the first-import grace date (no date of their own in the file)
    encoding: str | None = None  # the CSV's, as found (roster_file.decode_csv); None: a workbook
    # Records whose ID number the file changed (external id, the masked numbers before and after, and whether
    # an enrolled face was dropped): each is audited on its own.
    identity_changed: list[dict[str, Any]] = field(default_factory=list)
    # Records held as deceased whose row gives a living status: the death stands (only a supervisor withdraws one,
    # in the console: service/certification/deaths.py), so the report names them (their external ids).
    death_kept: list[str] = field(default_factory=list)
    # Records whose death a supervisor withdrew and whose row still says `deceased`, as at its last import (no date
    # of death: the death withdrawn, deaths.roster_death_withdrawn): they stay living, and the report names them.
    death_withdrawn_kept: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "import_id": self.import_id,
            "filename": self.filename,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": len(self.rejected),
            "grace_dated": self.grace_dated,
            "encoding": self.encoding,
            "identity_changed": len(self.identity_changed),
            "death_kept": self.death_kept,
            "death_withdrawn_kept": self.death_withdrawn_kept,
            "rejected_rows": self.rejected,
        }
