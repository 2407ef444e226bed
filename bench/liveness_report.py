"""The liveness evaluation report as Markdown tables (docs/liveness.md), one per mode."""

from __future__ import annotations

from typing import Any

from pipelines.liveness.evaluation import ALL, APCER, BPCER, BPCER_WITH_RETAKES, RETAKE_RATE


def _fmt_rate(r: dict[str, Any]) -> str:
    if r.get("value") is None:
        return "–"
    text = f"{100 * r['value']:.1f} % ({r['events']}/{r['n']})"
    if "bootstrap_ci" in r:
        lo, hi = r["bootstrap_ci"]
        text += f" [{100 * lo:.1f}, {100 * hi:.1f}]"
    return text


def _fmt_cp(r: dict[str, Any]) -> str:
    if "clopper_pearson" not in r:
        return "–"
    lo, hi = r["clopper_pearson"]
    return f"[{100 * lo:.1f}, {100 * hi:.1f}]"


def mode_table(report: dict[str, Any]) -> str:
    cv, dep = report["cross_validated"], report["deployment"]
    lines = [
        "| figure | group | out-of-fold (bootstrap 95 % CI) | Clopper–Pearson 95 % | deployment, in-sample |",
        "|---|---|---|---|---|",
    ]
    for metric in (APCER, BPCER, RETAKE_RATE, BPCER_WITH_RETAKES):
        for group, r in cv[metric].items():
            if metric == APCER and group == ALL:
                continue  # pooled APCER is not an ISO figure
            lines.append(
                f"| {metric} | {group} | {_fmt_rate(r)} | {_fmt_cp(r)} | {_fmt_rate(dep['in_sample'][metric][group])} |"
            )
    acer, acer_in = cv["acer"], dep["in_sample"]["acer"]
    ci = acer.get("bootstrap_ci")
    ci_text = f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else ""
    value = "–" if acer["value"] is None else f"{100 * acer['value']:.1f} %{ci_text}"
    value_in = "–" if acer_in["value"] is None else f"{100 * acer_in['value']:.1f} %"
    lines.append(f"| acer | worst: {acer['worst_attack_type']} | {value} | | {value_in} |")
    thresholds = ", ".join(f"{f['choice']['threshold']:.4f}" for f in cv["folds"])
    lines += [
        "",
        f"Fold thresholds: {thresholds}. Deployment threshold {dep['choice']['threshold']:.4f} "
        f"({dep['choice']['rule']}); its column is in-sample and optimistic. Protocol: "
        f"{report['protocol']['folds']} subject-disjoint folds, seed {report['protocol']['seed']}, "
        f"{report['counts']['presentations']} presentations of {report['counts']['subjects']} subjects.",
    ]
    return "\n".join(lines) + "\n"


def markdown_table(report: dict[str, Any]) -> str:
    parts = []
    for mode, sub in report["modes"].items():
        deployed = " (deployed)" if mode == report["deployed_mode"] else ""
        parts.append(f"#### Mode: {mode.replace('_', ' ')}{deployed}\n\n{mode_table(sub)}")
    return "\n".join(parts)
