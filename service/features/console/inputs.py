"""What a console request may carry at all.

PostgreSQL stores no NUL character in a text column and no integer past its `integer` range: a NUL typed or
pasted into a filter, a search or a reason, or a record id such as `/console/beneficiaries/100000000000000000000`
made the query itself fail, a 500 (SQLite: an OverflowError for the integer). No text of the console can hold a
NUL: `check_inputs`, a dependency of every console route (install.py), refuses such a request before its handler
runs (a 400 page). Record ids and sequence numbers are typed `RowId` / `SeqNumber`: past the range, the request's
parameter is invalid (422), as a non-number is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from fastapi import Path, Query, Request

# PostgreSQL `integer` (the id columns): an id past it, either way, cannot address a row on either database.
MAX_INT = 2**31 - 1
MIN_INT = -(2**31)
RowId = Annotated[int, Path(ge=MIN_INT, le=MAX_INT)]
SeqNumber = Annotated[int, Query(ge=MIN_INT, le=MAX_INT)]


class BadInput(Exception):
    """A value no console text can hold: answered with the 400 page (install.py)."""


async def _values(request: Request) -> Iterable[str]:
    values = [str(v) for v in request.path_params.values()]
    values += [v for _, v in request.query_params.multi_items()]
    if request.method == "POST":
        # Already parsed and cached by FastAPI for the route's Form parameters; of a file, its name.
        form = await request.form()
        values += [v if isinstance(v, str) else v.filename or "" for _, v in form.multi_items()]
    return values


async def check_inputs(request: Request) -> None:
    """The router dependency: no path, query or form value of a console request holds a NUL character."""
    if any("\x00" in v for v in await _values(request)):
        raise BadInput()
