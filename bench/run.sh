#!/usr/bin/env bash
# The scale benchmark: the exporter against the simulator's fixed 100,000-partition
# scenario (`simulator --scenario bench-100k`: 2,000 groups, half on each cloud, names of
# 20-40 characters, 30 ms API latency). Builds in release mode, then bench/run.py starts
# the simulator and the exporter, waits for the first full round and measures: /metrics
# time against the floor (the same bytes sent from a prebuilt buffer by the same server),
# size, RSS after the round and at peak under 10 and 50 concurrent scrapes, the first
# round against the rate-limit floor, CPU per round and per scrape, and time to ready.
# Prints a table and writes it as JSON to bench/results/<date>-<host>.json.
#
# Usage: bench/run.sh [--scrapes N] [--steady-minutes M] [--out DIR] [--label L]
#        (about two minutes plus M; see bench/run.py --help)
# Needs: cargo, python3 (standard library only), curl, Linux /proc. Installs nothing.
# Env:   BIN (default target/release/kafka-cloud-lag-exporter, built by this script).
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in python3 curl; do
  command -v "$tool" >/dev/null || { echo "bench/run.sh: $tool is required (apt-get install $tool)" >&2; exit 2; }
done
[ -r /proc/self/status ] || { echo "bench/run.sh: needs Linux /proc to read RSS and CPU" >&2; exit 2; }
if [ -z "${BIN:-}" ]; then
  cargo build --release --locked --bin kafka-cloud-lag-exporter
  BIN=target/release/kafka-cloud-lag-exporter
fi
exec python3 bench/run.py --bin "$BIN" "$@"
