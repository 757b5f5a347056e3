#!/usr/bin/env python3
"""The scale benchmark behind bench/run.sh (Python standard library, curl and /proc only).

Starts `simulator --scenario bench-100k` and the exporter against it, waits for the first
full poll round, then measures in this order (so that one measurement does not inflate
the next one's memory):

 1. time to listen (/healthz) and to ready (/readyz: the first round is complete), RSS and
    CPU seconds at ready, the first round's duration (the exporter's
    kafka_cloud_lag_exporter_poll_round_duration_seconds) against the rate-limit floor:
    for each account and action, requests sent in the round ÷ the configured budget;
 1b. with --steady-minutes M, M more minutes of rounds without scrapes, RSS every 30 s
    (the time-lag histories fill up over the first 12 polls);
 2. --scrapes sequential scrapes of /metrics, plain and gzip (curl, one connection each):
    median and p99 time, size, and the exporter's CPU seconds per scrape (its CPU during
    the scrapes less the polling CPU measured in step 4);
 3. peak RSS during 10 and 50 concurrent scrapes (VmHWM, reset through
    /proc/PID/clear_refs before each batch, and VmRSS sampled every 5 ms);
 4. CPU seconds of one steady-state round: the exporter's CPU over one poll interval
    without scrapes;
 5. the floor: POST to the bench-only endpoint (--web.bench-floor-path) captures the
    exposition, then --scrapes GETs of it serve those bytes from a prebuilt buffer
    through the same server, plain and gzip. scrape ÷ floor is the headline figure.

Prints a table and writes the same as JSON to OUT/<date>-<host>.json.
"""

import argparse
import datetime
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

FLOOR_PATH = "/-/bench/floor"
MIB = 1024 * 1024
TICK = os.sysconf("SC_CLK_TCK")
ONE_GBIT = 1e9 / 8  # bytes per second


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/{pid}/status")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat; fields[0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / TICK


def reset_peak(pid):
    """Resets VmHWM to the current RSS (Linux >= 4.0); False when not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def get(url, headers=None, method="GET", timeout=60):
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return None, b""


def curl_args(url, gzip):
    # Without --compressed curl keeps the gzip bytes as sent, so only the server's work is
    # timed, not the client's decompression.
    args = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_total} %{size_download}\n"]
    if gzip:
        args += ["-H", "Accept-Encoding: gzip"]
    return args + [url]


def parse_curl(out):
    code, seconds, size = out.split()
    if code != "200":
        raise RuntimeError(f"scrape answered HTTP {code}")
    return float(seconds), int(size)


def scrape(url, gzip):
    out = subprocess.run(curl_args(url, gzip), check=True, capture_output=True, text=True).stdout
    return parse_curl(out)


def timed_series(url, gzip, n):
    times, sizes = [], []
    for _ in range(n):
        t, size = scrape(url, gzip)
        times.append(t)
        sizes.append(size)
    return times, sizes


def percentile(values, p):
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))
    return s[k]


def summary(times, sizes):
    return {
        "scrapes": len(times),
        "median_s": statistics.median(times),
        "p99_s": percentile(times, 99),
        "min_s": min(times),
        "max_s": max(times),
        "bytes": int(statistics.median(sizes)),
    }


class Sampler(threading.Thread):
    """Samples VmRSS every 5 ms until stopped; keeps the largest value."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak_kib, self.stop = pid, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.peak_kib = max(self.peak_kib, status_kib(self.pid, "VmRSS"))
            except (OSError, RuntimeError):
                return
            time.sleep(0.005)


def concurrent_peak(pid, url, n, gzip):
    exact = reset_peak(pid)
    sampler = Sampler(pid)
    sampler.start()
    start = time.monotonic()
    procs = [subprocess.Popen(curl_args(url, gzip), stdout=subprocess.PIPE, text=True) for _ in range(n)]
    outs = [p.communicate()[0] for p in procs]
    wall = time.monotonic() - start
    sampler.stop.set()
    sampler.join()
    for o in outs:
        parse_curl(o)
    peak = max(sampler.peak_kib, status_kib(pid, "VmHWM") if exact else 0)
    return {
        "concurrent": n,
        "gzip": gzip,
        "peak_rss_mib": peak / 1024,
        "peak_from": "VmHWM" if exact else "VmRSS sampled every 5 ms",
        "wall_s": wall,
        "rss_after_mib": status_kib(pid, "VmRSS") / 1024,
    }


def metric_values(text, name):
    """(labels dict, value) of every sample of `name`."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^" + re.escape(name) + r"(?:\{(.*)\})? (\S+)$", line)
        if m:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1) or ""))
            out.append((labels, float(m.group(2))))
    return out


def configured_rates(config_path):
    """{(cloud, action): requests per second} from the generated configuration."""
    rates, cloud, in_limits = {}, None, False
    for line in open(config_path):
        m = re.match(r"^    cloud: (\S+)$", line)
        if m:
            cloud = m.group(1)
        if re.match(r"^    api_rate_limits:$", line):
            in_limits = True
            continue
        m = re.match(r"^      (\w+): ([0-9.]+)$", line)
        if in_limits and m:
            rates[(cloud, m.group(1))] = float(m.group(2))
        elif not line.startswith("      "):
            in_limits = False
    return rates


def machine():
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = status_kib_meminfo()
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    return {
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_mib": mem // 1024 if mem else None,
        "kernel": platform.release(),
        "load_average_at_start": os.getloadavg(),
        "git_revision": (rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")) or None,
    }


def status_kib_meminfo():
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def wait_for(predicate, timeout, what, proc):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with status {proc.returncode}")
        if predicate():
            return time.monotonic()
        time.sleep(0.01)
    raise RuntimeError(f"{what}: not within {timeout} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="target/release/kafka-cloud-lag-exporter")
    ap.add_argument("--scrapes", type=int, default=50, help="sequential scrapes per variant (default 50)")
    ap.add_argument("--out", default="bench/results", help="directory of the JSON result")
    ap.add_argument("--steady-minutes", type=float, default=0,
                    help="after the first round, let the exporter poll this long without scrapes "
                         "and record RSS every 30 s (time-lag histories fill in about 6 minutes)")
    ap.add_argument("--label", default="", help="appended to the result's file name, e.g. baseline")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = ap.parse_args()
    if args.scrapes < 1:
        ap.error("--scrapes must be at least 1")

    started_at = datetime.datetime.now(datetime.timezone.utc)
    host = machine()
    work = tempfile.mkdtemp(prefix="kcle-bench.")
    procs = []

    def stop(p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                return p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                return p.wait()
        return p.returncode

    try:
        print(f"bench: starting the simulator (scenario bench-100k); logs in {work}", file=sys.stderr)
        sim_out = open(f"{work}/sim.out", "w")
        sim = subprocess.Popen(
            [args.bin, "simulator", "--scenario", "bench-100k", "--write-config", f"{work}/sim"],
            stdout=sim_out, stderr=open(f"{work}/sim.err", "w"))
        procs.append(sim)
        wait_for(lambda: "ready\n" in open(f"{work}/sim.out").read(), 300, "simulator ready", sim)
        sim_info = dict(re.findall(r"\b(groups|partitions)=(\d+)", open(f"{work}/sim.out").read()))
        config = f"{work}/sim/config.yaml"
        poll_interval = float(re.search(r"^poll_interval: (\d+)s$", open(config).read(), re.M).group(1))

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        print("bench: starting the exporter and waiting for its first round", file=sys.stderr)
        t0 = time.monotonic()
        exporter = subprocess.Popen(
            [args.bin, "--config.file", config, "--web.listen-address", f"127.0.0.1:{port}",
             "--log.level", "warn", "--web.bench-floor-path", FLOOR_PATH],
            stdout=open(f"{work}/exporter.out", "w"), stderr=open(f"{work}/exporter.err", "w"))
        procs.append(exporter)
        pid = exporter.pid
        t_listen = wait_for(lambda: get(base + "/healthz")[0] == 200, 60, "exporter listening", exporter)
        t_ready = wait_for(lambda: get(base + "/readyz")[0] == 200, 600, "first round", exporter)
        rss_ready = status_kib(pid, "VmRSS") / 1024
        cpu_ready = cpu_seconds(pid)

        # One scrape for the exporter's own figures (after the RSS reading above).
        status, body = get(base + "/metrics")
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
        text = body.decode()
        series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
        round_s = metric_values(text, "kafka_cloud_lag_exporter_poll_round_duration_seconds")[0][1]
        rates = configured_rates(config)
        requests = {(l["cloud"], l["action"]): v
                    for l, v in metric_values(text, "kafka_cloud_lag_exporter_api_requests_total") if v > 0}
        throttled = sum(v for l, v in metric_values(text, "kafka_cloud_lag_exporter_api_errors_total")
                        if l.get("kind") == "throttled")
        per_action = {f"{c}/{a}": {"requests": n, "budget_per_s": rates[(c, a)], "seconds": n / rates[(c, a)]}
                      for (c, a), n in sorted(requests.items()) if (c, a) in rates}
        floor_round = max(v["seconds"] for v in per_action.values())
        rss_after_scrape = status_kib(pid, "VmRSS") / 1024

        # After the first round's figures were read (the counters then cover it alone).
        steady = []
        if args.steady_minutes > 0:
            print(f"bench: {args.steady_minutes:g} minutes of rounds without scrapes", file=sys.stderr)
            end = time.monotonic() + args.steady_minutes * 60
            while time.monotonic() < end:
                time.sleep(min(30, max(0.0, end - time.monotonic())))
                steady.append({"after_ready_s": round(time.monotonic() - t_ready, 1),
                               "rss_mib": status_kib(pid, "VmRSS") / 1024})

        # The series now (more than at ready: time lag needs a second poll on Tencent).
        status, body = get(base + "/metrics")
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
        series_scraped = sum(1 for line in body.split(b"\n") if line and not line.startswith(b"#"))
        del body

        # Sequential scrapes, with the exporter's CPU over each batch.
        print(f"bench: {args.scrapes} sequential scrapes, plain and gzip", file=sys.stderr)
        batches = {}
        for name, gzip in [("plain", False), ("gzip", True)]:
            c0, w0 = cpu_seconds(pid), time.monotonic()
            times, sizes = timed_series(base + "/metrics", gzip, args.scrapes)
            batches[name] = (summary(times, sizes), cpu_seconds(pid) - c0, time.monotonic() - w0)
        rss_after_sequential = status_kib(pid, "VmRSS") / 1024

        print("bench: 10 and 50 concurrent scrapes", file=sys.stderr)
        concurrency = [concurrent_peak(pid, base + "/metrics", n, gzip)
                       for gzip in (False, True) for n in (10, 50)]

        print(f"bench: one steady-state round without scrapes ({poll_interval:.0f} s)", file=sys.stderr)
        c0, w0 = cpu_seconds(pid), time.monotonic()
        time.sleep(poll_interval)
        idle_cpu, idle_wall = cpu_seconds(pid) - c0, time.monotonic() - w0
        idle_rate = idle_cpu / idle_wall

        print("bench: the floor (the captured bytes from a prebuilt buffer)", file=sys.stderr)
        status, msg = get(base + FLOOR_PATH, method="POST")
        if status != 200:
            raise RuntimeError(f"capturing the floor answered {status}: {msg!r}")
        floors = {}
        for name, gzip in [("plain", False), ("gzip", True)]:
            times, sizes = timed_series(base + FLOOR_PATH, gzip, args.scrapes)
            floors[name] = summary(times, sizes)
        rss_end = status_kib(pid, "VmRSS") / 1024

        exporter_rc = stop(exporter)
        stop(sim)
        answered = {}
        for m in re.finditer(r"answered cloud=(\S+) action=(\S+) outcome=(\S+) count=(\d+)",
                             open(f"{work}/sim.out").read()):
            answered[f"{m[1]}/{m[2]}/{m[3]}"] = int(m[4])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    scrape_result = {}
    for name in ("plain", "gzip"):
        s, cpu, wall = batches[name]
        f = floors[name]
        scrape_result[name] = {
            **s,
            "cpu_s_per_scrape": max(0.0, cpu - idle_rate * wall) / s["scrapes"],
            "floor": f,
            "ratio_to_floor": s["median_s"] / f["median_s"],
            "above_floor_per_series_ns": (s["median_s"] - f["median_s"]) / series_scraped * 1e9,
            "at_1gbit_s": s["median_s"] + s["bytes"] / ONE_GBIT,
        }
    plain, gz = scrape_result["plain"], scrape_result["gzip"]
    peak50 = max(c["peak_rss_mib"] for c in concurrency if c["concurrent"] == 50)
    result = {
        "benchmark": "bench/run.sh",
        "started_at": started_at.isoformat(timespec="seconds"),
        "machine": {**host, "load_average_at_end": os.getloadavg()},
        "scenario": {"name": "bench-100k", "series_at_ready": series, "series": series_scraped, **{k: int(v) for k, v in sim_info.items()},
                     "poll_interval_s": poll_interval, "latency_ms": 30},
        "startup": {"listening_s": t_listen - t0, "ready_s": t_ready - t0},
        "first_round": {
            "duration_s": round_s,
            "rate_limit_floor_s": floor_round,
            "ratio_to_floor": round_s / floor_round,
            "by_action": per_action,
            "throttled_requests": throttled,
            "cpu_s_to_ready": cpu_ready,
        },
        "steady_round": {"cpu_s": idle_cpu * poll_interval / idle_wall, "measured_over_s": idle_wall},
        "rss_mib": {
            "after_first_round": rss_ready,
            "steady_without_scrapes": steady,
            "after_first_scrape": rss_after_scrape,
            "after_sequential_scrapes": rss_after_sequential,
            "at_end": rss_end,
        },
        "scrape": scrape_result,
        "concurrent": concurrency,
        "simulator_answers": answered,
        "exporter_exit_status": exporter_rc,
        "targets": {
            "scrape_within_2x_floor": plain["ratio_to_floor"] <= 2.0,
            "rss_after_round_within_60_mib": rss_ready <= 60,
            "peak_rss_50_concurrent_within_120_mib": peak50 <= 120,
            "first_round_within_1_05x_floor": round_s <= 1.05 * floor_round,
            "gzip_no_slower_than_plain_at_1gbit_s": gz["at_1gbit_s"] <= plain["at_1gbit_s"],
        },
    }
    if not args.keep:
        subprocess.run(["rm", "-rf", work])

    os.makedirs(args.out, exist_ok=True)
    label = f"-{args.label}" if args.label else ""
    path = os.path.join(args.out, f"{started_at:%Y-%m-%d}-{host['host']}{label}.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print_table(result)
    print(f"\nwritten to {path}")


def print_table(r):
    s, m = r["scenario"], r["machine"]
    p, g = r["scrape"]["plain"], r["scrape"]["gzip"]
    fr = r["first_round"]
    yes = lambda ok: "met" if ok else "MISSED"
    t = r["targets"]
    print(f"machine:  {m['host']}, {m['cpus']} CPUs ({m['cpu_model']}), load {m['load_average_at_start'][0]:.2f} at start, revision {m['git_revision']}")
    print(f"scenario: {s.get('groups')} groups, {s.get('partitions')} partitions, {s['series']} series, 30 ms API latency\n")
    rows = [
        ("/metrics plain, median / p99", f"{p['median_s']*1e3:.1f} / {p['p99_s']*1e3:.1f} ms", f"{p['bytes']/MIB:.1f} MiB"),
        ("/metrics gzip, median / p99", f"{g['median_s']*1e3:.1f} / {g['p99_s']*1e3:.1f} ms", f"{g['bytes']/MIB:.1f} MiB"),
        ("floor plain, median / p99", f"{p['floor']['median_s']*1e3:.1f} / {p['floor']['p99_s']*1e3:.1f} ms", "same bytes, prebuilt buffer"),
        ("floor gzip, median / p99", f"{g['floor']['median_s']*1e3:.1f} / {g['floor']['p99_s']*1e3:.1f} ms", ""),
        ("scrape ÷ floor (plain / gzip)", f"{p['ratio_to_floor']:.1f}× / {g['ratio_to_floor']:.1f}×", f"target ≤ 2× plain: {yes(t['scrape_within_2x_floor'])}"),
        ("above the floor per series (plain / gzip)", f"{p['above_floor_per_series_ns']:.0f} / {g['above_floor_per_series_ns']:.0f} ns", "render (and gzip) time per series"),
        ("at 1 Gbit/s (plain / gzip)", f"{p['at_1gbit_s']*1e3:.0f} / {g['at_1gbit_s']*1e3:.0f} ms", f"gzip no slower: {yes(t['gzip_no_slower_than_plain_at_1gbit_s'])}"),
        ("CPU per scrape (plain / gzip)", f"{p['cpu_s_per_scrape']*1e3:.0f} / {g['cpu_s_per_scrape']*1e3:.0f} ms", ""),
        ("RSS after the first round", f"{r['rss_mib']['after_first_round']:.1f} MiB", f"target ≤ 60: {yes(t['rss_after_round_within_60_mib'])}"),
    ]
    if r["rss_mib"]["steady_without_scrapes"]:
        last = r["rss_mib"]["steady_without_scrapes"][-1]
        rows.append((f"RSS after {last['after_ready_s']:.0f} s more of rounds", f"{last['rss_mib']:.1f} MiB", "no scrapes"))
    for c in r["concurrent"]:
        rows.append((f"peak RSS, {c['concurrent']} concurrent {'gzip' if c['gzip'] else 'plain'}",
                     f"{c['peak_rss_mib']:.0f} MiB", f"all done in {c['wall_s']:.1f} s"))
    rows += [
        ("", "", f"target ≤ 120 at 50: {yes(t['peak_rss_50_concurrent_within_120_mib'])}"),
        ("first round / rate-limit floor", f"{fr['duration_s']:.2f} s / {fr['rate_limit_floor_s']:.2f} s = {fr['ratio_to_floor']:.3f}",
         f"target ≤ 1.05: {yes(t['first_round_within_1_05x_floor'])}; {fr['throttled_requests']:.0f} throttled"),
        ("CPU: to ready / per steady round", f"{fr['cpu_s_to_ready']:.2f} s / {r['steady_round']['cpu_s']:.2f} s", ""),
        ("time to listen / to ready", f"{r['startup']['listening_s']:.2f} s / {r['startup']['ready_s']:.2f} s", ""),
    ]
    w0 = max(len(a) for a, _, _ in rows)
    w1 = max(len(b) for _, b, _ in rows)
    for a, b, c in rows:
        print(f"{a:<{w0}}  {b:<{w1}}  {c}".rstrip())


if __name__ == "__main__":
    main()
