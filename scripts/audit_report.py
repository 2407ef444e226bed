"""Turn pip-audit's JSON into bench/results/audit.json, apply the allowlist, and fill pip-audit's gaps.

pip-audit asks PyPI for each installed *version* (/pypi/<name>/<version>/json). Where that answers 404 (the
package index behind this machine serves only the project-level JSON), the project-level answer is used:
its ``vulnerabilities`` field describes the latest release, so it audits exactly the installed version when
that is the latest one. Anything else stays "unaudited" and is reported as such, never as clean.

Exit status: 0 clean, 1 known vulnerabilities (not allowlisted), 2 no vulnerabilities but some packages could
not be audited.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

PYPI = "https://pypi.org/pypi/{}/json"


def load_allowlist(path: Path) -> dict[str, str]:
    allowed: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            vid, _package, *reason = line.split()
            allowed[vid] = " ".join(reason)
    return allowed


def project_json(name: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(PYPI.format(name), timeout=20) as r:
            data: dict[str, Any] = json.load(r)
            return data
    except (OSError, ValueError):
        return None


def main(raw_path: str, out_path: str, allow_path: str) -> int:
    report = json.loads(Path(raw_path).read_text())
    allowed = load_allowlist(Path(allow_path))
    audited: list[dict[str, Any]] = []
    unaudited: list[dict[str, str]] = []
    for dep in report.get("dependencies", []):
        if "skip_reason" not in dep:
            audited.append(
                {
                    "name": dep["name"],
                    "version": dep["version"],
                    "source": "pip-audit",
                    "vulns": [
                        {"id": v["id"], "aliases": v.get("aliases", []), "fix_versions": v.get("fix_versions", [])}
                        for v in dep.get("vulns", [])
                    ],
                }
            )
            continue
        if "editable" in dep["skip_reason"]:
            continue  # this project itself
        version = dep["skip_reason"].rsplit("(", 1)[-1].rstrip(")")
        project = project_json(dep["name"])
        latest = project["info"]["version"] if project else None
        if project is None or latest != version:
            why = "PyPI unreachable" if project is None else f"installed {version}, latest on PyPI {latest}"
            unaudited.append({"name": dep["name"], "version": version, "reason": why})
            continue
        audited.append(
            {
                "name": dep["name"],
                "version": version,
                "source": "pypi project json (latest)",
                "vulns": [
                    {"id": v["id"], "aliases": v.get("aliases", []), "fix_versions": v.get("fixed_in", [])}
                    for v in project.get("vulnerabilities", [])
                ],
            }
        )
    findings: list[dict[str, Any]] = []
    accepted: list[dict[str, Any]] = []
    for dep in audited:
        for v in dep["vulns"]:
            entry = {"package": dep["name"], "version": dep["version"], **v}
            hit = next((i for i in (v["id"], *v["aliases"]) if i in allowed), None)
            (accepted if hit else findings).append(entry | ({"reason": allowed[hit]} if hit else {}))
    summary = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "scripts/audit.sh",
        "service": "pypi",
        "packages_audited": len(audited),
        "packages_unaudited": len(unaudited),
        "vulnerabilities": findings,
        "allowlisted": accepted,
        "unaudited": unaudited,
        "audited": [{"name": d["name"], "version": d["version"], "source": d["source"]} for d in audited],
    }
    Path(out_path).write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    out = sys.stdout
    out.write(
        f"audited {len(audited)} packages: {len(findings)} vulnerabilities, {len(accepted)} allowlisted; "
        f"{len(unaudited)} could not be audited\n"
    )
    for f in findings:
        out.write(f"  VULNERABLE {f['package']} {f['version']}: {f['id']} fixed in {f['fix_versions'] or '?'}\n")
    for u in unaudited:
        out.write(f"  unaudited {u['name']} {u['version']}: {u['reason']}\n")
    return 1 if findings else 2 if unaudited else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
