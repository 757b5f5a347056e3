#!/usr/bin/env python3
"""Validates the Prometheus Operator objects in rendered manifests.

kubernetes-validate only warns about custom resources ("couldn't find schema"), so the
ServiceMonitor and PrometheusRule objects of the kustomize and Helm outputs are checked
here instead:
  1. against the JSON schema of the operator's CRDs, taken from the PyPI package
     cloudcoil-models-prometheus-operator (pydantic models generated from the operator's
     CRDs: field names, types, enums and duration patterns), made strict: unknown fields are
     errors, as `kubectl apply --validate=strict` would make them;
  2. each PrometheusRule's spec with `promtool check rules` (PromQL and templates).

Usage: check_crds.py [--require KIND]... MANIFEST...
"""

import argparse
import functools
import pathlib
import subprocess
import sys
import tempfile

import jsonschema
import yaml
from cloudcoil.models.prometheus_operator import v1

MODELS = {"ServiceMonitor": v1.ServiceMonitor, "PrometheusRule": v1.PrometheusRule}


def _strict(node):
    """additionalProperties: false on every object schema that lists its properties."""
    if isinstance(node, dict):
        if "properties" in node and node.get("type", "object") == "object":
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _strict(value)
    elif isinstance(node, list):
        for value in node:
            _strict(value)
    return node


@functools.cache
def validator(kind):
    schema = _strict(MODELS[kind].model_json_schema(by_alias=True, mode="validation"))
    return jsonschema.Draft202012Validator(schema)


def promtool_check(doc, where):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump({"groups": doc["spec"]["groups"]}, f, sort_keys=False)
        name = f.name
    try:
        out = subprocess.run(
            ["promtool", "check", "rules", name], capture_output=True, text=True
        )
    finally:
        pathlib.Path(name).unlink()
    if out.returncode != 0:
        return [f"{where}: promtool check rules failed:\n{out.stdout}{out.stderr}"]
    return []


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--require", action="append", default=[], help="kind each file must have")
    parser.add_argument("manifests", nargs="+")
    args = parser.parse_args()

    errors, checked = [], 0
    for path in args.manifests:
        docs = [d for d in yaml.safe_load_all(pathlib.Path(path).read_text()) if d]
        kinds = [d.get("kind") for d in docs]
        for kind in args.require:
            if kind not in kinds:
                errors.append(f"{path}: no {kind} rendered")
        for doc in docs:
            kind = doc.get("kind")
            if kind not in MODELS:
                continue
            where = f"{path}: {kind}/{doc.get('metadata', {}).get('name')}"
            if doc.get("apiVersion") != "monitoring.coreos.com/v1":
                errors.append(f"{where}: apiVersion {doc.get('apiVersion')!r}")
            for err in sorted(validator(kind).iter_errors(doc), key=lambda e: list(e.path)):
                loc = "/".join(str(p) for p in err.absolute_path) or "(root)"
                errors.append(f"{where}: {loc}: {err.message}")
            if kind == "PrometheusRule":
                errors.extend(promtool_check(doc, where))
            checked += 1

    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if errors:
        return 1
    print(f"{checked} Prometheus Operator objects valid (CRD schema, strict; promtool)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
