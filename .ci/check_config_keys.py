#!/usr/bin/env python3
"""Checks the exporter configs shipped in deploy/ against config.example.yaml.

The exporter rejects unknown keys at start-up, and nothing here can run it, so a typo in a
deploy config would only show in a crashing pod. Every key used by the deploy configs
(kustomize base and overlay, Helm values and test values) must therefore appear in
config.example.yaml, the reference that documents every key (commented-out keys count).
New keys documented there need no change here.
"""

import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "config.example.yaml"
CONFIGS = [
    ("deploy/kubernetes/config.yaml", None),
    ("deploy/examples/kustomize-overlay/config.yaml", None),
    ("deploy/examples/kustomize-rrsa/config.yaml", None),
    ("deploy/examples/kustomize-tke-pod-identity/config.yaml", None),
    ("deploy/helm/kafka-cloud-lag-exporter/values.yaml", "config"),
    ("deploy/helm/kafka-cloud-lag-exporter/ci/all-enabled-values.yaml", "config"),
]


def keys(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield f"{path}.{k}" if path else k, k
            yield from keys(v, f"{path}.{k}" if path else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from keys(v, f"{path}[{i}]")


def main() -> int:
    documented = set(re.findall(r"^\s*(?:#\s*)?(?:-\s+)?([a-z_]+):", REFERENCE.read_text(), re.M))
    errors = []
    for rel, sub in CONFIGS:
        doc = yaml.safe_load((ROOT / rel).read_text())
        if sub:
            doc = doc.get(sub)
        if not isinstance(doc, dict) or not doc.get("accounts"):
            errors.append(f"{rel}: no config with accounts")
            continue
        for path, key in keys(doc):
            if key not in documented:
                errors.append(f"{rel}: {path}: key {key!r} is not in config.example.yaml")
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if errors:
        return 1
    print(f"{len(CONFIGS)} deploy configs use only keys documented in config.example.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
