"""The audit log's times in the bureau's zone (docs/security.md Part AJ, follow-ups): an entry's details keep the
times they name as stored (naive UTC ISO text, read back by code), and the console's audit page, which shows
every other time in the bureau's zone with the zone named, showed these as they were: 8 hours off in Beijing."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console import audit_chain
from service.features.console.web import local_times
from tests.service.features.console.conftest import login

STORED = {
    "until": "2026-12-05T23:30:00",  # naive UTC, as the core writes a hold's end
    "decided_at": "2026-12-05T23:30:00.250000Z",  # an aware one, as the API writes them
    "valid_until": "2026-12-06",  # a calendar date: shown as is
    "note": "本人到柜台申请",
}


def test_the_audit_page_shows_the_times_in_details_in_the_bureaus_zone(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    with ctx.db() as db:
        audit_chain.record(db, "staff:sup1", "evidence.hold", "E1", dict(STORED))
    login(app_client, "sup1")
    page = app_client.get("/console/audit").text
    assert "2026-12-05T23:30:00" not in page  # read at the counter as 23:30, it was 07:30 the next morning
    assert page.count("2026-12-06 07:30:00 CST") == 2, page
    assert "2026-12-06&#34;" in page or '2026-12-06"' in page  # the date unchanged (quotes escaped or not)
    assert "本人到柜台申请" in page
    with ctx.db() as db:  # what is stored (and hashed) is unchanged: only the page converts
        entry = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "evidence.hold")).one()
        assert entry.detail == STORED
        assert audit_chain.verify_chain(db).ok


def test_only_whole_iso_times_are_converted() -> None:
    shown = local_times(
        {"a": ["2026-12-05T16:00:00", "2026-12-05"], "b": "在 2026-12-05T16:00:00 前", "c": 3, "d": "2026-13-40T99:00"},
        "Asia/Shanghai",
    )
    assert shown == {
        "a": ["2026-12-06 00:00:00 CST", "2026-12-05"],
        "b": "在 2026-12-05T16:00:00 前",  # text that mentions a time is text someone wrote: left as written
        "c": 3,
        "d": "2026-13-40T99:00",
    }
