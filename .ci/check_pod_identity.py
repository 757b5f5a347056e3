#!/usr/bin/env python3
"""Checks the keyless (pod identity) renders of the deploy kit: the ACK RRSA and TKE pod
identity kustomize overlays, and the Helm chart with `podIdentity` (all-enabled values).

Each must annotate the ServiceAccount as the cloud's pod-identity webhook reads it, project
exactly one ServiceAccount token with the cloud's STS audience, mounted read-only, and (the
kustomize components) hold no key variable.

Usage: check_pod_identity.py KUSTOMIZE_RRSA KUSTOMIZE_TKE HELM_ALL
"""

import sys

import yaml

WANT = [
    ("pod-identity.alibabacloud.com/role-name", "sts.aliyuncs.com", True),
    ("tke.cloud.tencent.com/role-arn", "sts.cloud.tencent.com", True),
    ("tke.cloud.tencent.com/role-arn", "sts.cloud.tencent.com", False),
]


def check(path, annotation, audience, keyless):
    errors = []
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    sa = next((d for d in docs if d["kind"] == "ServiceAccount"), None)
    dep = next((d for d in docs if d["kind"] == "Deployment"), None)
    if sa is None or dep is None:
        return [f"{path}: no ServiceAccount or Deployment"]
    if annotation not in (sa["metadata"].get("annotations") or {}):
        errors.append(f"{path}: ServiceAccount lacks the annotation {annotation}")
    pod = dep["spec"]["template"]["spec"]
    projected = {
        v["name"]: s["serviceAccountToken"]
        for v in pod.get("volumes", [])
        for s in v.get("projected", {}).get("sources", [])
        if "serviceAccountToken" in s
    }
    if [t.get("audience") for t in projected.values()] != [audience]:
        errors.append(f"{path}: projected tokens {projected}, want one with audience {audience}")
    container = pod["containers"][0]
    mounts = {m["name"]: m for m in container.get("volumeMounts", [])}
    for name in projected:
        if not mounts.get(name, {}).get("readOnly"):
            errors.append(f"{path}: token volume {name} is not mounted read-only")
    if keyless:
        keys = [e["name"] for e in container.get("env", []) if "valueFrom" in e]
        if keys:
            errors.append(f"{path}: key variables left in a keyless render: {keys}")
    return errors


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    errors = []
    for path, (annotation, audience, keyless) in zip(sys.argv[1:], WANT):
        errors += check(path, annotation, audience, keyless)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    if errors:
        return 1
    print("pod identity: ServiceAccount annotations, one projected token per render with the STS audience, no key variables")
    return 0


if __name__ == "__main__":
    sys.exit(main())
