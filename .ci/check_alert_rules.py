#!/usr/bin/env python3
"""Checks what promtool does not about deploy/prometheus/alerts.yaml.

- Every alert has a `severity` label (warning or critical) and `summary`, `description` and
  `runbook_url` annotations.
- Every runbook_url points at a heading of docs/runbook.md (GitHub's anchor rules).
- Every alert is tested in alerts_test.yaml at least once firing (exp_alerts not empty) and
  at least once not firing (exp_alerts empty).
- The threshold recording rules are exercised by a promql_expr_test.
"""

import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy/prometheus/alerts.yaml"
TESTS = ROOT / "deploy/prometheus/alerts_test.yaml"
RUNBOOK = ROOT / "docs/runbook.md"
SEVERITIES = {"warning", "critical"}


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def main() -> int:
    errors = []
    rules = yaml.safe_load(RULES.read_text())
    anchors = {
        github_anchor(m.group(1))
        for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", RUNBOOK.read_text(), re.M)
    }
    alerts, records = [], []
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                records.append(rule["record"])
                continue
            name = rule["alert"]
            alerts.append(name)
            if rule.get("labels", {}).get("severity") not in SEVERITIES:
                errors.append(f"{name}: severity label must be one of {sorted(SEVERITIES)}")
            ann = rule.get("annotations", {})
            for key in ("summary", "description", "runbook_url"):
                if not str(ann.get(key, "")).strip():
                    errors.append(f"{name}: no {key} annotation")
            url = ann.get("runbook_url", "")
            m = re.fullmatch(r"https://\S+/docs/runbook\.md#([\w-]+)", url)
            if not m:
                errors.append(f"{name}: runbook_url {url!r} is not .../docs/runbook.md#anchor")
            elif m.group(1) not in anchors:
                errors.append(f"{name}: runbook_url anchor #{m.group(1)} is no heading of docs/runbook.md")
            elif m.group(1) != name.lower():
                errors.append(f"{name}: runbook_url anchor should be #{name.lower()}")
    if len(set(alerts)) != len(alerts):
        errors.append("alert names are not unique")

    tests = yaml.safe_load(TESTS.read_text())
    firing, quiet, tested_exprs = set(), set(), ""
    for t in tests["tests"]:
        for a in t.get("alert_rule_test", []):
            (firing if a.get("exp_alerts") else quiet).add(a["alertname"])
        for p in t.get("promql_expr_test", []):
            tested_exprs += p["expr"] + "\n"
    for name in alerts:
        if name not in firing:
            errors.append(f"{name}: no test in {TESTS.name} where it fires")
        if name not in quiet:
            errors.append(f"{name}: no test in {TESTS.name} where it must not fire")
    for rec in records:
        if rec.endswith(":default"):
            continue  # exercised through the effective thresholds
        if rec not in tested_exprs:
            errors.append(f"recording rule {rec}: no promql_expr_test")

    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if errors:
        return 1
    print(f"{len(alerts)} alerts: labels, annotations and runbook anchors complete; "
          f"each tested firing and not firing; {len(records)} recording rules covered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
