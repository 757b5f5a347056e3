#!/usr/bin/env bash
# Soak run: the daemon against the simulator with injected faults and many groups, scraped
# continuously. Prints RSS over time, the share of throttled requests, and the poll-round
# duration against the rate-limit floor (requests per round ÷ allowed rate).
#
# Usage: bench/soak.sh [DURATION_SECONDS] [NGROUPS]      (defaults: 600 s, 1000 groups)
# Env:   BIN (default target/release/kafka-cloud-lag-exporter, built if missing),
#        FAULTS (default 0.3), POLL_INTERVAL (default 15s), SAMPLE_EVERY (default 30 s).
# Not part of the test suite: it runs in real time.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-600}
NGROUPS=${2:-1000}
FAULTS=${FAULTS:-0.3}
POLL_INTERVAL=${POLL_INTERVAL:-15s}
SAMPLE_EVERY=${SAMPLE_EVERY:-30}
BIN=${BIN:-target/release/kafka-cloud-lag-exporter}
[ -x "$BIN" ] || cargo build --release --locked
DIR=$(mktemp -d /tmp/kcle-soak.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

per_cloud=$((NGROUPS / 2))
"$BIN" simulator --write-config "$DIR/sim" --groups "$per_cloud" --topics 2 --partitions 4 \
  --faults "$FAULTS" --poll-interval "$POLL_INTERVAL" >"$DIR/sim.out" 2>"$DIR/sim.err" &
SIM=$!; PIDS+=("$SIM")
until grep -q '^ready$' "$DIR/sim.out" 2>/dev/null; do sleep 0.2; done
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" --config.file "$DIR/sim/config.yaml" --web.listen-address "127.0.0.1:$PORT" --log.level warn \
  2>"$DIR/daemon.log" &
DAEMON=$!; PIDS+=("$DAEMON")
URL="http://127.0.0.1:$PORT/metrics"
until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; do sleep 0.2; done

# Scrape continuously, as a busy Prometheus (and a dashboard) would.
: >"$DIR/scrape-errors"
(
  ok=0; failed=0
  while true; do
    if curl -sf --compressed -o /dev/null "$URL"; then ok=$((ok + 1)); else rc=$?; failed=$((failed + 1)); echo "$rc" >>"$DIR/scrape-errors"; fi
    echo "$ok $failed" >"$DIR/scrapes"
  done
) &
SCRAPER=$!; PIDS+=("$SCRAPER")

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$DAEMON/status"; }
metric_sum() { # name [label filter regex]
  curl -s "$URL" | awk -v n="$1" -v f="${2:-}" '$1 ~ "^"n"({|$)" && $0 ~ f {s += $NF} END {printf "%.0f", s}'
}
metric() { curl -s "$URL" | awk -v n="$1" '$1 == n {print $NF}'; }

echo "soak: ${NGROUPS} groups ($per_cloud per cloud, 2 topics × 4 partitions each), faults ${FAULTS}, poll_interval ${POLL_INTERVAL}, ${DURATION}s"
printf '%8s %10s %9s %10s %10s %9s %9s %9s %9s\n' elapsed rss_mib requests throttled round_s groups_up scrapes ali_rate tc_rate
start=$(date +%s)
RSS_START=""
while true; do
  now=$(date +%s); elapsed=$((now - start))
  rss=$(rss_kb)
  [ -n "$RSS_START" ] || RSS_START=$rss
  req=$(metric_sum kafka_cloud_lag_exporter_api_requests_total)
  thr=$(metric_sum kafka_cloud_lag_exporter_api_errors_total 'kind="throttled"')
  round=$(metric kafka_cloud_lag_exporter_poll_round_duration_seconds)
  up=$(metric_sum kafka_cloud_lag_exporter_group_up)
  ali=$(metric_sum kafka_cloud_lag_exporter_api_rate_limit 'action="GetConsumerProgress"')
  tc=$(metric_sum kafka_cloud_lag_exporter_api_rate_limit 'action="DescribeGroupOffsets"')
  printf '%8s %10.1f %9s %10s %10.1f %9s %9s %9s %9s\n' "${elapsed}s" "$(echo "$rss/1024" | bc -l)" "$req" "$thr" "${round:-0}" "$up" "$(cut -d' ' -f1 "$DIR/scrapes" 2>/dev/null || echo 0)" "$ali" "$tc"
  [ "$elapsed" -ge "$DURATION" ] && break
  sleep "$SAMPLE_EVERY"
done
RSS_END=$(rss_kb)
METRICS=$(curl -s "$URL")
kill "$SCRAPER"; wait "$SCRAPER" 2>/dev/null || true
cp "$DIR/scrapes" "$DIR/scrapes.final"
kill -TERM "$DAEMON"; wait "$DAEMON"; DAEMON_RC=$?
kill -TERM "$SIM"; wait "$SIM" || true

echo "$METRICS" >"$DIR/last-metrics.prom"
python3 - "$DIR" "$RSS_START" "$RSS_END" "$DAEMON_RC" "$NGROUPS" "$POLL_INTERVAL" <<'PY'
import re, sys
d, rss0, rss1, rc, groups, interval = sys.argv[1:7]
metrics = open(f"{d}/last-metrics.prom").read()
round_s = float(re.search(r"^kafka_cloud_lag_exporter_poll_round_duration_seconds (\S+)$", metrics, re.M)[1])
answered = {}
for line in open(f"{d}/sim.out"):
    m = re.match(r"answered cloud=(\S+) action=(\S+) outcome=(\S+) count=(\d+)", line)
    if m:
        answered[(m[1], m[2], m[3])] = int(m[4])
config = open(f"{d}/sim/config.yaml").read()
rates = {a: float(r) for a, r in re.findall(r"^\s+(GetConsumerProgress|DescribeGroupOffsets): ([0-9.]+)$", config, re.M)}
scrapes = open(f"{d}/scrapes.final").read().split()
print()
print(f"RSS: start {int(rss0)/1024:.1f} MiB, end {int(rss1)/1024:.1f} MiB")
print(f"scrapes: {scrapes[0]} ok, {scrapes[1]} failed; daemon exit status on SIGTERM: {rc}")
total = sum(answered.values())
limit = sum(n for (c, a, o), n in answered.items() if o in ("Throttling.User", "RequestLimitExceeded"))
injected = sum(n for (c, a, o), n in answered.items() if o == "fault:throttle")
faults = sum(n for (c, a, o), n in answered.items() if o.startswith("fault:"))
print(f"requests answered by the simulator: {total}; injected faults: {faults} ({faults/total:.1%})")
print(f"throttled by the simulated rate limit: {limit} ({limit/total:.2%}); injected throttling faults: {injected}")
per_cloud = int(groups) // 2
floors = {a: per_cloud / r for a, r in rates.items()}
floor = max(floors.values())
polls = {a: answered.get((c, a, "ok"), 0) for c, a in [("alibaba", "GetConsumerProgress"), ("tencent", "DescribeGroupOffsets")]}
print("rate-limit floor per round (groups ÷ allowed rate): " + ", ".join(f"{a} {f:.1f} s" for a, f in floors.items()))
print(f"poll_interval {interval}; last round took {round_s:.1f} s = {round_s/floor:.2f} x the floor of the slowest account ({floor:.1f} s)")
PY
echo "logs and data: $DIR"
