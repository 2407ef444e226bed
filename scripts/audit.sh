#!/usr/bin/env bash
# Dependency audit: every package installed in .venv against the PyPI vulnerability service (pip-audit).
# Writes bench/results/audit.json and exits non-zero when a known vulnerability is not in the allowlist
# (scripts/audit-allowlist.txt: "<vulnerability id> <package> <reason>", one a line, # comments).
# Needs network access to pypi.org (OSV is not reachable from the build machines), hence not part of .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/results/audit.json
RAW=$(mktemp)
trap 'rm -f "$RAW"' EXIT
# pip-audit exits 1 when it finds anything; the allowlist decides below, so its status is not used here.
.venv/bin/pip-audit --vulnerability-service pypi --format json --skip-editable --progress-spinner off \
  --desc on --aliases on --output "$RAW" || true
.venv/bin/python - "$RAW" "$OUT" scripts/audit-allowlist.txt <<'PY'
import datetime as dt
import json
import sys
from pathlib import Path

raw, out, allow_path = sys.argv[1:4]
report = json.loads(Path(raw).read_text())
allowed: dict[str, str] = {}
for line in Path(allow_path).read_text().splitlines():
    line = line.split("#", 1)[0].strip()
    if line:
        vid, _pkg, *reason = line.split()
        allowed[vid] = " ".join(reason)
findings, accepted = [], []
for dep in report.get("dependencies", []):
    for v in dep.get("vulns", []):
        ids = {v["id"], *v.get("aliases", [])}
        entry = {"package": dep["name"], "version": dep["version"], "id": v["id"], "aliases": v.get("aliases", []),
                 "fix_versions": v.get("fix_versions", [])}
        hit = next((i for i in ids if i in allowed), None)
        if hit:
            accepted.append(entry | {"reason": allowed[hit]})
        else:
            findings.append(entry)
summary = {
    "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    "command": "scripts/audit.sh",
    "service": "pypi",
    "packages_audited": len(report.get("dependencies", [])),
    "skipped": report.get("dependencies_skipped", [d for d in report.get("dependencies", []) if "skip_reason" in d]),
    "vulnerabilities": findings,
    "allowlisted": accepted,
}
Path(out).write_text(json.dumps(summary | {"pip_audit": report}, indent=1, ensure_ascii=False) + "\n")
print(f"audited {summary['packages_audited']} packages: {len(findings)} vulnerabilities, {len(accepted)} allowlisted")
for f in findings:
    print(f"  {f['package']} {f['version']}: {f['id']} fixed in {', '.join(f['fix_versions']) or '?'}")
sys.exit(1 if findings else 0)
PY
