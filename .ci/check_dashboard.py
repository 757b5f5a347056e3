#!/usr/bin/env python3
"""Sanity checks of deploy/grafana/dashboard.json that Grafana itself would not make.

- valid JSON with uid, title, schemaVersion >= 36;
- unique panel ids, every panel placed on the 24-column grid without overlaps;
- the data source is a template variable: a `datasource` variable of type datasource
  (query prometheus), and every panel and target uses {"uid": "${datasource}"};
- every $variable referenced (queries, titles, legends, variable queries) exists, and every
  defined query variable is used by some panel;
- query variables are multi-value with an All option (allValue ".*"), so the =~ matchers
  of the panels work with several values;
- dashboard.json is what deploy/grafana/generate_dashboard.py generates.

Usage: check_dashboard.py [FILE]
"""

import json
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "deploy/grafana/dashboard.json"
VAR_RE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]")
BUILTINS = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s",
            "__range_ms", "__dashboard", "__from", "__to", "__name", "__org", "__user",
            "__all", "timeFilter", "__timeFilter"}


def all_panels(items):
    for p in items:
        yield p
        yield from all_panels(p.get("panels", []))


def strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)


def main() -> int:
    path = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    errors = []
    try:
        dash = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        print(f"error: {path}: invalid JSON: {e}", file=sys.stderr)
        return 1

    for key in ("uid", "title"):
        if not dash.get(key):
            errors.append(f"missing {key}")
    if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < 36:
        errors.append(f"schemaVersion {dash.get('schemaVersion')!r} < 36")

    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        errors.append("no template variable `datasource` of type datasource (query prometheus)")
    for name, v in variables.items():
        if v.get("type") == "query":
            if v.get("datasource", {}).get("uid") != "${datasource}":
                errors.append(f"variable {name}: datasource is not ${{datasource}}")
            if not (v.get("multi") and v.get("includeAll") and v.get("allValue") == ".*"):
                errors.append(f"variable {name}: not multi-value with All = .*")

    panels = list(all_panels(dash.get("panels", [])))
    ids = [p.get("id") for p in panels]
    for dup in sorted({i for i in ids if ids.count(i) > 1}, key=str):
        errors.append(f"panel id {dup} used more than once")
    if None in ids:
        errors.append("a panel has no id")

    occupied = {}
    for p in panels:
        g = p.get("gridPos") or {}
        if not all(isinstance(g.get(k), int) for k in ("x", "y", "w", "h")):
            errors.append(f"panel {p.get('id')}: no complete gridPos")
            continue
        if g["x"] < 0 or g["x"] + g["w"] > 24:
            errors.append(f"panel {p.get('id')}: gridPos outside the 24 columns")
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in occupied:
                    errors.append(f"panel {p.get('id')} overlaps panel {occupied[(x, y)]}")
                    break
                occupied[(x, y)] = p.get("id")
            else:
                continue
            break
        if p.get("type") == "row":
            continue
        if not p.get("title"):
            errors.append(f"panel {p.get('id')}: no title")
        if p.get("datasource", {}).get("uid") != "${datasource}":
            errors.append(f"panel {p.get('id')}: datasource is not ${{datasource}}")
        if not p.get("targets"):
            errors.append(f"panel {p.get('id')}: no targets")
        refs = [t.get("refId") for t in p.get("targets", [])]
        if len(set(refs)) != len(refs):
            errors.append(f"panel {p.get('id')}: duplicate refId")
        for t in p.get("targets", []):
            if t.get("datasource", {}).get("uid") != "${datasource}":
                errors.append(f"panel {p.get('id')} ref {t.get('refId')}: datasource is not ${{datasource}}")

    used = set()
    for where, node in [("panels", dash.get("panels", [])), ("variables", list(variables.values())),
                        ("title", dash.get("title"))]:
        for s in strings(node):
            for m in VAR_RE.finditer(s):
                name = m.group(1) or m.group(2) or m.group(3)
                if where == "panels":
                    used.add(name)
                if name not in variables and name not in BUILTINS:
                    errors.append(f"{where}: ${name} is not a variable of this dashboard")
    for name, v in variables.items():
        if v.get("type") == "query" and name not in used:
            errors.append(f"variable {name} is used by no panel")

    generator = ROOT / "deploy/grafana/generate_dashboard.py"
    if path == DEFAULT and generator.exists():
        out = subprocess.run([sys.executable, str(generator), "--check"], capture_output=True, text=True)
        if out.returncode != 0:
            errors.append(out.stderr.strip())

    for error in errors:
        print(f"error: {path.name}: {error}", file=sys.stderr)
    if errors:
        return 1
    print(f"{path.name}: {len(panels)} panels, {len(variables)} variables, ids unique, "
          f"variables defined and used, data source templated, generated file up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
