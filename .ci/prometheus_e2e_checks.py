#!/usr/bin/env python3
"""Assertions of .ci/prometheus-e2e.sh against a live Prometheus (stdlib + PyYAML).

Usage: prometheus_e2e_checks.py PROMETHEUS_URL CHECK [ARG]
  clouds EXPR    the query returns series of both clouds (alibaba and tencent)
  targets        plain and TLS exporter targets up, the wrong-password target down (401)
  rules FILE     every group and rule of FILE loaded, in order, with health ok
  thresholds     the threshold recording rules produce one series per polled group
  no-alerts      no Absent/Down alert (firing or pending) for the healthy exporters
  dashboard FILE every expression of the Grafana dashboard FILE runs; those that do not
                 depend on injected API errors return data
Prints one summary line; exits 1 with the reason on failure.
"""

import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

BUILTINS = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h", "__range_s": "3600"}
VAR_RE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]")


def get(prom, path, **params):
    url = f"{prom}{path}" + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.load(resp)["data"]
    except urllib.error.HTTPError as e:  # 400 carries Prometheus' error message
        raise RuntimeError(e.read().decode(errors="replace")) from None


def query(prom, expr):
    return get(prom, "/api/v1/query", query=expr)["result"]


def clouds(prom, expr):
    result = query(prom, expr)
    found = {s["metric"].get("cloud") for s in result}
    missing = {"alibaba", "tencent"} - found
    if missing:
        sys.exit(f"{len(result)} series, none with cloud={sorted(missing)}")
    return f"{len(result)} series, clouds {sorted(found)}"


def targets(prom):
    want = {"kafka-cloud-lag-exporter": "up", "kafka-cloud-lag-exporter-tls": "up", "wrong-password": "down"}
    got = {t["labels"]["job"]: (t["health"], t["lastError"]) for t in get(prom, "/api/v1/targets")["activeTargets"]}
    bad = {job: got.get(job) for job, health in want.items() if got.get(job, ("missing",))[0] != health}
    if bad:
        sys.exit(f"unexpected target health: {bad}")
    return f"plain up, TLS up, wrong-password down ({got['wrong-password'][1]})"


def rules(prom, path):
    import yaml

    want = yaml.safe_load(open(path))["groups"]
    got = {g["name"]: g for g in get(prom, "/api/v1/rules")["groups"]}
    errors = []
    for group in want:
        loaded = got.get(group["name"])
        if not loaded:
            errors.append(f"group {group['name']} not loaded")
            continue
        names = [r["name"] for r in loaded["rules"]]
        expected = [r.get("record") or r.get("alert") for r in group["rules"]]
        if names != expected:
            errors.append(f"group {group['name']}: rules {names}, want {expected}")
        for r in loaded["rules"]:
            if r.get("health") != "ok":
                errors.append(f"{r['name']}: health {r.get('health')} {r.get('lastError', '')}")
    if errors:
        sys.exit("\n".join(errors))
    return f"{sum(len(g['rules']) for g in want)} rules in {len(want)} groups loaded, health ok"


def thresholds(prom):
    result = query(prom, "kafka_cloud_lag_exporter:lag_threshold_messages")
    groups = query(prom, "max by (cloud, instance_id, consumergroup) (kafka_cloud_lag_exporter_group_up)")
    if not result or len(result) != len(groups):
        sys.exit(f"{len(result)} threshold series for {len(groups)} groups")
    return f"{len(result)} groups with a lag threshold, e.g. {result[0]['metric']} = {result[0]['value'][1]}"


def no_alerts(prom):
    bad = []
    for a in get(prom, "/api/v1/alerts")["alerts"]:
        name, job = a["labels"]["alertname"], a["labels"].get("job")
        if name == "KafkaCloudLagExporterAbsent":
            bad.append(a["labels"])
        elif name == "KafkaCloudLagExporterDown" and job != "wrong-password":
            bad.append(a["labels"])
    if bad:
        sys.exit(f"unexpected alerts: {bad}")
    return "no Absent/Down alerts (firing or pending) for the healthy exporters"


def dashboard_exprs(path):
    dash = json.load(open(path))
    names = {v["name"] for v in dash["templating"]["list"]}

    def sub(expr):
        def repl(m):
            n = m.group(1) or m.group(2) or m.group(3)
            return BUILTINS.get(n, ".*" if n in names else m.group(0))

        return VAR_RE.sub(repl, expr)

    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((f"panel {p['id']} {p['title']!r} {t['refId']}", sub(t["expr"])))
            walk(p.get("panels", []))

    walk(dash["panels"])
    for v in dash["templating"]["list"]:
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q, re.S)
            out.append((f"variable {v['name']}", sub(m.group(1) if m else q)))
    return out


def dashboard(prom, path):
    errors, empty_ok, with_data = [], [], 0
    exprs = dashboard_exprs(path)
    for where, expr in exprs:
        try:
            result = query(prom, expr)
        except RuntimeError as e:
            errors.append(f"{where}: {e}\n    {expr}")
            continue
        if result:
            with_data += 1
        elif "api_errors_total" in expr or "api_retries_total" in expr:
            empty_ok.append(where)  # only exist when the simulator injects faults
        else:
            errors.append(f"{where}: no data\n    {expr}")
    if errors:
        sys.exit("\n".join(errors))
    return f"{len(exprs)} expressions ran, {with_data} with data, {len(empty_ok)} empty (no API errors injected)"


def main():
    prom, check, *args = sys.argv[1:]
    fn = {"clouds": clouds, "targets": targets, "rules": rules, "thresholds": thresholds,
          "no-alerts": no_alerts, "dashboard": dashboard}[check]
    try:
        print(fn(prom, *args))
    except (RuntimeError, urllib.error.URLError, KeyError) as e:
        sys.exit(f"{check}: {e}")


if __name__ == "__main__":
    main()
