#!/usr/bin/env python3
"""A stand-in for `kafka-cloud-lag-exporter demo`, to test .ci/prometheus-e2e.sh itself.

    BIN=.ci/e2e-fake-exporter.py .ci/prometheus-e2e.sh

It is NOT the exporter and proves nothing about it: it serves a synthetic exposition of the
metrics in docs/metrics.md (offsets moving with time) with the exporter's endpoints and
flags: /metrics, /healthz, /readyz (ready after 2s), /, `--web.listen-address`,
`--web.config.file` (exporter-toolkit tls_server_config + basic_auth_users, bcrypt), and
exits 0 on SIGTERM. Needs PyYAML and bcrypt (the e2e script runs it with its venv).
"""

import argparse
import base64
import http.server
import signal
import ssl
import sys
import threading
import time

import bcrypt
import yaml

START = time.time()
GROUPS = [
    ("alibaba", "alikafka_post-cn-sim1", "cn-hangzhou", "sim-ali", "orders-consumer", ["orders", "payments"]),
    ("tencent", "ckafka-sim1", "ap-guangzhou", "sim-tencent", "billing-consumer", ["invoices"]),
]


def exposition():
    now = time.time()
    up = now - START
    lines = [
        "# HELP kafka_cloud_lag_exporter_build_info Build information.",
        "# TYPE kafka_cloud_lag_exporter_build_info gauge",
        'kafka_cloud_lag_exporter_build_info{version="0.0.0-fake",revision="fake"} 1',
        "# HELP kafka_cloud_lag_exporter_poll_interval_seconds The configured poll_interval.",
        "# TYPE kafka_cloud_lag_exporter_poll_interval_seconds gauge",
        "kafka_cloud_lag_exporter_poll_interval_seconds 1",
    ]
    fam = {}

    def add(name, kind, labels, value):
        fam.setdefault(name, (kind, []))[1].append((labels, value))

    for cloud, inst, region, account, group, topics in GROUPS:
        add("kafka_cloud_lag_exporter_instance_info", "gauge",
            dict(cloud=cloud, instance_id=inst, account=account, region=region), 1)
        g = dict(cloud=cloud, instance_id=inst, consumergroup=group)
        add("kafka_cloud_lag_exporter_group_up", "gauge", g, 1)
        add("kafka_cloud_lag_exporter_last_success_timestamp_seconds", "gauge", g, round(now, 3))
        for topic in topics:
            total = 0
            for partition in range(2):
                p = dict(g, topic=topic, partition=str(partition))
                end = int(1000 + 50 * up)
                committed = int(900 + 45 * up)
                lag = end - committed
                total += lag
                add("kafka_topic_partition_current_offset", "gauge",
                    dict(cloud=cloud, instance_id=inst, topic=topic, partition=str(partition)), end)
                add("kafka_consumergroup_current_offset", "gauge", p, committed)
                add("kafka_consumergroup_lag", "gauge", p, lag)
                add("kafka_consumergroup_lag_seconds", "gauge", p, round(lag / 50, 3))
                if cloud == "alibaba":
                    add("kafka_consumergroup_last_consumed_timestamp_seconds", "gauge", p, round(now - 2, 3))
            add("kafka_consumergroup_topic_lag", "gauge", dict(g, topic=topic), total)
    for cloud, action in (("alibaba", "GetConsumerProgress"), ("tencent", "DescribeGroupOffsets")):
        add("kafka_cloud_lag_exporter_api_requests_total", "counter",
            dict(cloud=cloud, action=action), int(up * 2))
    for name, (kind, samples) in fam.items():
        lines.append(f"# HELP {name} Fake {name}.")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            text = ",".join(f'{k}="{v}"' for k, v in labels.items())
            lines.append(f"{name}{{{text}}} {value}")
    lines.append("# HELP kafka_cloud_lag_exporter_poll_duration_seconds Time to poll one group.")
    lines.append("# TYPE kafka_cloud_lag_exporter_poll_duration_seconds histogram")
    for cloud in ("alibaba", "tencent"):
        n = int(up) + 1
        for le in ("0.1", "0.5", "1", "+Inf"):
            count = n if le != "0.1" else n // 2
            lines.append(f'kafka_cloud_lag_exporter_poll_duration_seconds_bucket{{cloud="{cloud}",le="{le}"}} {count}')
        lines.append(f'kafka_cloud_lag_exporter_poll_duration_seconds_sum{{cloud="{cloud}"}} {n * 0.2:.3f}')
        lines.append(f'kafka_cloud_lag_exporter_poll_duration_seconds_count{{cloud="{cloud}"}} {n}')
    return ("\n".join(lines) + "\n").encode()


def handler(users):
    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def send(self, code, body, ctype="text/plain; charset=utf-8", extra=()):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def authorized(self):
            if not users:
                return True
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Basic "):
                return False
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            return user in users and bcrypt.checkpw(password.encode(), users[user].encode())

        def do_GET(self):  # noqa: N802
            if self.path == "/healthz":
                return self.send(200, b"ok\n")
            if self.path == "/readyz":
                ready = time.time() - START > 2
                return self.send(200 if ready else 503, b"ready\n" if ready else b"not ready\n")
            if not self.authorized():
                return self.send(401, b"Unauthorized\n", extra=[("WWW-Authenticate", 'Basic realm="fake"')])
            if self.path == "/metrics":
                return self.send(200, exposition(), "text/plain; version=0.0.4; charset=utf-8")
            if self.path == "/":
                return self.send(200, b"<html><body><a href='/metrics'>Metrics</a></body></html>", "text/html")
            return self.send(404, b"not found\n")

    return H


def main():
    if sys.argv[1:] == ["--version"]:
        print("kafka-cloud-lag-exporter 0.0.0-fake (e2e stand-in)")
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["demo"])
    parser.add_argument("--web.listen-address", dest="listen", required=True)
    parser.add_argument("--web.config.file", dest="web_config")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    users, tls = {}, None
    if args.web_config:
        cfg = yaml.safe_load(open(args.web_config)) or {}
        users = cfg.get("basic_auth_users") or {}
        tls = cfg.get("tls_server_config")
    server = http.server.ThreadingHTTPServer((host, int(port)), handler(users))
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls["cert_file"], tls["key_file"])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
