"""The console's roster search: what a typed query is (an ID number, an external id, a name) and whom it finds in
a staff member's scope.

A name is compared in one form, whatever was typed on the roster or in the search box: the ID-card step's
(pipelines.names.normalise_name: full-width letters as letters, no whitespace, every middle-dot look-alike as
U+00B7), without the middle dot itself (pipelines.names.search_key), so that 阿依古丽买买提 and 阿依古丽•买买提
find 阿依古丽·买买提 and the other way round. The database compares the stored names (`name_matches`: their
look-alike dots and whitespace, pipelines.names.SEARCH_LEFT_OUT, taken out by `replace()`, the same in SQLite
and PostgreSQL), not Python: the search stays one query over the records in scope, with no column or migration of
its own. Nor has SQL a table of traditional characters: a typed name is looked for in its simplified and
traditional spellings (pipelines.names.spellings: 陈秀英 finds 陳秀英 stored, and the other way round; beyond 16, the
end of a long name is left open, one character each, and the names found told in Python). SQL has no
NFKC: the roster import stores names NFKC (pipelines.names.stored_name), and a name stored before it did (a
full-width letter, a compatibility ideograph) is also compared with the typed text without NFKC
(pipelines.names.plain_key): pasted as stored it is found, and the next import of its row stores it normalised.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from pipelines.names import ANY_FORM, SEARCH_LEFT_OUT, begins_alike, plain_key, search_key, spellings
from service.certification import idnumber
from service.certification.models import Beneficiary, one_of_hashes
from service.features.console import scope
from service.features.console.auth import Staff
from service.infra.security import Keyring, normalise_id

LIMIT = 100  # records one search shows, by name
OPEN_LIMIT = 20 * LIMIT  # ids and names a long name's search reads a time to tell in Python (ANY_FORM)
CHUNK = 14  # characters a level of `key_begins` takes out (nested replace() calls)
IN_ORDER = 8  # characters of the key the first, cheap condition looks for (bounds its pattern)
ESCAPE = "/"  # of the LIKE patterns, as SQLAlchemy's autoescape


def query_keys(text: str) -> tuple[str, ...]:
    """A typed name as the search compares it: its key (`search_key`), and, when NFKC changed it, its key as typed
    (`plain_key`: names stored before the import applied NFKC), each in its simplified and traditional spellings
    (`spellings`: 陈秀英 finds 陳秀英 stored, and the other way round); none when the text is only dots and spaces."""
    keys = (search_key(text), plain_key(text))
    return tuple(dict.fromkeys(spelling for key in keys if key for spelling in spellings(key)))


def key_begins(column: Any, keys: Sequence[str]) -> ColumnElement[bool]:
    """The SQL condition "the stored name in `column`, in `query_keys`' form (letters left as stored), begins with
    one of `keys`": the `replace()` chain over every character of SEARCH_LEFT_OUT, CHUNK of them a level of a
    correlated subquery (SQLite's parser overflows on some 30 nested calls)."""
    key = _stored_key(column)
    return select(or_(*(_begins(key, k) for k in keys))).correlate(column.table).scalar_subquery()


@functools.cache
def _stored_key(column: Any) -> ColumnElement[str]:
    """The `replace()` chain of `key_begins` (some 40 calls in three levels), built once per column rather than for
    every search."""
    chars = SEARCH_LEFT_OUT
    key: ColumnElement[str] = _replaced(column, chars[:CHUNK])
    for start in range(CHUNK, len(chars), CHUNK):
        level = select(key.label("k")).correlate(column.table).subquery()
        key = _replaced(level.c.k, chars[start : start + CHUNK])
    return key


def _replaced(key: Any, chars: str) -> ColumnElement[str]:
    for char in chars:
        key = func.replace(key, char, "")
    result: ColumnElement[str] = key
    return result


class Found(NamedTuple):
    """What a search found: the kind of query, the records shown (LIMIT at most, by name), and whether more match
    (the page says so and asks for the full name or the ID number, rather than showing a cut list as the whole)."""

    kind: str
    people: Sequence[Beneficiary]
    more: bool


def search(db: Session, keyring: Keyring, staff: Staff, q: str, today: dt.date) -> Found:
    """`_search`, its LIMIT + 1st record read only to tell that more match. `today`: the bureau's date
    (service/infra/clock.local_today), up to which a number's birth date is valid (idnumber.validate)."""
    kind, rows = _search(db, keyring, staff, q, today)
    return Found(kind, rows[:LIMIT], len(rows) > LIMIT)


def _search(db: Session, keyring: Keyring, staff: Staff, q: str, today: dt.date) -> tuple[str, Sequence[Beneficiary]]:
    """The kind of query `q` is and the records it finds in `staff`'s scope (LIMIT + 1 at most, by name). A valid ID
    number, however typed (full-width, in groups, 15 digits), is looked up by its keyed hash; when no one has that
    number, text typed in ASCII is an external id after all: a 15-digit all-digit external id may also be a valid
    first-generation number (and an 18-digit one a valid number), and was no longer found. Other text in ASCII is
    an external id; the rest a name, or the beginning of one."""
    in_scope = scope.region_filter(staff, Beneficiary.region)

    def found(*where: ColumnElement[bool]) -> Sequence[Beneficiary]:
        return db.scalars(select(Beneficiary).where(*where, in_scope).order_by(Beneficiary.name).limit(LIMIT + 1)).all()

    number = normalise_id(q)
    if len(number) == 18 and idnumber.validate(number, today) is None:
        by_number = found(one_of_hashes(Beneficiary.id_hash, keyring.id_hashes(number)))  # any signing key in use
        if by_number or not q.isascii():
            return "id_number", by_number
        by_external_id = found(Beneficiary.external_id == q)
        return ("external_id", by_external_id) if by_external_id else ("id_number", by_number)
    if q.isascii():
        return "external_id", found(Beneficiary.external_id == q)
    keys = query_keys(q)
    if not keys:
        return "name", []  # dots or spaces alone: no name, not every name
    if not any(ANY_FORM in key for key in keys):
        return "name", found(*name_matches(Beneficiary.name, keys))
    # A long name whose end SQL left open (pipelines.names.spellings): its characters told here.
    kept = _told_apart(db, (*name_matches(Beneficiary.name, keys), in_scope), q)
    return "name", found(Beneficiary.id.in_(kept)) if kept else []


def _told_apart(db: Session, where: Sequence[ColumnElement[bool]], q: str) -> list[int]:
    """The ids of the first LIMIT + 1 names (the last one tells that more match), by name, that SQL's `where` lets
    through and that begin with `q` as `begins_alike` tells (what SQL left open): only ids and names read,
    OPEN_LIMIT a time after the last read (by name, then id), until LIMIT + 1 are kept or none is left: never a
    name missed behind more alike ones."""
    kept: list[int] = []
    after: ColumnElement[bool] | None = None
    while len(kept) <= LIMIT:
        page = select(Beneficiary.id, Beneficiary.name).where(*where)
        if after is not None:
            page = page.where(after)
        rows = db.execute(page.order_by(Beneficiary.name, Beneficiary.id).limit(OPEN_LIMIT)).all()
        kept += [row.id for row in rows if begins_alike(row.name, q)]
        if len(rows) < OPEN_LIMIT:
            break
        last = rows[-1]
        after = or_(Beneficiary.name > last.name, and_(Beneficiary.name == last.name, Beneficiary.id > last.id))
    return kept[: LIMIT + 1]


def name_matches(column: Any, keys: Sequence[str]) -> tuple[ColumnElement[bool], ...]:
    """The SQL conditions "the name in `column` begins with one of `keys`" (`query_keys`' form), cheapest first: the
    name begins with a key's first characters in order, other characters between them (a plain LIKE: few names
    pass it; or it begins with a dot or a space, which a name the import stripped never does; a name's several
    spellings first in a few merged patterns, `in_order`, then each its own for the names these let through), and
    begins with the key as stored (most that pass) or in its key's form (the `replace()` chain, worked out for the
    rest only). Every LIKE is escaped: "%" and "_" typed are characters of a name, not wildcards ("%伟" must not
    become "every name containing 伟")."""
    odd_start = func.substr(column, 1, 1).in_(list(SEARCH_LEFT_OUT))
    may_begin = or_(*(column.like(pattern, escape=ESCAPE) for pattern in in_order(keys)), odd_start)
    conditions = [may_begin]
    if len(keys) > 1:  # the spellings' own patterns, for the few names the merged ones let through
        each = ("%".join(_escaped(c) for c in key[:IN_ORDER]) + "%" for key in keys)
        conditions.append(or_(*(column.like(pattern, escape=ESCAPE) for pattern in each), odd_start))
    begins = or_(*(_begins(column, key) for key in keys), key_begins(column, keys))
    return (*conditions, begins)


def in_order(keys: Sequence[str]) -> list[str]:
    """The LIKE patterns "begins with a key's first IN_ORDER characters in order": one per first character and
    length, "_" (any one character) where the keys of that group differ, so that a name's spellings in simplified
    and traditional characters (`spellings`: up to 16) cost a few patterns, not one each."""
    groups: dict[tuple[str, int], list[str]] = {}
    for key in keys:
        head = key[:IN_ORDER]
        groups.setdefault((head[0], len(head)), []).append(head)
    return [
        "%".join(_escaped(c[0]) if len(set(c)) == 1 else "_" for c in zip(*heads, strict=True)) + "%"
        for heads in groups.values()
    ]


def _begins(expr: Any, key: str) -> ColumnElement[bool]:
    """`expr` begins with `key`, escaped as SQLAlchemy's `startswith(autoescape=True)`, ANY_FORM any one character."""
    result: ColumnElement[bool] = expr.like("".join(map(_escaped, key)) + "%", escape=ESCAPE)
    return result


def _escaped(char: str) -> str:
    if char == ANY_FORM:  # a character of several forms left open (pipelines.names.spellings)
        return "_"
    return ESCAPE + char if char in (ESCAPE, "%", "_") else char
