"""Roster-import benchmark: how long reading a roster file takes, and how much memory, in each form bureau staff
save it in, and how long a whole import into a fresh SQLite database takes (first import and re-import).

    python bench/roster.py --rows 50000 --repeat 3 --out bench/results/roster.json
    python bench/roster.py --rows 200 --xlsx-rows 100 --repeat 1 --out bench/results/roster.dev.json   # check

Builds synthetic rosters in memory: Chinese names (compound surnames, names with a middle dot, and about one in
a hundred with a rare character outside GBK: 䶮 in CJK Extension A, 𠈌 in Extension B, a GB18030 four-byte form),
valid 18-digit ID numbers (their check digits computed here, pensioners born 1935–1966, regions of several
provinces), numeric external ids, benefit types (some rows two, `;`-separated), status, valid_until and
household on some rows. Each roster is written as:

* `utf8`: CSV, UTF-8, English column names (what the service read before this session's change);
* `utf8_bom`: the same with a BOM (Excel's "CSV UTF-8");
* `gb18030`: CSV, GB18030, the Chinese column names (Chinese Excel's "CSV (逗号分隔)"; rare names four-byte);
* `utf16_tab`: UTF-16 LE with a BOM, tab-separated, the Chinese column names (Excel's "Unicode 文本");
* `xlsx`: an XLSX workbook, English column names, numbers as text (openpyxl, `--xlsx-rows`: it is slower).

(a) `read_table` (service/certification/roster_file.py): every row read into a list, median and max of --repeat
runs, then one more run under tracemalloc for the peak of the Python allocations the reading makes beyond the
file's bytes (a C library's own buffers, openpyxl's XML parser's, are not seen). (b) `import_roster`
(service/certification/roster.py) as the API's POST /api/v1/roster and the console call it: a fresh SQLite
database per run, the import terms of the service's settings, the import and its commit timed; then the same file
again (every row unchanged). Median of --repeat runs each, --import-format (default `utf8`) only.

Run with PYTHONPATH=<an older checkout> to measure its code: a format that code refuses (it read UTF-8 only) is
recorded with its error instead of figures, and its report without an `encoding` is fine. --compare BEFORE.json
puts such a run's results beside this one's, with the ratios after/before.
"""

from __future__ import annotations

import argparse
import base64
import csv
import datetime as dt
import io
import json
import os
import platform
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0] or ".").resolve() == REPO / "bench":
    sys.path.pop(0)  # run as a script: bench/service.py would be imported as the `service` package
if str(REPO) not in sys.path:  # appended: a PYTHONPATH naming an older checkout measures that checkout's code
    sys.path.append(str(REPO))

import service.schema  # noqa: E402
from service.certification.context import ServiceContext  # noqa: E402
from service.certification.errors import ServiceError  # noqa: E402
from service.certification.roster import import_roster, import_terms, read_table  # noqa: E402
from service.features.install import install_features  # noqa: E402
from service.infra.config import settings_from_flat  # noqa: E402

FORMATS = ("utf8", "utf8_bom", "gb18030", "utf16_tab", "xlsx")
COLUMNS = ("external_id", "id_number", "name", "region", "benefit_types", "status", "valid_until", "household")
# The documented Chinese column names (roster_file.HEADER_ALIASES), as a Chinese benefit system's export has them.
CHINESE = {
    "external_id": "人员编号",
    "id_number": "身份证号",
    "name": "姓名",
    "region": "地区",
    "benefit_types": "待遇类型",
    "status": "状态",
    "valid_until": "认证有效期",
    "household": "户号",
}
# Division codes the service knows, of several provinces (Shandong, Shaanxi, Beijing, Guangdong, Xinjiang).
REGIONS = ("370102", "370103", "370203", "370305", "610111", "610112", "110105", "440106", "650102")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
COMPOUND = ("欧阳", "司马", "诸葛", "上官", "慕容")
GIVEN = "秀英桂兰玉珍凤建国华明德志军红梅丽芳海燕文平淑贞永福宝成金荣振兴秋菊春花淑琴桂芝保国忠义"
RARE = ("䶮", "𠈌", "堃", "喆", "淼", "垚", "犇", "昶")  # the first two are outside GBK (GB18030 four-byte)
DOTTED = ("阿依古丽·买买提", "买买提·艾力", "热依汗古丽·吐尔逊")
WARM_ROWS = 5
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def check_digit(body: str) -> str:
    """GB 11643's ISO 7064 MOD 11-2 check character, computed here rather than by the code being measured."""
    return "10X98765432"[sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True)) % 11]


def chinese_name(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.01:
        return rng.choice(DOTTED)
    surname = rng.choice(COMPOUND) if roll < 0.03 else rng.choice(SURNAMES)
    given = "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2, 2))))
    if rng.random() < 0.01:  # one in a hundred: a rare character, half of them outside GBK
        given = given[:-1] + rng.choice(RARE)
    return surname + given


def people(n: int, seed: int = 7) -> list[dict[str, str]]:
    """n beneficiaries with distinct external ids and ID numbers (valid check digits and birth dates)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    rows: list[dict[str, str]] = []
    start = dt.date(1935, 1, 1)
    while len(rows) < n:
        region = rng.choice(REGIONS)
        birth = start + dt.timedelta(days=rng.randrange(32 * 365))
        body = f"{region}{birth:%Y%m%d}{rng.randrange(1000):03d}"
        if body in seen:
            continue
        seen.add(body)
        i = len(rows)
        types = rng.choice(("enterprise_pension",) * 6 + ("resident_pension", "enterprise_pension;work_injury"))
        until = dt.date(2027, 1, 1) + dt.timedelta(days=rng.randrange(365)) if rng.random() < 0.3 else None
        rows.append(
            {
                "external_id": f"{region[:4]}{i:010d}",
                "id_number": body + check_digit(body),
                "name": chinese_name(rng),
                "region": region if rng.random() < 0.5 else "",  # else the number's own
                "benefit_types": types,
                "status": "suspended" if rng.random() < 0.02 else "active",
                "valid_until": until.isoformat() if until else "",
                "household": f"H{i // 3:08d}" if rng.random() < 0.2 else "",
            }
        )
    return rows


def roster_file(rows: list[dict[str, str]], fmt: str) -> tuple[str, bytes]:
    """The file name and bytes of the roster in one of FORMATS."""
    if fmt == "xlsx":
        return "roster.xlsx", _xlsx(rows)
    chinese = fmt in ("gb18030", "utf16_tab")
    header = [CHINESE[c] for c in COLUMNS] if chinese else list(COLUMNS)
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t" if fmt == "utf16_tab" else ",", lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([r[c] for c in COLUMNS] for r in rows)
    text = buf.getvalue()
    encoded = {
        "utf8": lambda: text.encode("utf-8"),
        "utf8_bom": lambda: text.encode("utf-8-sig"),
        "gb18030": lambda: text.encode("gb18030"),
        "utf16_tab": lambda: text.encode("utf-16"),  # with its BOM, as Excel writes it
    }[fmt]()
    return ("roster.txt" if fmt == "utf16_tab" else "roster.csv"), encoded


def _xlsx(rows: list[dict[str, str]]) -> bytes:
    from openpyxl import Workbook  # type: ignore[import-untyped]  # lazy: only where the XLSX form is measured

    wb = Workbook(write_only=True)
    ws = wb.create_sheet()
    ws.append(list(COLUMNS))
    for r in rows:
        ws.append([r[c] or None for c in COLUMNS])  # an empty cell is no cell, as in a saved workbook
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _encoding_of(filename: str, data: bytes) -> str | None:
    """The encoding the code found (roster_file.open_table), None where the code has no such function (older)."""
    try:
        from service.certification.roster_file import open_table
    except ImportError:
        return None
    return open_table(filename, data).encoding


def measure_parse(filename: str, data: bytes, expected: int, repeat: int, warm: bytes) -> dict[str, Any]:
    """`warm`: a few rows of the same form, read first untimed (the first call's imports: openpyxl, codecs)."""
    list(read_table(filename, warm))
    times: list[float] = []
    for _ in range(repeat):
        t = time.perf_counter()
        rows = list(read_table(filename, data))
        times.append(time.perf_counter() - t)
        if len(rows) != expected:
            raise RuntimeError(f"{filename}: {len(rows)} rows read, {expected} written")
        del rows
    tracemalloc.start()
    try:
        rows = list(read_table(filename, data))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del rows
    return {
        "parse_median_ms": round(statistics.median(times) * 1000, 1),
        "parse_max_ms": round(max(times) * 1000, 1),
        "rows_per_s": round(expected / statistics.median(times)),
        "peak_mib": round(peak / 2**20, 2),
        "encoding": _encoding_of(filename, data),
    }


def _context(var: Path) -> ServiceContext:
    """The service's context as its composition roots build it, its features installed: the import terms ask their
    hooks (a previous or leaked signing key in the environment: the hash a new record takes)."""
    settings = settings_from_flat(
        env="test",
        var_dir=var,
        media_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        signing_key=secrets.token_hex(16),
        api_keys=[secrets.token_hex(8)],
        worker_mode="none",
    )
    return install_features(ServiceContext(settings, schema=service.schema.metadata))


def _timed_import(ctx: ServiceContext, filename: str, data: bytes) -> tuple[float, dict[str, Any]]:
    """One import as POST /api/v1/roster makes it (routes_registry.post_roster): the import, then the commit."""
    t = time.perf_counter()
    with ctx.db() as db:
        report = import_roster(db, ctx.keyring, filename, data, "bench", import_terms(ctx)).to_dict()
    return time.perf_counter() - t, report


def measure_import(filename: str, data: bytes, expected: int, repeat: int, warm: bytes) -> dict[str, Any]:
    """`warm`: a few rows imported first, untimed, into a database of their own (the ORM's first-use set-up)."""
    with tempfile.TemporaryDirectory(prefix="roster-bench-") as tmp:
        ctx = _context(Path(tmp))
        _timed_import(ctx, filename, warm)
        ctx.engine.dispose()
    first: list[float] = []
    again: list[float] = []
    counts: dict[str, Any] = {}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="roster-bench-") as tmp:
            ctx = _context(Path(tmp))
            try:
                s1, r1 = _timed_import(ctx, filename, data)
                s2, r2 = _timed_import(ctx, filename, data)
            finally:
                ctx.engine.dispose()
        if (r1["created"], r1["rejected"], r2["unchanged"]) != (expected, 0, expected):
            raise RuntimeError(f"import of {filename}: {r1['created']} created, {r1['rejected']} rejected, "
                               f"{r2['unchanged']} unchanged on the re-import; {expected} expected")  # fmt: skip
        first.append(s1)
        again.append(s2)
        counts = {"created": r1["created"], "unchanged_on_reimport": r2["unchanged"], "encoding": r1.get("encoding")}
    return {
        "rows": expected,
        "first_import_median_s": round(statistics.median(first), 4),
        "first_import_max_s": round(max(first), 4),
        "reimport_median_s": round(statistics.median(again), 4),
        "reimport_max_s": round(max(again), 4),
        "first_import_rows_per_s": round(expected / statistics.median(first)),
        **counts,
    }


def code_under_test() -> dict[str, Any]:
    """Which checkout's service package ran: its folder, commit and whether its working tree had changes."""
    root = Path(service.schema.__file__).resolve().parents[1]

    def git(*argv: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *argv], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {"path": str(root), "commit": git("rev-parse", "--short", "HEAD"), "dirty": bool(git("status", "--short"))}


def machine() -> dict[str, Any]:
    """As bench/common.machine (not imported: it loads the demo's video and model code with it)."""
    return {
        "cpus": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _refused(call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A format the code refuses (an older checkout's, UTF-8 only): its error instead of figures."""
    try:
        return call()
    except ServiceError as exc:
        return {"refused": str(exc)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    rows = people(args.rows)
    parse: dict[str, Any] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for fmt in args.formats:
        n = min(args.rows, args.xlsx_rows) if fmt == "xlsx" else args.rows
        t = time.perf_counter()
        files[fmt] = roster_file(rows[:n], fmt)
        built_s = time.perf_counter() - t
        name, data = files[fmt]
        warm = roster_file(rows[:WARM_ROWS], fmt)[1]
        entry = {"rows": n, "bytes": len(data), "build_s": round(built_s, 2)}
        parse[fmt] = entry | _refused(lambda: measure_parse(name, data, n, args.repeat, warm))  # noqa: B023
    return {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "code": code_under_test(),
        "backend": "sqlite",
        "config": {"rows": args.rows, "xlsx_rows": args.xlsx_rows, "repeat": args.repeat},
        "parse": parse,
        "import": run_import(args, rows, files),
    }


def run_import(
    args: argparse.Namespace, rows: list[dict[str, str]], files: dict[str, tuple[str, bytes]]
) -> dict[str, Any]:
    fmt = args.import_format
    if fmt == "none":
        return {"format": "none"}
    n_import = min(args.rows, args.xlsx_rows) if fmt == "xlsx" else args.rows
    name, data = files.get(fmt) or roster_file(rows[:n_import], fmt)
    # The warm-up's people are others than the measured file's (a database of their own anyway).
    warm = roster_file(people(WARM_ROWS, seed=1), fmt)[1]
    return {"format": fmt} | _refused(lambda: measure_import(name, data, n_import, args.repeat, warm))


def compare(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """after / before of each figure both runs have (parse per format, and the import)."""
    ratios: dict[str, Any] = {}
    keys = ("parse_median_ms", "peak_mib")
    for fmt, entry in after["parse"].items():
        old = before["parse"].get(fmt, {})
        both = {k: round(entry[k] / old[k], 2) for k in keys if entry.get(k) and old.get(k)}
        if both:
            ratios[fmt] = both
    old_import = before["import"]
    if old_import.get("format") == after["import"].get("format"):
        both = {
            k: round(after["import"][k] / old_import[k], 2)
            for k in ("first_import_median_s", "reimport_median_s")
            if after["import"].get(k) and old_import.get(k)
        }
        if both:
            ratios["import"] = both
    return ratios


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Roster-import benchmark: read_table per file form, import_roster.")
    ap.add_argument("--rows", type=int, default=50_000, help="rows per file (the documented most: 200,000)")
    ap.add_argument("--xlsx-rows", type=int, default=50_000, help="rows of the XLSX file (at most --rows)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    ap.add_argument("--import-format", choices=(*FORMATS, "none"), default="utf8", help="none: parse only")
    ap.add_argument("--compare", type=Path, help="a run of another checkout's code (before) to compare with")
    ap.add_argument("--out", type=Path, default=REPO / "bench/results/roster.json")
    args = ap.parse_args(argv)
    out = run(args)
    if args.compare:
        before = json.loads(args.compare.read_text(encoding="utf-8"))
        out["before"] = {k: before[k] for k in ("when", "machine", "code", "config", "parse", "import")}
        out["after_over_before"] = compare(out, before)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
