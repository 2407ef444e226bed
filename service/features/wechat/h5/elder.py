"""Elder mode of the H5 pages (bigger type, fewer words, one button per screen): on by default for a
beneficiary aged 60 or more (老年人: 60 周岁及以上), by the roster's birth date once the roster is known."""

from __future__ import annotations

import datetime as dt

from service.certification import idnumber

ELDER_AGE = 60


def is_elder(birth_date: dt.date | None, id_number: str | None, today: dt.date) -> bool:
    """The roster's birth date; for a roster row without one, the birth date the confirmed ID number encodes
    (the number already matched the roster, so this reveals nothing new). `today`: the bureau's date
    (service/infra/clock.local_today), required: the server's or UTC's date is another day from 00:00 to 08:00
    in Beijing."""
    birth = birth_date
    if birth is None and id_number:
        birth = idnumber.birth_date(id_number)
    return birth is not None and idnumber.age_on(birth, today) >= ELDER_AGE
