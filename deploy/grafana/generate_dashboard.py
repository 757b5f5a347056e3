#!/usr/bin/env python3
"""Generates dashboard.json, the Grafana dashboard of kafka-cloud-lag-exporter.

Edit this file, not the JSON, then run
    python3 deploy/grafana/generate_dashboard.py          # rewrite dashboard.json
    python3 deploy/grafana/generate_dashboard.py --check  # fail if dashboard.json is stale
Plain Python (no Grafana SDK), so the output only changes when this file does. Every query
uses only metrics of docs/metrics.md; .ci/check_promql.py and .ci/check_dashboard.py
check that, the PromQL syntax and the variables.
"""

import json
import pathlib
import sys

OUT = pathlib.Path(__file__).with_name("dashboard.json")
DS = {"type": "prometheus", "uid": "${datasource}"}

# Label filters of the template variables, per metric shape.
GROUP = 'cloud=~"$cloud", instance_id=~"$instance_id", consumergroup=~"$consumergroup"'
GROUP_TOPIC = GROUP + ', topic=~"$topic"'
TOPIC = 'cloud=~"$cloud", instance_id=~"$instance_id", topic=~"$topic"'
CLOUD = 'cloud=~"$cloud"'

_ids = iter(range(1, 1000))


def target(expr, legend="__auto", ref="A", instant=False, fmt=None):
    t = {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref}
    if instant:
        t.update(instant=True, range=False)
    else:
        t.update(range=True)
    if fmt:
        t["format"] = fmt
    return t


def panel(kind, title, desc, grid, targets, unit=None, **extra):
    field_defaults = {"unit": unit} if unit else {}
    field_defaults.update(extra.pop("defaults", {}))
    p = {
        "id": next(_ids),
        "type": kind,
        "title": title,
        "description": desc,
        "datasource": DS,
        "gridPos": dict(zip(("x", "y", "w", "h"), grid)),
        "targets": [target(*t) if isinstance(t, tuple) else t for t in targets],
        "fieldConfig": {"defaults": field_defaults, "overrides": extra.pop("overrides", [])},
        "options": extra.pop("options", {}),
    }
    p.update(extra)
    return p


def stat(title, desc, grid, expr, unit=None, thresholds=None, **extra):
    defaults = {}
    if thresholds:
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [{"color": c, "value": v} for v, c in thresholds],
        }
        defaults["color"] = {"mode": "thresholds"}
    return panel(
        "stat", title, desc, grid, [target(expr, "", instant=True)], unit,
        defaults=defaults,
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value", "graphMode": "none", "textMode": "auto",
        },
        **extra,
    )


def timeseries(title, desc, grid, targets, unit=None, stack=False):
    return panel(
        "timeseries", title, desc, grid, targets, unit,
        defaults={"custom": {
            "drawStyle": "line", "lineWidth": 1, "fillOpacity": 10 if stack else 0,
            "showPoints": "never", "spanNulls": False,
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        }},
        options={
            "legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )


def row(title, y):
    return {"id": next(_ids), "type": "row", "title": title, "collapsed": False,
            "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []}


def query_var(name, label, query, desc):
    return {
        "name": name, "label": label, "description": desc, "type": "query",
        "datasource": DS, "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "definition": query, "refresh": 2, "sort": 1,
        "multi": True, "includeAll": True, "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [], "regex": "", "hide": 0,
    }


def status_value(metric, label, values, selector):
    """One series per group whose value encodes which `label` value is 1 (0, 1, 2, ...):
    what a state timeline with value mappings shows."""
    parts = [f'({metric}{{{selector}, {label}="{v}"}} == 1) * {i}' for i, v in enumerate(values)]
    return f"max by (cloud, instance_id, consumergroup) ({' or '.join(parts)})"


def mapped_timeline(title, desc, grid, expr, values, colors):
    mappings = {str(i): {"text": v, "color": c, "index": i} for i, (v, c) in enumerate(zip(values, colors))}
    return panel("state-timeline", title, desc, grid,
                 [(expr, "{{consumergroup}} ({{cloud}} {{instance_id}})")],
                 defaults={"mappings": [{"type": "value", "options": mappings}], "color": {"mode": "fixed"}},
                 options={"showValue": "never", "mergeValues": True, "legend": {"showLegend": False}})


VERDICTS = ["OK", "WARN", "STALL", "STOP", "REWIND", "ERR"]
VERDICT_COLORS = ["green", "yellow", "orange", "red", "purple", "text"]
STATES = ["Stable", "Empty", "PreparingRebalance", "CompletingRebalance", "Dead", "unknown"]
STATE_COLORS = ["green", "blue", "yellow", "yellow", "red", "text"]


def dashboard():
    panels = [row("Overview", 0)]
    panels += [
        stat("Total lag", "Messages not yet consumed, summed over the selected groups, topics and partitions.",
             (0, 1, 4, 4), f"sum(kafka_consumergroup_lag{{{GROUP_TOPIC}}})", "short"),
        stat("Max time lag", "Age of the oldest unconsumed message over the selected groups (consumergroup:kafka_consumergroup_lag_seconds:max).",
             (4, 1, 4, 4), f"max(consumergroup:kafka_consumergroup_lag_seconds:max{{{GROUP}}})", "s",
             thresholds=[(None, "green"), (300, "orange"), (600, "red")]),
        stat("Groups up", "Groups whose last poll succeeded.",
             (8, 1, 4, 4), f"count(kafka_cloud_lag_exporter_group_up{{{GROUP}}} == 1) or vector(0)", "short",
             thresholds=[(None, "green")]),
        stat("Groups down", "Groups whose last poll failed (kafka_cloud_lag_exporter_group_up == 0).",
             (12, 1, 4, 4), f"count(kafka_cloud_lag_exporter_group_up{{{GROUP}}} == 0) or vector(0)", "short",
             thresholds=[(None, "green"), (1, "red")]),
        stat("Oldest successful poll", "Time since the least recently polled group was last read successfully.",
             (16, 1, 4, 4), f"time() - min(kafka_cloud_lag_exporter_last_success_timestamp_seconds{{{GROUP}}})", "s",
             thresholds=[(None, "green"), (90, "orange"), (300, "red")]),
        stat("API throttling", "Share of cloud API requests throttled over the dashboard range.",
             (20, 1, 4, 4),
             f'(sum(increase(kafka_cloud_lag_exporter_api_errors_total{{{CLOUD}, kind="throttled"}}[$__range])) or vector(0))'
             f" / sum(increase(kafka_cloud_lag_exporter_api_requests_total{{{CLOUD}}}[$__range]))",
             "percentunit", thresholds=[(None, "green"), (0.01, "orange"), (0.1, "red")]),
        stat("Groups stalled or stopped", "Groups whose verdict is STALL (members, no progress) or STOP (no members) while they have lag; KafkaConsumerGroupStalled.",
             (0, 5, 6, 4), f'count(kafka_consumergroup_status{{{GROUP}, status=~"STALL|STOP"}} == 1) or vector(0)', "short",
             thresholds=[(None, "green"), (1, "red")]),
        stat("Groups with a warning", "Groups whose verdict is WARN (lag growing while they consume) or REWIND (an offset went back).",
             (6, 5, 6, 4), f'count(kafka_consumergroup_status{{{GROUP}, status=~"WARN|REWIND"}} == 1) or vector(0)', "short",
             thresholds=[(None, "green"), (1, "orange")]),
        stat("Longest time to drain", "The selected groups' largest time to drain: at the recent consume rate, how long until the backlog is consumed.",
             (12, 5, 6, 4), f"max(consumergroup:kafka_consumergroup_time_to_drain_seconds:max{{{GROUP}}})", "s",
             thresholds=[(None, "green"), (1800, "orange"), (3600, "red")]),
        stat("Smallest retention margin", "How long until unconsumed data of the selected groups reaches its topic's retention and may be deleted.",
             (18, 5, 6, 4), f"min(consumergroup:kafka_consumergroup_retention_margin_seconds:min{{{GROUP}}})", "s",
             thresholds=[(None, "red"), (1800, "orange"), (7200, "green")]),
    ]
    y = 9
    panels.append(row("Lag", y))
    panels += [
        timeseries("Lag by consumer group", "Messages behind over all the group's topics (consumergroup:kafka_consumergroup_lag:sum).",
                   (0, y + 1, 12, 9),
                   [(f"consumergroup:kafka_consumergroup_lag:sum{{{GROUP}}}",
                     "{{consumergroup}} ({{cloud}} {{instance_id}})")], "short"),
        timeseries("Time lag by consumer group", "Age of the oldest unconsumed message, worst partition of the group (consumergroup:kafka_consumergroup_lag_seconds:max).",
                   (12, y + 1, 12, 9),
                   [(f"consumergroup:kafka_consumergroup_lag_seconds:max{{{GROUP}}}",
                     "{{consumergroup}} ({{cloud}} {{instance_id}})")], "s"),
        timeseries("Lag by topic", "Messages behind per group and topic.", (0, y + 10, 12, 9),
                   [(f"sum by (cloud, instance_id, consumergroup, topic) (kafka_consumergroup_topic_lag{{{GROUP_TOPIC}}})",
                     "{{consumergroup}} / {{topic}}")], "short"),
        timeseries("Lag by partition", "Messages behind per partition: one slow partition points at a stuck consumer or a hot key.",
                   (12, y + 10, 12, 9),
                   [(f"sum by (cloud, instance_id, consumergroup, topic, partition) (kafka_consumergroup_lag{{{GROUP_TOPIC}}})",
                     "{{consumergroup}} / {{topic}} [{{partition}}]")], "short"),
    ]
    y += 19
    panels.append(row("Consumer groups: verdict, state, members, rebalances", y))
    panels += [
        mapped_timeline("Verdict", "kafka_consumergroup_status over the last verdict.window polls: OK, WARN (lag growing while consuming), STALL (no progress, members), STOP (no progress, no members), REWIND (an offset went back), ERR (the last poll failed).",
                        (0, y + 1, 12, 8), status_value("kafka_consumergroup_status", "status", VERDICTS, GROUP),
                        VERDICTS, VERDICT_COLORS),
        mapped_timeline("Group state", "kafka_consumergroup_state: the group's Kafka state as the cloud reports it.",
                        (12, y + 1, 12, 8), status_value("kafka_consumergroup_state", "state", STATES, GROUP),
                        STATES, STATE_COLORS),
        timeseries("Members", "Consumers in the group where the cloud lists them (kafka_consumergroup_members).",
                   (0, y + 9, 8, 8),
                   [(f"max by (cloud, instance_id, consumergroup) (kafka_consumergroup_members{{{GROUP}}})",
                     "{{consumergroup}} ({{cloud}} {{instance_id}})")], "short"),
        timeseries("Rebalances per hour", "Increase of the group generation over the last hour (Alibaba RebalanceInfoList).",
                   (8, y + 9, 8, 8),
                   [(f"max by (cloud, instance_id, consumergroup) (delta(kafka_consumergroup_rebalance_generation{{{GROUP}}}[1h]))",
                     "{{consumergroup}} ({{cloud}} {{instance_id}})")], "short"),
        timeseries("Time since last rebalance", "Now minus the group's last rebalance (Alibaba RebalanceInfoList).",
                   (16, y + 9, 8, 8),
                   [(f"time() - max by (cloud, instance_id, consumergroup) (kafka_consumergroup_last_rebalance_timestamp_seconds{{{GROUP}}})",
                     "{{consumergroup}} ({{cloud}} {{instance_id}})")], "s"),
    ]
    y += 17
    panels.append(row("Time to drain and retention margin", y))
    panels += [
        timeseries("Time to drain by consumer group", "At each group's recent consume rate, how long until its current backlog is consumed (its worst partition); absent while a lagging partition makes no progress. The dashed line is the KafkaConsumerGroupDrainSlow threshold.",
                   (0, y + 1, 12, 9),
                   [(f"consumergroup:kafka_consumergroup_time_to_drain_seconds:max{{{GROUP}}}",
                     "{{consumergroup}} ({{cloud}} {{instance_id}})", "A"),
                    (f"min(kafka_cloud_lag_exporter:time_to_drain_threshold_seconds{{{GROUP}}})", "alert threshold", "B")], "s"),
        timeseries("Retention margin by consumer group", "How long until each group's oldest unconsumed message reaches its topic's retention and may be deleted; below the dashed line KafkaConsumerGroupRetentionMarginLow fires.",
                   (12, y + 1, 12, 9),
                   [(f"consumergroup:kafka_consumergroup_retention_margin_seconds:min{{{GROUP}}}",
                     "{{consumergroup}} ({{cloud}} {{instance_id}})", "A"),
                    (f"max(kafka_cloud_lag_exporter:retention_margin_threshold_seconds{{{GROUP}}})", "alert threshold", "B")], "s"),
        panel("table", "Topic retention", "How long each polled topic keeps messages (kafka_topic_retention_seconds), what the retention margin counts against.",
              (0, y + 10, 24, 6),
              [target(f"kafka_topic_retention_seconds{{{TOPIC}}}", "", "A", True, "table")], "s",
              transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True, "job": True, "instance": True}}}]),
    ]
    y += 16
    panels.append(row("Group detail (per partition of the selected groups)", y))
    panels += [
        timeseries("Time lag by partition", "kafka_consumergroup_lag_seconds: age of the oldest unconsumed message per partition.",
                   (0, y + 1, 8, 9),
                   [(f"max by (cloud, instance_id, consumergroup, topic, partition) (kafka_consumergroup_lag_seconds{{{GROUP_TOPIC}}})",
                     "{{consumergroup}} / {{topic}} [{{partition}}]")], "s"),
        timeseries("Time to drain by partition", "kafka_consumergroup_time_to_drain_seconds: lag over the partition's recent consume rate; a gap means no progress.",
                   (8, y + 1, 8, 9),
                   [(f"max by (cloud, instance_id, consumergroup, topic, partition) (kafka_consumergroup_time_to_drain_seconds{{{GROUP_TOPIC}}})",
                     "{{consumergroup}} / {{topic}} [{{partition}}]")], "s"),
        timeseries("Retention margin by partition", "kafka_consumergroup_retention_margin_seconds: time left before the partition's oldest unconsumed message may be deleted.",
                   (16, y + 1, 8, 9),
                   [(f"min by (cloud, instance_id, consumergroup, topic, partition) (kafka_consumergroup_retention_margin_seconds{{{GROUP_TOPIC}}})",
                     "{{consumergroup}} / {{topic}} [{{partition}}]")], "s"),
        timeseries("Consumption rate", "Committed offsets per second by group and topic. Offsets move once per poll_interval, so short ranges look steppy.",
                   (0, y + 10, 12, 8),
                   [(f"sum by (cloud, instance_id, consumergroup, topic) (rate(kafka_consumergroup_current_offset{{{GROUP_TOPIC}}}[$__rate_interval]))",
                     "{{consumergroup}} / {{topic}}")], "short"),
        timeseries("Production rate", "Log-end offsets per second by topic: messages produced.",
                   (12, y + 10, 12, 8),
                   [(f"sum by (cloud, instance_id, topic) (rate(kafka_topic_partition_current_offset{{{TOPIC}}}[$__rate_interval]))",
                     "{{topic}} ({{cloud}} {{instance_id}})")], "short"),
    ]
    y += 18
    panels.append(row("Exporter health", y))
    panels += [
        panel("state-timeline", "Group poll status", "kafka_cloud_lag_exporter_group_up: 1 when the group's last poll succeeded.",
              (0, y + 1, 12, 8),
              [(f"max by (cloud, instance_id, consumergroup) (kafka_cloud_lag_exporter_group_up{{{GROUP}}})",
                "{{consumergroup}} ({{cloud}} {{instance_id}})")],
              defaults={
                  "mappings": [{"type": "value", "options": {
                      "0": {"text": "down", "color": "red", "index": 0},
                      "1": {"text": "up", "color": "green", "index": 1}}}],
                  "color": {"mode": "thresholds"},
                  "thresholds": {"mode": "absolute", "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}]},
              },
              options={"showValue": "never", "mergeValues": True, "legend": {"showLegend": False}}),
        timeseries("Time since last successful poll", "Per group; the dashed line is 3 poll intervals, where KafkaCloudLagExporterStaleData fires.",
                   (12, y + 1, 12, 8),
                   [(f"time() - max by (cloud, instance_id, consumergroup) (kafka_cloud_lag_exporter_last_success_timestamp_seconds{{{GROUP}}})",
                     "{{consumergroup}} ({{cloud}} {{instance_id}})", "A"),
                    ("3 * max(kafka_cloud_lag_exporter_poll_interval_seconds)", "stale threshold", "B")], "s"),
        timeseries("API requests", "Management-API requests per second by cloud and action, retries included; retries shown separately.",
                   (0, y + 9, 8, 8),
                   [(f"sum by (cloud, action) (rate(kafka_cloud_lag_exporter_api_requests_total{{{CLOUD}}}[$__rate_interval]))",
                     "{{cloud}} {{action}}", "A"),
                    (f"sum by (cloud, action) (rate(kafka_cloud_lag_exporter_api_retries_total{{{CLOUD}}}[$__rate_interval]))",
                     "{{cloud}} {{action}} retries", "B")], "reqps"),
        timeseries("API errors by kind", "Failed requests per second by cloud and kind (timeout, connection, http, throttled, auth, bad_response, api_error, not_found).",
                   (8, y + 9, 8, 8),
                   [(f"sum by (cloud, kind) (rate(kafka_cloud_lag_exporter_api_errors_total{{{CLOUD}}}[$__rate_interval]))",
                     "{{cloud}} {{kind}}")], "reqps", stack=True),
        timeseries("API throttling ratio", "Throttled requests as a share of all requests; KafkaCloudLagExporterApiThrottled fires above 10% for 15m.",
                   (16, y + 9, 8, 8),
                   # `or ... * 0`: 0% rather than no data for a cloud without throttling.
                   [(f'(sum by (cloud) (rate(kafka_cloud_lag_exporter_api_errors_total{{{CLOUD}, kind="throttled"}}[$__rate_interval]))'
                     f" or sum by (cloud) (rate(kafka_cloud_lag_exporter_api_requests_total{{{CLOUD}}}[$__rate_interval])) * 0)"
                     f" / sum by (cloud) (rate(kafka_cloud_lag_exporter_api_requests_total{{{CLOUD}}}[$__rate_interval]))",
                     "{{cloud}}")], "percentunit"),
        timeseries("Poll duration", "Time to poll one group, pages and retries included; it must stay well below the poll interval.",
                   (0, y + 17, 12, 8),
                   [(f"histogram_quantile({q}, sum by (cloud, le) (rate(kafka_cloud_lag_exporter_poll_duration_seconds_bucket{{{CLOUD}}}[$__rate_interval])))",
                     f"{{{{cloud}}}} p{int(q * 100)}", ref) for q, ref in ((0.5, "A"), (0.9, "B"), (0.99, "C"))]
                   + [("max(kafka_cloud_lag_exporter_poll_interval_seconds)", "poll interval", "D")], "s"),
        panel("table", "Polled instances", "kafka_cloud_lag_exporter_instance_info and the exporter build.",
              (12, y + 17, 12, 8),
              [target(f'kafka_cloud_lag_exporter_instance_info{{{CLOUD}, instance_id=~"$instance_id"}}', "", "A", True, "table"),
               target("kafka_cloud_lag_exporter_build_info", "", "B", True, "table")],
              transformations=[{"id": "merge", "options": {}},
                               {"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True, "__name__": True}}}]),
        timeseries("Series left out by the cardinality controls", "kafka_cloud_lag_exporter_suppressed_series: lag series not exported, by instance and reason (group_state: skipped groups; partition_limit: partitions beyond each group's top partitions).",
                   (0, y + 25, 24, 7),
                   [(f'sum by (cloud, instance_id, reason) (kafka_cloud_lag_exporter_suppressed_series{{{CLOUD}, instance_id=~"$instance_id"}})',
                     "{{cloud}} {{instance_id}} {{reason}}")], "short"),
    ]
    return {
        "uid": "kafka-cloud-lag-exporter",
        "title": "Kafka consumer lag (Alibaba Cloud / Tencent Cloud)",
        "description": "Consumer-group lag of alikafka and CKafka instances and the health of kafka-cloud-lag-exporter.",
        "tags": ["kafka", "consumer-lag", "kafka-cloud-lag-exporter"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "timezone": "browser",
        "links": [],
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard"}]},
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": []},
            query_var("cloud", "Cloud", "label_values(kafka_cloud_lag_exporter_group_up, cloud)", "alibaba or tencent"),
            query_var("instance_id", "Instance", 'label_values(kafka_cloud_lag_exporter_group_up{cloud=~"$cloud"}, instance_id)',
                      "The cloud's Kafka instance id"),
            query_var("consumergroup", "Consumer group",
                      'label_values(kafka_cloud_lag_exporter_group_up{cloud=~"$cloud", instance_id=~"$instance_id"}, consumergroup)', ""),
            query_var("topic", "Topic", f"label_values(kafka_consumergroup_topic_lag{{{GROUP}}}, topic)", ""),
        ]},
        "panels": panels,
    }


def main() -> int:
    text = json.dumps(dashboard(), indent=2, sort_keys=False) + "\n"
    if sys.argv[1:] == ["--check"]:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is stale: run python3 {__file__}", file=sys.stderr)
            return 1
        print(f"{OUT.name} is up to date")
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
