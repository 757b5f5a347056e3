#!/usr/bin/env python3
"""Policy checks of rendered manifests (kustomize or Helm output): the "boring and safe"
settings of the deploy kit must not erode unnoticed.

For each Deployment of the exporter:
  - at most 1 replica and strategy Recreate (never two pollers);
  - liveness /healthz, readiness /readyz and startup probes on the named port `metrics`;
  - CPU and memory requests, memory limit;
  - pod: runAsNonRoot, a non-zero runAsUser, seccompProfile RuntimeDefault,
    automountServiceAccountToken false;
  - container: readOnlyRootFilesystem, allowPrivilegeEscalation false, capabilities drop ALL;
  - every credential environment variable (the clouds' standard names and any variable a
    ConfigMap config names with *_env) comes from a secretKeyRef, never a literal value;
  - the config is mounted from a ConfigMap at /etc/kafka-cloud-lag-exporter and the pod
    template changes with it (hash-suffixed name or checksum annotation).
For the whole stream: no Secret objects, no ConfigMap value that looks like a key.

Usage: check_manifests.py MANIFEST...
"""

import pathlib
import re
import sys

import yaml

CREDENTIAL_ENV = re.compile(r"^(ALIBABA_CLOUD_|TENCENTCLOUD_)")
KEY_LIKE = re.compile(r"(LTAI[0-9A-Za-z]{12,}|AKID[0-9A-Za-z]{16,}|-----BEGIN [A-Z ]*PRIVATE KEY)")


def check_stream(path):
    errors = []
    docs = [d for d in yaml.safe_load_all(pathlib.Path(path).read_text()) if d]
    configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    env_names = set()
    for cm in configmaps.values():
        for key, value in (cm.get("data") or {}).items():
            if KEY_LIKE.search(value):
                errors.append(f"ConfigMap {cm['metadata']['name']}: {key} holds something that looks like a key")
            if key.endswith((".yaml", ".yml")):
                env_names |= set(re.findall(r"\b(?:id|secret|token)_env:\s*(\w+)", value))
    for d in docs:
        if d["kind"] == "Secret":
            errors.append(f"Secret {d['metadata']['name']} rendered: secrets are created out of band")
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    if not deployments:
        errors.append("no Deployment")
    for dep in deployments:
        name = f"Deployment {dep['metadata']['name']}"
        spec, pod = dep["spec"], dep["spec"]["template"]["spec"]
        bad = lambda msg: errors.append(f"{name}: {msg}")  # noqa: E731
        if spec.get("replicas", 1) > 1:
            bad("more than 1 replica")
        if spec.get("strategy", {}).get("type") != "Recreate":
            bad("strategy is not Recreate")
        psc = pod.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True:
            bad("pod securityContext.runAsNonRoot is not true")
        if not psc.get("runAsUser"):
            bad("pod securityContext.runAsUser is unset or 0")
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            bad("pod seccompProfile is not RuntimeDefault")
        if pod.get("automountServiceAccountToken") is not False:
            bad("automountServiceAccountToken is not false")
        containers = pod.get("containers", [])
        if len(containers) != 1:
            bad("expected exactly one container")
        for c in containers:
            csc = c.get("securityContext", {})
            if csc.get("readOnlyRootFilesystem") is not True:
                bad(f"container {c['name']}: readOnlyRootFilesystem is not true")
            if csc.get("allowPrivilegeEscalation") is not False:
                bad(f"container {c['name']}: allowPrivilegeEscalation is not false")
            if "ALL" not in csc.get("capabilities", {}).get("drop", []):
                bad(f"container {c['name']}: capabilities do not drop ALL")
            res = c.get("resources", {})
            for kind in ("cpu", "memory"):
                if kind not in res.get("requests", {}):
                    bad(f"container {c['name']}: no {kind} request")
            if "memory" not in res.get("limits", {}):
                bad(f"container {c['name']}: no memory limit")
            ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
            if "metrics" not in ports:
                bad(f"container {c['name']}: no port named metrics")
            for probe, want in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"),
                                ("startupProbe", "/healthz")):
                get = c.get(probe, {}).get("httpGet", {})
                if get.get("path") != want or get.get("port") != "metrics":
                    bad(f"container {c['name']}: {probe} is not GET {want} on port metrics")
            for env in c.get("env", []):
                if CREDENTIAL_ENV.match(env["name"]) or env["name"] in env_names:
                    if "secretKeyRef" not in env.get("valueFrom", {}):
                        bad(f"container {c['name']}: credential variable {env['name']} not from a secretKeyRef")
            mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
            vols = {v["name"]: v for v in pod.get("volumes", [])}
            cfg = [v for n, v in vols.items() if "configMap" in v and mounts.get(n, {}).get("mountPath") == "/etc/kafka-cloud-lag-exporter"]
            if not cfg:
                bad("no ConfigMap mounted at /etc/kafka-cloud-lag-exporter")
            else:
                cm_name = cfg[0]["configMap"]["name"]
                if cm_name not in configmaps:
                    bad(f"mounted ConfigMap {cm_name} is not rendered")
                annotated = any(k.startswith("checksum/") for k in
                                dep["spec"]["template"].get("metadata", {}).get("annotations", {}) or {})
                hashed = re.search(r"-[a-z0-9]{10}$", cm_name) is not None
                if not (annotated or hashed):
                    bad("config changes would not roll the pod (no hash suffix, no checksum annotation)")
            if not any(a.startswith("--config.file=/etc/kafka-cloud-lag-exporter/") for a in c.get("args", [])):
                bad(f"container {c['name']}: no --config.file under /etc/kafka-cloud-lag-exporter/")
        for m in (c.get("volumeMounts", []) for c in containers):
            for mount in m:
                if not mount.get("readOnly"):
                    bad(f"volume mount {mount['name']} is not readOnly")
    return [f"{path}: {e}" for e in errors]


def main() -> int:
    errors = []
    for path in sys.argv[1:]:
        errors.extend(check_stream(path))
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if errors:
        return 1
    print(f"{len(sys.argv) - 1} manifest streams meet the deploy policy (non-root, read-only, "
          f"probes, resources, one Recreate replica, credentials from Secrets only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
