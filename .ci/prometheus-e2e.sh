#!/usr/bin/env bash
# End-to-end check of the exporter with a real Prometheus, on loopback only.
#
#   cargo build --release --locked
#   .ci/prometheus-e2e.sh                          # BIN=target/release/kafka-cloud-lag-exporter
#   BIN=path/to/binary SCRATCH=/tmp/e2e .ci/prometheus-e2e.sh
#
# 1. `$BIN demo` (both clouds simulated, no credentials) serves plain HTTP; a second
#    `$BIN demo --web.config.file` serves HTTPS with basic auth (a throwaway CA and server
#    certificate from openssl, a bcrypt hash from Python's bcrypt).
# 2. Prometheus (Debian's 2.42) scrapes both every second, with deploy/prometheus/alerts.yaml
#    loaded, plus a job with a wrong password.
# 3. Checks: lag series of both clouds, exporter output passes `promtool check metrics`,
#    rules loaded and healthy, every Grafana dashboard expression runs (and the ones that
#    do not depend on injected faults return data), TLS and basic auth enforced by the
#    exporter and passed by Prometheus, probes unauthenticated, clean shutdown on SIGTERM.
# Prints PASS/FAIL per check; exits non-zero if any fails. Every process it starts is
# stopped on exit.
#
# BIN=.ci/e2e-fake-exporter.py runs the harness against a stand-in exporter (a static
# exposition), to test this script without the Rust binary.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="${BIN:-target/release/kafka-cloud-lag-exporter}"
[[ "$BIN" == /* ]] || BIN="$ROOT/$BIN"
TIMEOUT="${E2E_TIMEOUT:-60}" # seconds to wait for series to appear

if [[ -n "${SCRATCH:-}" ]]; then
  mkdir -p "$SCRATCH"
  SCRATCH="$(cd "$SCRATCH" && pwd)"
  KEEP_SCRATCH=1
else
  SCRATCH="$(mktemp -d -t prometheus-e2e.XXXXXX)"
  KEEP_SCRATCH=
fi
LOGS="$SCRATCH/logs"
rm -rf "$LOGS" "$SCRATCH/prom-data" "$SCRATCH/tls"
mkdir -p "$LOGS" "$SCRATCH/tls"

PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  [[ -n "$KEEP_SCRATCH" ]] || rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s\n' "$*"; }
die() {
  printf 'FAIL setup: %s\n' "$*"
  exit 1
}

PASSED=0
FAILED=0
pass() {
  PASSED=$((PASSED + 1))
  printf 'PASS %s\n' "$*"
}
fail() {
  FAILED=$((FAILED + 1))
  printf 'FAIL %s\n' "$*"
}
# check NAME COMMAND...: PASS/FAIL by exit status, with the command's last line; its output
# is shown on FAIL. Runs in this shell (no subshell), so COMMAND may `wait` for our children.
check() {
  local name="$1" log="$SCRATCH/check.out"
  shift
  if "$@" >"$log" 2>&1; then
    local last
    last="$(grep -v '^\s*$' "$log" | tail -1 | cut -c1-120 || true)"
    pass "$name${last:+ ($last)}"
  else
    fail "$name"
    sed 's/^/    | /' "$log" | tail -30
  fi
}

# ---------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------
[[ -x "$BIN" ]] || die "no executable $BIN (build it with: cargo build --release --locked)"
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  say "installing Debian package prometheus"
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq >"$LOGS/apt.log" 2>&1 || die "apt-get update"
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    prometheus >>"$LOGS/apt.log" 2>&1 || die "apt-get install prometheus"
fi
for tool in curl openssl python3; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
VENV="$SCRATCH/venv"
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import bcrypt, yaml' 2>/dev/null; then
  say "creating Python venv in $VENV"
  python3 -m venv "$VENV" >"$LOGS/venv.log" 2>&1 || die "python3 -m venv"
  "$VENV/bin/pip" install -q --disable-pip-version-check "bcrypt==5.0.0" "PyYAML==6.0.3" \
    >>"$LOGS/venv.log" 2>&1 || die "pip install bcrypt PyYAML (see $LOGS/venv.log)"
fi
PY="$VENV/bin/python"
# The stand-in exporter (.ci/e2e-fake-exporter.py) needs the venv's bcrypt and PyYAML.
EXPORTER=("$BIN")
[[ "$BIN" != *.py ]] || EXPORTER=("$PY" "$BIN")

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_for SECONDS COMMAND...: polls COMMAND every 0.5s until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

# eventually SECONDS COMMAND...: waits until COMMAND succeeds, then runs it once more with
# its output (so the last attempt's result or error is what gets reported).
eventually() {
  local secs="$1"
  shift
  wait_for "$secs" "$@" || true
  "$@"
}

# ---------------------------------------------------------------------------------------
# Exporters
# ---------------------------------------------------------------------------------------
say "binary: $BIN ($("${EXPORTER[@]}" --version 2>&1 | head -1))"
EXP_PORT=$(free_port)
"${EXPORTER[@]}" demo --web.listen-address "127.0.0.1:$EXP_PORT" >"$LOGS/demo.log" 2>&1 &
PIDS+=($!)
DEMO_PID=$!

# TLS material: a throwaway CA and a server certificate for 127.0.0.1, valid one day.
T="$SCRATCH/tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=kafka-cloud-lag-exporter e2e CA" \
  -keyout "$T/ca.key" -out "$T/ca.crt" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  >"$LOGS/openssl.log" 2>&1 || die "openssl CA (see $LOGS/openssl.log)"
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$T/server.key" \
  -out "$T/server.csr" >>"$LOGS/openssl.log" 2>&1 || die "openssl server key"
printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
  "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >"$T/server.ext"
openssl x509 -req -in "$T/server.csr" -CA "$T/ca.crt" -CAkey "$T/ca.key" -CAcreateserial \
  -days 1 -extfile "$T/server.ext" -out "$T/server.crt" >>"$LOGS/openssl.log" 2>&1 ||
  die "openssl sign server certificate"
PASSWORD="e2e-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s' "$PASSWORD" >"$T/password"
HASH="$("$PY" -c 'import bcrypt, sys; print(bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt(rounds=10)).decode())' "$PASSWORD")"
cat >"$T/web-config.yml" <<EOF
# Prometheus exporter-toolkit web configuration.
tls_server_config:
  cert_file: $T/server.crt
  key_file: $T/server.key
basic_auth_users:
  prom: '$HASH'
EOF
TLS_PORT=$(free_port)
"${EXPORTER[@]}" demo --web.listen-address "127.0.0.1:$TLS_PORT" --web.config.file "$T/web-config.yml" \
  >"$LOGS/demo-tls.log" 2>&1 &
PIDS+=($!)

PLAIN="http://127.0.0.1:$EXP_PORT"
TLS="https://127.0.0.1:$TLS_PORT"
CURL=(curl -sS --max-time 5)
if wait_for 30 "${CURL[@]}" -f "$PLAIN/healthz"; then
  pass "demo exporter serves /healthz on $PLAIN"
else
  fail "demo exporter serves /healthz on $PLAIN"
  tail -20 "$LOGS/demo.log" | sed 's/^/    | /'
  die "the demo exporter did not start"
fi
if wait_for "$TIMEOUT" "${CURL[@]}" -f "$PLAIN/readyz"; then
  pass "demo exporter turns ready (/readyz 200)"
else
  fail "demo exporter turns ready (/readyz 200): $("${CURL[@]}" -o /dev/null -w '%{http_code}' "$PLAIN/readyz" || true)"
fi
check "landing page / answers 200" "${CURL[@]}" -f -o /dev/null "$PLAIN/"

lint_metrics() {
  "${CURL[@]}" -f "$PLAIN/metrics" >"$SCRATCH/metrics.txt" &&
    promtool check metrics <"$SCRATCH/metrics.txt" &&
    echo "$(grep -c '^# TYPE' "$SCRATCH/metrics.txt") metric families, promtool check metrics clean"
}
check "/metrics passes promtool check metrics" lint_metrics

# The exporter configs shipped in deploy/ must load (unknown keys are fatal at start-up).
# Dummy credentials: check-config must not need real ones to parse and validate.
check_configs() {
  local f
  for f in deploy/kubernetes/config.yaml deploy/examples/kustomize-overlay/config.yaml; do
    env ALIBABA_CLOUD_ACCESS_KEY_ID=LTAIe2eDummy ALIBABA_CLOUD_ACCESS_KEY_SECRET=dummy \
      TENCENTCLOUD_SECRET_ID=AKIDe2eDummy TENCENTCLOUD_SECRET_KEY=dummy \
      "${EXPORTER[@]}" check-config --config.file "$f" || return 1
  done
  echo "deploy configs accepted by check-config"
}
check "deploy/ configs pass check-config" check_configs

# ---------------------------------------------------------------------------------------
# TLS and basic auth at the exporter
# ---------------------------------------------------------------------------------------
if ! wait_for 30 "${CURL[@]}" -f --cacert "$T/ca.crt" "$TLS/healthz"; then
  fail "TLS demo exporter serves /healthz over HTTPS"
  tail -20 "$LOGS/demo-tls.log" | sed 's/^/    | /'
else
  pass "TLS demo exporter serves /healthz over HTTPS without credentials (probes stay open)"
fi
status() { "${CURL[@]}" -o /dev/null -w '%{http_code}' "$@" || true; }
expect_status() {
  local want="$1" got
  shift
  got="$(status "$@")"
  [[ "$got" == "$want" ]] || {
    echo "HTTP $got, want $want: curl $*"
    return 1
  }
  echo "HTTP $got"
}
check "HTTPS /metrics without credentials -> 401" expect_status 401 --cacert "$T/ca.crt" "$TLS/metrics"
check "HTTPS /metrics with a wrong password -> 401" expect_status 401 --cacert "$T/ca.crt" \
  -u "prom:wrong" "$TLS/metrics"
tls_metrics() {
  "${CURL[@]}" -f --cacert "$T/ca.crt" -u "prom:$PASSWORD" "$TLS/metrics" >"$SCRATCH/metrics-tls.txt" &&
    grep -q '^kafka_consumergroup_lag{' "$SCRATCH/metrics-tls.txt" &&
    echo "HTTPS + basic auth: $(grep -c '^kafka_consumergroup_lag{' "$SCRATCH/metrics-tls.txt") lag series"
}
check "HTTPS /metrics with credentials and the CA -> metrics" tls_metrics
check "HTTPS /readyz without credentials -> 200" wait_for "$TIMEOUT" "${CURL[@]}" -f --cacert "$T/ca.crt" "$TLS/readyz"
no_plain_http() {
  if "${CURL[@]}" -f "http://127.0.0.1:$TLS_PORT/metrics" -u "prom:$PASSWORD"; then return 1; fi
  echo "plain HTTP refused"
}
check "plain HTTP to the TLS port fails" no_plain_http
untrusted() {
  if "${CURL[@]}" -f -u "prom:$PASSWORD" "$TLS/metrics"; then return 1; fi
  echo "curl refused the certificate without the CA"
}
check "HTTPS without the CA is rejected by curl (certificate really from our CA)" untrusted

# ---------------------------------------------------------------------------------------
# Prometheus
# ---------------------------------------------------------------------------------------
PROM_PORT=$(free_port)
PROM="http://127.0.0.1:$PROM_PORT"
cat >"$SCRATCH/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $ROOT/deploy/prometheus/alerts.yaml
scrape_configs:
  - job_name: kafka-cloud-lag-exporter
    static_configs:
      - targets: ["127.0.0.1:$EXP_PORT"]
  - job_name: kafka-cloud-lag-exporter-tls
    scheme: https
    tls_config:
      ca_file: $T/ca.crt
    basic_auth:
      username: prom
      password_file: $T/password
    static_configs:
      - targets: ["127.0.0.1:$TLS_PORT"]
  # Must fail: proves that Prometheus' credentials, not luck, make the job above work.
  - job_name: wrong-password
    scheme: https
    tls_config:
      ca_file: $T/ca.crt
    basic_auth:
      username: prom
      password: wrong
    static_configs:
      - targets: ["127.0.0.1:$TLS_PORT"]
EOF
check "promtool check config (scrape config + alerts.yaml)" promtool check config "$SCRATCH/prometheus.yml"
prometheus --config.file="$SCRATCH/prometheus.yml" --storage.tsdb.path="$SCRATCH/prom-data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" >"$LOGS/prometheus.log" 2>&1 &
PIDS+=($!)
wait_for 30 "${CURL[@]}" -f "$PROM/-/ready" || {
  tail -20 "$LOGS/prometheus.log" | sed 's/^/    | /'
  die "Prometheus did not become ready"
}
pass "Prometheus $("${CURL[@]}" "$PROM/api/v1/status/buildinfo" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["data"]["version"])') ready on $PROM"

E2E=("$PY" "$ROOT/.ci/prometheus_e2e_checks.py" "$PROM")
check "kafka_consumergroup_lag scraped from both clouds (plain)" \
  eventually "$TIMEOUT" "${E2E[@]}" clouds 'kafka_consumergroup_lag{job="kafka-cloud-lag-exporter"}'
check "kafka_consumergroup_lag scraped from both clouds (HTTPS + basic auth)" \
  eventually "$TIMEOUT" "${E2E[@]}" clouds 'kafka_consumergroup_lag{job="kafka-cloud-lag-exporter-tls"}'
check "target health: plain up, TLS up, wrong password down" \
  eventually "$TIMEOUT" "${E2E[@]}" targets
check "alerts.yaml loaded, every rule evaluated with health ok" \
  eventually 30 "${E2E[@]}" rules "$ROOT/deploy/prometheus/alerts.yaml"
check "threshold recording rules: one series per polled group" \
  eventually 30 "${E2E[@]}" thresholds
check "no exporter-health alerts for the healthy exporters" "${E2E[@]}" no-alerts
check "every dashboard expression runs against the live Prometheus" \
  eventually "$TIMEOUT" "${E2E[@]}" dashboard "$ROOT/deploy/grafana/dashboard.json"

# ---------------------------------------------------------------------------------------
# Shutdown
# ---------------------------------------------------------------------------------------
graceful_stop() {
  kill -TERM "$DEMO_PID"
  for _ in $(seq 100); do
    if ! kill -0 "$DEMO_PID" 2>/dev/null; then
      local rc=0
      wait "$DEMO_PID" || rc=$?
      echo "exited with status $rc"
      return "$rc"
    fi
    sleep 0.1
  done
  echo "still running 10s after SIGTERM"
  return 1
}
check "demo exporter exits cleanly within 10s of SIGTERM" graceful_stop

say ""
[[ -n "$KEEP_SCRATCH" ]] && say "logs in $LOGS"
say "$PASSED passed, $FAILED failed"
((FAILED == 0))
