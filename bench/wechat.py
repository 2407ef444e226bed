"""WeChat channel benchmark on the embedded backend (SQLite), against the local fake WeChat server.

    python bench/wechat.py --reminders 2000 --repeat 5 --out bench/results/wechat.json

Measures: (1) one scheduled notification run that queues and sends `--reminders` due-soon/overdue reminders
(records + HTTP sends), and the following run that must send nothing; (2) the H5 card step's instant OCR
feedback (`CardChecker.problems`, the ID-card reader in the API process) on a real dev card, median of --repeat after
one warm-up; (3) the JS-SDK config endpoint (cached ticket), median of 200 calls through the app.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import platform
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

import service.schema  # noqa: E402
from service.adapters.http.app import create_app  # noqa: E402
from service.certification.context import ServiceContext  # noqa: E402
from service.certification.models import Beneficiary, CertSession, Channel, SessionState  # noqa: E402
from service.features.install import install_features  # noqa: E402
from service.features.wechat.h5.cardcheck import CardChecker  # noqa: E402
from service.features.wechat.models import WeChatSessionLink  # noqa: E402
from service.features.wechat.notify import run_notifications  # noqa: E402
from service.features.wechat.runtime import build_channel  # noqa: E402
from service.infra.clock import local_today  # noqa: E402
from service.infra.config import Settings, settings_from_flat  # noqa: E402
from tests.service.features.wechat.fake_wechat import FakeWeChat  # noqa: E402
from tests.service.media import LIVE_VIDEO, card_for_video  # noqa: E402


def settings_for(fake: FakeWeChat, root: Path) -> Settings:
    return settings_from_flat(
        env="test",
        var_dir=root,
        media_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        signing_key=secrets.token_hex(16),
        api_keys=["bench-key"],
        worker_mode="none",
        wechat_app_id=fake.state.app_id,
        wechat_app_secret=fake.state.app_secret,
        wechat_token="bench-token",
        wechat_api_base_url=fake.base_url,
        wechat_oauth_base_url=fake.base_url + "connect/",
        wechat_templates={"result": "t-r", "due_soon": "t-d", "overdue": "t-o"},
        public_base_url="https://cert.example.test",
    )


def bench_reminders(ctx: ServiceContext, fake: FakeWeChat, n: int) -> dict[str, Any]:
    today = dt.date(2026, 11, 22)
    daytime = dt.datetime(2026, 11, 22, 2, 0, tzinfo=dt.UTC)  # 10:00 in China: reminders go out in daytime only
    with ctx.db() as db:
        for i in range(n):
            valid = today + dt.timedelta(days=10) if i % 2 else today - dt.timedelta(days=5)
            b = Beneficiary(
                external_id=f"B{i}",
                id_hash=f"h{i}",
                id_enc="-",
                id_masked="-",
                name="测试",
                region="370102",
                valid_until=valid,
            )
            db.add(b)
            db.flush()
            # Reminders go to the openid of the person's last accepted self-certification from WeChat (a year ago).
            sid, last_year = str(uuid.uuid4()), dt.datetime(2025, 11, 1)
            db.add(
                CertSession(
                    id=sid,
                    beneficiary_id=b.id,
                    channel=Channel.SELF,
                    token_hash=f"t{i}",
                    nonce=f"n{i}",
                    nonce_expires_at=last_year,
                    expires_at=last_year,
                    state=SessionState.DECIDED,
                    decision="accept",
                    decided_at=last_year,
                )
            )
            db.flush()
            db.add(WeChatSessionLink(session_id=sid, openid=f"o-{i}"))
    channel = build_channel(ctx.settings)
    assert channel is not None
    t0 = time.perf_counter()
    first = run_notifications(ctx, channel.api, today, daytime)
    t1 = time.perf_counter()
    second = run_notifications(ctx, channel.api, today, daytime)
    t2 = time.perf_counter()
    return {
        "reminders": n,
        "first_run_s": round(t1 - t0, 3),
        "first_run_sent": first.sent,
        "sends_per_s": round(first.sent / (t1 - t0), 1),
        "second_run_s": round(t2 - t1, 3),
        "second_run_sent": second.sent,
        "fake_server_messages": len(fake.state.sent_templates),
    }


def bench_card_check(ctx: ServiceContext, data_dir: Path, repeat: int) -> dict[str, Any]:
    card, fields = card_for_video(data_dir, LIVE_VIDEO)
    id_hash = ctx.keyring.id_hash(fields.id_number)
    t0 = time.perf_counter()
    checker = CardChecker(None)
    problems = checker.problems(card, id_hash, ctx.keyring, local_today(ctx.settings))  # loads the reader
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        checker.problems(card, id_hash, ctx.keyring, local_today(ctx.settings))
        times.append(time.perf_counter() - t)
    return {
        "first_call_incl_model_load_s": round(first, 3),
        "median_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
        "problems": [p.value for p in problems],
    }


def bench_jssdk(ctx: ServiceContext) -> dict[str, Any]:
    with TestClient(create_app(ctx=ctx)) as client:
        url = "https://cert.example.test/h5/certify?mode=self"
        client.get("/api/v1/wechat/jssdk-config", params={"url": url})
        times = []
        for _ in range(200):
            t = time.perf_counter()
            r = client.get("/api/v1/wechat/jssdk-config", params={"url": url})
            times.append(time.perf_counter() - t)
            r.raise_for_status()
    return {"calls": 200, "median_ms": round(statistics.median(times) * 1000, 2), "max_ms": round(max(times) * 1000, 2)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reminders", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "wechat.json")
    args = ap.parse_args(argv)
    data_dir = Path(os.environ.get("PENSION_CERT_DATA_DIR", REPO.parent / "shared" / "data"))
    with tempfile.TemporaryDirectory() as tmp, FakeWeChat() as fake:
        # The features' hooks (the reminders ask which people an open request shelters): as `serve` builds it.
        ctx = install_features(ServiceContext(settings_for(fake, Path(tmp)), schema=service.schema.metadata))
        out = {
            "machine": {
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "ort_threads": os.environ.get("PENSION_CERT_ORT_THREADS"),
            },
            "notifications": bench_reminders(ctx, fake, args.reminders),
            "jssdk_config": bench_jssdk(ctx),
            "card_check": bench_card_check(ctx, data_dir, args.repeat),
        }
    args.out.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
