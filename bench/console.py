"""Staff console benchmark: how long the heavy pages take at campaign scale on the embedded backend (SQLite).

    python bench/console.py --beneficiaries 50000 --cases 2000 --audit 20000 --out bench/results/console.json

Builds a throwaway database with that many beneficiaries (spread over regions and cycle states), open review
cases (session rows without media) and console audit entries, then times through the real app (TestClient,
one logged-in reviewer/supervisor): the queue page, the dashboard, the roster search by name (a name with a
middle dot that a few dozen people have, a first character everyone's name has, a character everyone's name holds
but none begins with), the dashboard CSV, the audit viewer
(re-verifying the last 2000 entries of the hash chain, and the whole chain), and a login (argon2id
verification). Reports the median and max of --repeat runs each.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import platform
import random
import re
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import insert  # noqa: E402

import service.schema  # noqa: E402
from service.adapters.http.app import create_app  # noqa: E402
from service.certification.context import ServiceContext  # noqa: E402
from service.certification.models import Beneficiary, CertSession  # noqa: E402
from service.features.console import audit_chain  # noqa: E402
from service.features.console.auth import create_user  # noqa: E402
from service.infra.config import settings_from_flat  # noqa: E402

PASSWORD = "bench-password-123"
REGIONS = ["370102", "370103", "370203", "370305", "610111", "610112", "110105", "440106"]
# One beneficiary in NAMED_EVERY has a name with a middle dot, stored as typed (half of them with a look-alike):
# the roster search for it scans every name of the jurisdiction and finds a few dozen.
NAMED_EVERY = 1000
DOTTED = ("阿依古丽·买买提", "阿依古丽•买买提")


def build(ctx: ServiceContext, n_ben: int, n_cases: int, n_audit: int, rng: random.Random) -> None:
    today = dt.date.today()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with ctx.db() as db:
        create_user(db, "rev", PASSWORD, "reviewer")
        create_user(db, "sup", PASSWORD, "supervisor")
        rows: list[dict[str, Any]] = []
        for i in range(n_ben):
            status = rng.choices(["active", "suspended", "deceased"], [0.9, 0.08, 0.02])[0]
            rows.append(
                {
                    "external_id": f"B{i:07d}",
                    "id_hash": secrets.token_hex(32),
                    "id_enc": "-",
                    "id_masked": "3701**********0000",
                    "name": DOTTED[i // NAMED_EVERY % 2] if i % NAMED_EVERY == 0 else "测试",
                    "region": rng.choice(REGIONS),
                    "benefit_types": ["enterprise_pension"],
                    "status": status,
                    "valid_until": today + dt.timedelta(days=rng.randint(-60, 330)),
                    "template_consent": False,
                    "roster_digest": "",
                    "created_at": now,
                    "updated_at": now,
                }
            )
        db.execute(insert(Beneficiary), rows)
        sessions: list[dict[str, Any]] = []
        for i in range(n_cases):
            t = now - dt.timedelta(minutes=rng.randint(1, 60 * 24 * 7))
            sessions.append(
                {
                    "id": str(uuid.uuid4()),
                    "beneficiary_id": rng.randint(1, n_ben),
                    "channel": rng.choice(["self", "proxy"]),
                    "token_hash": secrets.token_hex(32),
                    "actions": [],
                    "nonce": f"n{i}-{uuid.uuid4().hex}",
                    "nonce_expires_at": t,
                    "expires_at": t,
                    "template_consent": False,
                    "state": "decided",
                    "decision": "review",
                    "reasons": [rng.choice(["SPOOF_SUSPECTED", "FACE_MISMATCH", "ID_FIELDS_INCONSISTENT"])],
                    "queued_at": t,
                    "decided_at": t,
                    "job_attempts": 1,
                    "created_at": t,
                }
            )
        db.execute(insert(CertSession), sessions)
    with ctx.db() as db:
        for i in range(n_audit):
            audit_chain.record(db, "staff:bench", "case.view", f"s{i}", {"i": i})


def login(client: TestClient, user: str) -> float:
    page = client.get("/console/login")
    m = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert m
    t = time.perf_counter()
    r = client.post("/console/login", data={"username": user, "password": PASSWORD, "csrf": m.group(1)})
    elapsed = time.perf_counter() - t
    if r.status_code != 200:
        raise RuntimeError(f"login failed: {r.status_code}")
    return elapsed


def timed(client: TestClient, path: str, repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        r = client.get(path)
        times.append(time.perf_counter() - t)
        if r.status_code != 200:
            raise RuntimeError(f"{path}: {r.status_code}")
    return {"median_ms": round(statistics.median(times) * 1000, 1), "max_ms": round(max(times) * 1000, 1)}


def timed_next(client: TestClient, repeat: int) -> dict[str, float]:
    """下一件 (POST /console/cases/next): the first call claims a case, the others find the reviewer's own claim;
    each reads the open queue."""
    page = client.get("/console/queue")
    m = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert m
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        r = client.post("/console/cases/next", data={"csrf": m.group(1)}, follow_redirects=False)
        times.append(time.perf_counter() - t)
        if r.status_code not in (200, 303):
            raise RuntimeError(f"/console/cases/next: {r.status_code}")
    return {"median_ms": round(statistics.median(times) * 1000, 1), "max_ms": round(max(times) * 1000, 1)}


def timed_search(client: TestClient, q: str, repeat: int) -> dict[str, float]:
    """The roster search by name (POST /console/roster/search), as staff type it."""
    page = client.get("/console/roster")
    m = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert m
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        r = client.post("/console/roster/search", data={"q": q, "csrf": m.group(1)})
        times.append(time.perf_counter() - t)
        if r.status_code != 200:
            raise RuntimeError(f"/console/roster/search: {r.status_code}")
    return {"median_ms": round(statistics.median(times) * 1000, 1), "max_ms": round(max(times) * 1000, 1)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--beneficiaries", type=int, default=50_000)
    ap.add_argument("--cases", type=int, default=2_000)
    ap.add_argument("--audit", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=REPO / "bench/results/console.json")
    args = ap.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_from_flat(
            env="test",
            var_dir=Path(tmp),
            media_key=base64.b64encode(secrets.token_bytes(32)).decode(),
            signing_key=secrets.token_hex(16),
            api_keys=[secrets.token_hex(8)],
            worker_mode="none",
        )
        ctx = ServiceContext(settings, schema=service.schema.metadata)
        t0 = time.perf_counter()
        build(ctx, args.beneficiaries, args.cases, args.audit, rng)
        build_s = time.perf_counter() - t0
        app = create_app(ctx=ctx)
        with TestClient(app) as rev, TestClient(app) as sup:
            login_s = [login(rev, "rev") for _ in range(3)]
            login(sup, "sup")
            results = {
                "queue_page": timed(rev, "/console/queue", args.repeat),
                "queue_filtered": timed(rev, "/console/queue?channel=proxy&reason=FACE_MISMATCH", args.repeat),
                "next_case": timed_next(rev, args.repeat),
                "dashboard": timed(rev, "/console/dashboard", args.repeat),
                "roster_search_name": timed_search(rev, "阿依古丽·买买提", args.repeat),
                # A first character every name has (the first 100 of 49,950 shown); and the worst case, a character
                # every name holds but none begins with (each name's dots and spaces taken out, none found).
                "roster_search_common": timed_search(rev, "测", args.repeat),
                "roster_search_inner": timed_search(rev, "试", args.repeat),
                "dashboard_csv": timed(rev, "/console/dashboard.csv", args.repeat),
                "audit_viewer_tail_check": timed(sup, "/console/audit", args.repeat),
                "audit_viewer_full_chain_check": timed(sup, "/console/audit?full=1", args.repeat),
                "login_argon2_median_ms": round(statistics.median(login_s) * 1000, 1),
            }
    out = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        "backend": "sqlite",
        "sizes": {"beneficiaries": args.beneficiaries, "open_cases": args.cases, "audit_entries": args.audit},
        "build_s": round(build_s, 1),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, ensure_ascii=False, indent=2) + "\n")
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
