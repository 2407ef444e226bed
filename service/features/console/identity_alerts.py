"""A roster re-import that gave a record another ID number, raised as a supervisor's alert (预警).

Such a change is a typo corrected, or the record (and its pension) handed to another person: the import is made
by one member of staff (or the benefit system's key), so a second person must see each one. The import's
transaction raises one alert per change (``FeatureHooks.identity_changed``, registered by
service/features/install.py), naming both masked numbers, the import and who made it; a supervisor checks it
against the benefit system's records and marks it handled.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.certification.contract import IdentityChange
from service.features.console.models import ConsoleAlert

KIND = "roster_identity_changed"


def raise_identity_alert(db: Session, change: IdentityChange, /) -> None:
    """An `IdentityChangedHook`: one alert for this change, in the import's transaction."""
    detail = {
        "from": change.masked_before,
        "to": change.masked_after,
        "name_changed": change.name_changed,
        "import": change.import_id,
        "actor": change.actor,
    }
    db.add(ConsoleAlert(kind=KIND, beneficiary_id=change.beneficiary_id, detail=detail))
