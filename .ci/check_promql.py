#!/usr/bin/env python3
"""Checks every PromQL expression shipped in deploy/: syntax and metric/label names.

Expressions come from the Grafana dashboard (panel targets and template-variable queries)
and from the Prometheus rule files (deploy/prometheus/*.yaml except *_test.yaml). Grafana
variables are replaced by values of the right kind ($__rate_interval -> 1m, $cloud -> .*),
the expressions are written as recording rules to a temporary rule file, and
`promtool check rules` parses them.

Then every metric name an expression references must exist:
  - kafka_* names must be in docs/metrics.md (the first column of its tables); a
    histogram's _bucket/_sum/_count series count as the histogram;
  - names with a colon must be recording rules defined in the rule files;
and the label names used must exist:
  - in a selector of a kafka_* metric: that metric's labels (the Labels column) or a
    target label (job, instance, ...);
  - in by/without/on/ignoring/group_left/group_right: any documented label, a target
    label, or `le`.
docs/metrics.md is read at run time, so a newly documented metric needs no change here.

Usage: check_promql.py [--dashboard FILE] [--rules FILE...] [--emit DIR]
  --emit DIR writes the substituted dashboard expressions to DIR/dashboard_exprs.json (for
  .ci/prometheus-e2e.sh, which runs them against a live Prometheus).
"""

import argparse
import json
import pathlib
import re
import subprocess
import sys
import tempfile

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
METRICS_DOC = ROOT / "docs/metrics.md"
DEFAULT_DASHBOARD = ROOT / "deploy/grafana/dashboard.json"
DEFAULT_RULES = sorted(
    p for p in (ROOT / "deploy/prometheus").glob("*.yaml") if not p.name.endswith("_test.yaml")
)

# Labels Prometheus attaches to every scraped series (kubernetes_sd / Prometheus Operator).
TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "endpoint", "container"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

# Grafana's built-in variables, replaced by a value of the same kind.
BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
    "__interval_ms": "60000",
}
VAR_RE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]")
STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
IDENT_RE = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
SELECTOR_RE = re.compile(r"(kafka_[a-z0-9_]+)\s*\{([^}]*)\}")
MATCHER_LABEL_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING_RE = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def documented_metrics():
    """{name: (type, set(labels))} from the tables of docs/metrics.md."""
    metrics = {}
    for line in METRICS_DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.lstrip().startswith("|") or len(cells) < 3:
            continue
        m = re.fullmatch(r"`([a-zA-Z_:][a-zA-Z0-9_:]*)`", cells[0])
        if not m:
            continue  # header or separator row
        labels = {l.strip() for l in cells[2].replace("`", "").split(",") if l.strip()}
        metrics[m.group(1)] = (cells[1].lower(), labels)
    if not metrics:
        sys.exit(f"error: no metrics found in {METRICS_DOC}")
    return metrics


def substitute(expr, variables):
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in BUILTINS:
            return BUILTINS[name]
        if name in variables:
            return ".*"
        raise ValueError(f"unknown Grafana variable ${name}")

    return VAR_RE.sub(repl, expr)


def dashboard_exprs(path):
    """[(where, expr)] with Grafana variables substituted."""
    dash = json.loads(pathlib.Path(path).read_text())
    variables = {v["name"] for v in dash.get("templating", {}).get("list", [])}
    out = []

    def panels(items):
        for p in items:
            yield p
            yield from panels(p.get("panels", []))

    for p in panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            if t.get("expr"):
                out.append((f"panel {p.get('id')} {p.get('title')!r} ref {t.get('refId')}", t["expr"]))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v["query"]["query"] if isinstance(v.get("query"), dict) else v.get("query", "")
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q, re.S)
        if m:
            out.append((f"variable {v['name']}", m.group(1)))
        elif q.strip():
            out.append((f"variable {v['name']}", q))
    subst = []
    for where, expr in out:
        try:
            subst.append((where, substitute(expr, variables)))
        except ValueError as e:
            subst.append((where, None, str(e)))
    return subst


def rule_exprs(paths):
    """([(where, expr)], set(recording rule names))"""
    out, records = [], set()
    for path in paths:
        for group in yaml.safe_load(pathlib.Path(path).read_text()).get("groups", []):
            for rule in group.get("rules", []):
                name = rule.get("record") or rule.get("alert")
                if rule.get("record"):
                    records.add(rule["record"])
                out.append((f"{pathlib.Path(path).name} {group['name']} {name}", str(rule["expr"])))
    return out, records


def check_names(where, expr, metrics, records):
    errors = []
    all_labels = set().union(*(labels for _, labels in metrics.values()))
    bare = STRING_RE.sub('""', expr)
    for ident in set(IDENT_RE.findall(bare)):
        if ":" in ident:
            if ident not in records:
                errors.append(f"{where}: {ident} is not a recording rule of the rule files")
        elif ident.startswith("kafka_"):
            base = ident
            for suffix in HISTOGRAM_SUFFIXES:
                if ident.endswith(suffix) and ident[: -len(suffix)] in metrics:
                    if metrics[ident[: -len(suffix)]][0] in ("histogram", "summary"):
                        base = ident[: -len(suffix)]
            if base not in metrics:
                errors.append(f"{where}: metric {ident} is not in docs/metrics.md")
    for name, matchers in SELECTOR_RE.findall(bare):
        base = name
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix) and name[: -len(suffix)] in metrics:
                base = name[: -len(suffix)]
        if base not in metrics:
            continue  # reported above
        allowed = metrics[base][1] | TARGET_LABELS | ({"le"} if base != name else set())
        for label in MATCHER_LABEL_RE.findall(matchers):
            if label not in allowed:
                errors.append(f"{where}: {name} has no label {label!r} (docs: {sorted(metrics[base][1])})")
    for _, labels in GROUPING_RE.findall(bare):
        for label in (l.strip() for l in labels.split(",")):
            if label and label not in all_labels | TARGET_LABELS | {"le"}:
                errors.append(f"{where}: label {label!r} is in no documented metric")
    return errors


def promtool_check(exprs):
    rules = [
        {"record": f"deploy_check:expr_{i}", "expr": expr} for i, (_, expr) in enumerate(exprs)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "exprs.yaml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "deploy-check", "rules": rules}]}))
        out = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    if out.returncode == 0:
        return []
    # promtool names the failing rule by index ("group "deploy-check", rule 3"): map it back.
    text = out.stdout + out.stderr
    errors = []
    for m in re.finditer(r"rule (\d+), \"?deploy_check:expr_\d+\"?: (.*)", text):
        i = int(m.group(1)) - 1
        where, expr = exprs[i] if 0 <= i < len(exprs) else ("?", "?")
        errors.append(f"{where}: {m.group(2)}\n    {expr}")
    return errors or [f"promtool check rules failed:\n{text}"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dashboard", default=str(DEFAULT_DASHBOARD))
    parser.add_argument("--rules", nargs="*", default=[str(p) for p in DEFAULT_RULES])
    parser.add_argument("--emit")
    args = parser.parse_args()

    metrics = documented_metrics()
    errors = []
    dash = []
    for item in dashboard_exprs(args.dashboard):
        if len(item) == 3:
            errors.append(f"dashboard {item[0]}: {item[2]}")
        else:
            dash.append(item)
    rules, records = rule_exprs(args.rules)
    exprs = dash + rules
    for where, expr in exprs:
        errors.extend(check_names(where, expr, metrics, records))
    errors.extend(promtool_check(exprs))

    if args.emit:
        out = pathlib.Path(args.emit) / "dashboard_exprs.json"
        out.write_text(json.dumps([{"where": w, "expr": e} for w, e in dash], indent=1))

    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if errors:
        return 1
    print(
        f"{len(dash)} dashboard and {len(rules)} rule expressions parse (promtool) and use only "
        f"the {len(metrics)} metrics of docs/metrics.md and {len(records)} recording rules"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
