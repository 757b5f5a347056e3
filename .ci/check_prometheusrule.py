#!/usr/bin/env python3
"""Keeps every copy of the alert rules identical to deploy/prometheus/alerts.yaml.

deploy/prometheus/alerts.yaml is the source. Its copies:
  - deploy/kubernetes/prometheusrule.yaml (a PrometheusRule whose spec is the file's groups),
  - deploy/helm/kafka-cloud-lag-exporter/files/alerts.yaml (byte for byte; the chart's
    PrometheusRule template reads it with .Files.Get).

Usage:
  check_prometheusrule.py --write            regenerate both copies from the source
  check_prometheusrule.py                    fail if a copy differs from the source
  check_prometheusrule.py --rendered FILE... also fail unless each rendered manifest stream
                                             (kustomize or helm output) holds exactly one
                                             PrometheusRule whose spec.groups equal the
                                             source's groups
  --extra-group NAME                         with --rendered: a group allowed after the
                                             source's groups (Helm threshold overrides)
"""

import argparse
import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCE = ROOT / "deploy/prometheus/alerts.yaml"
KUSTOMIZE_COPY = ROOT / "deploy/kubernetes/prometheusrule.yaml"
HELM_COPY = ROOT / "deploy/helm/kafka-cloud-lag-exporter/files/alerts.yaml"

HEADER = """\
# GENERATED from deploy/prometheus/alerts.yaml by `.ci/check_prometheusrule.py --write`:
# edit that file, not this one. .ci/deploy-checks.sh fails when the two differ.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: kafka-cloud-lag-exporter
  labels:
    app.kubernetes.io/name: kafka-cloud-lag-exporter
    app.kubernetes.io/component: exporter
spec:
"""


def kustomize_text(source: str) -> str:
    """The PrometheusRule: the source from its `groups:` line on, indented under spec."""
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("groups:"))
    body = [("  " + line) if line.strip() else "" for line in lines[start:]]
    return HEADER + "\n".join(body) + "\n"


def source_groups():
    return yaml.safe_load(SOURCE.read_text())["groups"]


def check_rendered(path: str, extra_groups) -> list:
    errors = []
    rules = [
        doc
        for doc in yaml.safe_load_all(pathlib.Path(path).read_text())
        if isinstance(doc, dict) and doc.get("kind") == "PrometheusRule"
    ]
    if len(rules) != 1:
        return [f"{path}: expected exactly 1 PrometheusRule, found {len(rules)}"]
    groups = rules[0].get("spec", {}).get("groups", [])
    want = source_groups()
    if groups[: len(want)] != want:
        names = [g.get("name") for g in groups]
        errors.append(
            f"{path}: PrometheusRule groups differ from {SOURCE.relative_to(ROOT)} "
            f"(rendered groups: {names})"
        )
    extra = [g.get("name") for g in groups[len(want) :]]
    if extra != list(extra_groups):
        errors.append(f"{path}: unexpected extra groups {extra}, allowed {list(extra_groups)}")
    return errors


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--rendered", nargs="*", default=[])
    parser.add_argument("--extra-group", action="append", default=[])
    args = parser.parse_args()

    source = SOURCE.read_text()
    if args.write:
        KUSTOMIZE_COPY.write_text(kustomize_text(source))
        HELM_COPY.parent.mkdir(parents=True, exist_ok=True)
        HELM_COPY.write_text(source)
        print(f"wrote {KUSTOMIZE_COPY.relative_to(ROOT)} and {HELM_COPY.relative_to(ROOT)}")
        return 0

    errors = []
    if not KUSTOMIZE_COPY.exists() or KUSTOMIZE_COPY.read_text() != kustomize_text(source):
        errors.append(f"{KUSTOMIZE_COPY.relative_to(ROOT)} is out of date")
    elif yaml.safe_load(KUSTOMIZE_COPY.read_text())["spec"]["groups"] != source_groups():
        errors.append(f"{KUSTOMIZE_COPY.relative_to(ROOT)}: spec.groups differ from the source")
    if not HELM_COPY.exists() or HELM_COPY.read_text() != source:
        errors.append(f"{HELM_COPY.relative_to(ROOT)} is not identical to the source")
    for path in args.rendered:
        errors.extend(check_rendered(path, args.extra_group))

    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if errors:
        print(
            "hint: edit deploy/prometheus/alerts.yaml, then run .ci/check_prometheusrule.py --write",
            file=sys.stderr,
        )
        return 1
    checked = 2 + len(args.rendered)
    print(f"PrometheusRule copies match {SOURCE.relative_to(ROOT)} ({checked} checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
