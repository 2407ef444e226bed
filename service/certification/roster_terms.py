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

    def arrival_valid_until(self) -> dt.date:
        """The earliest last valid day of a new active record the row dates (a person transferred in with their
        previous bureau's date; roster_upsert raises an earlier one to it): due soon from the import (reminded,
        on the due-soon list), overdue only after `due_soon_days` (cycle.cycle_state: a date `due_soon_days`
        ahead would read certified)."""
        return self.today + dt.timedelta(days=max(self.rules.due_soon_days - 1, 0))

    def named_first_valid_until(self, row: RosterRow) -> dt.date | None:
        """The grace date of the cycle start the row (else the import) names, for a record still awaiting its first
        certification: a postponed first campaign moves it later (roster_upsert; never earlier). None: none named
        (an import with no cycle start does not move it: each later file would add the grace again)."""
        start = row.cycle_start or self.cycle_start
        return first_valid_until(start, self.grace_days) if start is not None else None


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
    # Records held active whose row says `suspended` (the benefit system stopped paying them, e.g. transferred
    # out): the status is not applied, the cycle no longer chases them (cycle.stopped_by_roster); named here.
    suspension_not_applied: list[str] = field(default_factory=list)
    # New records whose row's date had lapsed or lapses before `ImportTerms.arrival_valid_until` (a person
    # transferred in with their previous bureau's date): given that date (due soon, not overdue within
    # `due_soon_days` of the import); their external ids.
    lapsed_on_import: list[str] = field(default_factory=list)
    # Records never certified that the cycle run suspended on their first grace date, whose row postpones the first
    # campaign (a later cycle start, still ahead): the suspension and the date stay (a resume is a certification's
    # decision, Part R), and the report names them for staff to tell the person.
    suspension_kept: list[str] = field(default_factory=list)

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
            "suspension_not_applied": self.suspension_not_applied,
            "lapsed_on_import": self.lapsed_on_import,
            "suspension_kept": self.suspension_kept,
            "rejected_rows": self.rejected,
        }
