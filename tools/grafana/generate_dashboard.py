#!/usr/bin/env python3
"""Writes postclassd-dashboard.json (Grafana, schemaVersion 39) beside this script.

Edit the panels here and re-run `python3 tools/grafana/generate_dashboard.py`; the JSON is
the file to import into Grafana. MetricsTests checks that every metric the dashboard queries is
one DaemonMetrics exports and that every query parses (promtool check rules).
"""
import json
from pathlib import Path

DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job=~"$job", instance=~"$instance"'
RI = "$__rate_interval"
panels = []
pid = 0
def panel(title, targets, x, y, w=12, h=8, unit=None, kind="timeseries", desc="", stack=None, extra=None,
          min_max=None):
    global pid
    pid += 1
    p = {"id": pid, "type": kind, "title": title, "description": desc, "datasource": DS,
         "gridPos": {"x": x, "y": y, "w": w, "h": h},
         "targets": [dict({"refId": chr(65 + i), "datasource": DS}, **t) for i, t in enumerate(targets)],
         "fieldConfig": {"defaults": {}, "overrides": []}, "options": {}}
    if unit: p["fieldConfig"]["defaults"]["unit"] = unit
    if kind == "timeseries":
        p["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
            "showPoints": "never", "spanNulls": False,
            "stacking": {"mode": stack or "none", "group": "A"}}
        p["options"] = {"legend": {"displayMode": "table", "placement": "right", "calcs": ["mean", "max", "lastNotNull"]},
                        "tooltip": {"mode": "multi", "sort": "desc"}}
    if min_max:
        p["fieldConfig"]["defaults"]["min"], p["fieldConfig"]["defaults"]["max"] = min_max
    if extra: p.update(extra)
    panels.append(p)
def row(title, y):
    global pid
    pid += 1
    panels.append({"id": pid, "type": "row", "title": title, "collapsed": False,
                   "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []})
def t(expr, legend, **kw):
    return dict({"expr": expr, "legendFormat": legend, "range": True}, **kw)
def q(quantile, metric, by=""):
    by_ = f"le, {by}" if by else "le"
    return f'histogram_quantile({quantile}, sum by ({by_}) (rate({metric}_bucket{{{SEL}}}[{RI}])))'

y = 0
row("Overview", y); y += 1
panel("Build info", [t(f'max by (instance, version, model_bundle) (postclassd_build_info{{{SEL}}})', "",
      format="table", instant=True, range=False)], 0, y, w=12, h=5, kind="table",
      desc="One row per daemon: its version and the model bundle it loaded (postclassd_build_info).",
      extra={"transformations": [{"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True}}}]})
panel("Up", [t(f'up{{{SEL}}}', "{{instance}}", instant=True, range=False)], 12, y, w=4, h=5, kind="stat",
      desc="Whether Prometheus can scrape each daemon.",
      extra={"options": {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"},
             "fieldConfig": {"defaults": {"mappings": [{"type": "value", "options": {"0": {"text": "DOWN", "color": "red"}, "1": {"text": "UP", "color": "green"}}}]}, "overrides": []}})
panel("Since last processed record", [t(f'time() - (max by (instance) (postclassd_last_processed_timestamp_seconds{{{SEL}}}) > 0)', "{{instance}}", instant=True, range=False)],
      16, y, w=4, h=5, kind="stat", unit="s",
      desc="Seconds since each daemon last processed a record; grows when input stops or the daemon is stuck.",
      extra={"options": {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"}})
panel("Input stalled", [t(f'max by (instance) (postclassd_input_stalled{{{SEL}}})', "{{instance}}", instant=True, range=False)],
      20, y, w=4, h=5, kind="stat",
      desc="STALLED while records wait in an assigned partition and none was taken in or finished for stall-timeout; /readyz and the log say why.",
      extra={"options": {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"},
             "fieldConfig": {"defaults": {"mappings": [{"type": "value", "options": {"0": {"text": "moving", "color": "green"}, "1": {"text": "STALLED", "color": "red"}}}]}, "overrides": []}})
y += 5
row("Throughput and errors", y); y += 1
panel("Throughput (messages/s)", [
    t(f'sum by (topic) (rate(postclassd_messages_consumed_total{{{SEL}}}[{RI}]))', "consumed {{topic}}"),
    t(f'sum by (topic) (rate(postclassd_messages_produced_total{{{SEL}}}[{RI}]))', "produced {{topic}}"),
    t(f'sum(rate(postclassd_messages_dead_lettered_total{{{SEL}}}[{RI}]))', "dead-lettered"),
], 0, y, unit="ops", desc="Messages consumed per input topic and records delivered per output topic.")
panel("Dead-letter rate by reason (messages/s)", [
    t(f'sum by (reason) (rate(postclassd_messages_dead_lettered_total{{{SEL}}}[{RI}]))', "{{reason}}"),
], 12, y, unit="ops", stack="normal", desc="Input messages sent to the dead-letter topic, by error.code.")
y += 8
panel("Dropped and routed (messages/s)", [
    t(f'sum by (task, label) (rate(postclassd_messages_dropped_total{{{SEL}}}[{RI}]))', "dropped {{task}}={{label}}"),
    t(f'sum by (task, label, topic) (rate(postclassd_messages_routed_total{{{SEL}}}[{RI}]))', "routed {{task}}={{label}} -> {{topic}}"),
], 0, y, unit="ops", desc="Posts kept out of the output by --drop-when or sent elsewhere by --route.")
panel("Kafka errors, rebalances, offset resets (per second)", [
    t(f'sum by (kind) (rate(postclassd_kafka_errors_total{{{SEL}}}[{RI}]))', "error {{kind}}"),
    t(f'sum by (kind) (rate(postclassd_rebalances_total{{{SEL}}}[{RI}]))', "rebalance {{kind}}"),
    t(f'sum by (topic) (rate(postclassd_offset_resets_total{{{SEL}}}[{RI}]))', "offset reset {{topic}}"),
    t(f'sum by (topic, kind) (rate(postclassd_delivery_retries_total{{{SEL}}}[{RI}]))', "delivery retry {{topic}} {{kind}}"),
    t(f'sum(rate(postclassd_offset_gaps_total{{{SEL}}}[{RI}]))', "offsets skipped"),
], 12, y, unit="ops", desc="Any offset reset means records were skipped or replayed: see the daemon's log. Delivery retries: outputs sent again after a failed delivery (the cluster had a bad moment, or refuses this client). Offsets skipped: gaps between consecutive records (compaction, transaction markers, or a client that skipped records).")
y += 8
row("Latency", y); y += 1
panel("End-to-end latency (Kafka timestamp to delivery)", [
    t(q(0.5, "postclassd_end_to_end_latency_seconds"), "p50"),
    t(q(0.9, "postclassd_end_to_end_latency_seconds"), "p90"),
    t(q(0.99, "postclassd_end_to_end_latency_seconds"), "p99"),
], 0, y, unit="s", desc="From the input record's Kafka timestamp to its output record's delivery. Buckets span 1 ms to 30 s.")
panel("Stage latency p99 per batch", [
    t(q(0.99, "postclassd_stage_duration_seconds", "stage"), "p99 {{stage}}"),
], 12, y, unit="s", desc="Time per batch in each pipeline stage (decode, tokenize, text_encoder, image_encoder, heads, classify).")
y += 8
panel("Stage latency p50 per batch", [
    t(q(0.5, "postclassd_stage_duration_seconds", "stage"), "p50 {{stage}}"),
], 0, y, unit="s")
panel("Batch wait", [
    t(q(0.5, "postclassd_batch_wait_seconds"), "p50"),
    t(q(0.99, "postclassd_batch_wait_seconds"), "p99"),
], 12, y, unit="s", desc="How long batches waited to fill before running (bounded by --batch-wait-ms).")
y += 8
row("Kafka consumer", y); y += 1
panel("Consumer lag per partition (messages)", [
    t(f'max by (topic, partition) (postclassd_consumer_lag_messages{{{SEL}}})', "{{topic}}[{{partition}}]"),
], 0, y, unit="short", desc="Messages between the committed offset and the high watermark, for partitions being fetched.")
panel("Total consumer lag per topic (messages)", [
    t(f'sum by (topic) (max by (topic, partition) (postclassd_consumer_lag_messages{{{SEL}}}))', "{{topic}}"),
], 12, y, unit="short")
y += 8
row("Labels", y); y += 1
panel("Label mix: $task", [
    t(f'sum by (label) (rate(postclassd_labels_emitted_total{{{SEL}, task="$task"}}[{RI}]))'
      f' / ignoring (label) group_left sum(rate(postclassd_labels_emitted_total{{{SEL}, task="$task"}}[{RI}]))', "{{label}}"),
], 0, y, unit="percentunit", stack="normal", desc="Share of each label among the task's posts; one panel per task.",
      extra={"repeat": "task", "repeatDirection": "h", "maxPerRow": 3})
y += 8
panel("Labels emitted (per second)", [
    t(f'sum by (task, label) (rate(postclassd_labels_emitted_total{{{SEL}}}[{RI}]))', "{{task}}: {{label}}"),
], 0, y, w=24, unit="ops")
y += 8
row("Capacity", y); y += 1
panel("In-flight messages", [
    t(f'sum by (instance) (postclassd_inflight_messages{{{SEL}}})', "{{instance}}"),
], 0, y, w=8, unit="short", desc="Consumed messages not yet confirmed delivered; the consumer pauses at --max-inflight-messages.")
panel("In-flight bytes", [
    t(f'sum by (instance) (postclassd_inflight_bytes{{{SEL}}})', "{{instance}}"),
], 8, y, w=8, unit="bytes", desc="The consumer pauses at --max-inflight-bytes.")
panel("Worker busy ratio", [
    t(f'avg by (instance) (postclassd_worker_busy_ratio{{{SEL}}})', "{{instance}}"),
], 16, y, w=8, unit="percentunit", desc="Share of the worker pool running batches; near 100% means the model is the bottleneck.",
      min_max=(0, 1))
y += 8
panel("Batch size", [
    t(q(0.5, "postclassd_batch_size"), "p50"),
    t(q(0.99, "postclassd_batch_size"), "p99"),
    t(f'sum(rate(postclassd_batch_size_sum{{{SEL}}}[{RI}])) / sum(rate(postclassd_batch_size_count{{{SEL}}}[{RI}]))', "mean"),
], 0, y, unit="short", desc="Posts per batch (buckets 1 to 256). Small batches under load mean --batch-wait-ms is closing them.")
panel("Batches per second", [
    t(f'sum by (instance) (rate(postclassd_batch_size_count{{{SEL}}}[{RI}]))', "{{instance}}"),
], 12, y, unit="ops")
y += 8

def var(name, label, query):
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": query, "refId": f"{name}-var"}, "definition": query,
            "refresh": 2, "includeAll": True, "multi": True, "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "sort": 1}
dash = {
    "title": "postclassd",
    "uid": "postclassd-overview",
    "description": "Throughput, latency, lag, dead letters and label mix of postclassd daemons.",
    "tags": ["postclassd", "kafka"],
    "schemaVersion": 39,
    "version": 1,
    "editable": True,
    "graphTooltip": 1,
    "time": {"from": "now-1h", "to": "now"},
    "refresh": "30s",
    "timezone": "",
    "annotations": {"list": []},
    "links": [],
    "templating": {"list": [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0, "refresh": 1, "regex": ""},
        var("job", "Job", "label_values(postclassd_build_info, job)"),
        var("instance", "Instance", 'label_values(postclassd_build_info{job=~"$job"}, instance)'),
        var("task", "Task", 'label_values(postclassd_labels_emitted_total{job=~"$job"}, task)'),
    ]},
    "panels": panels,
}
output = Path(__file__).with_name("postclassd-dashboard.json")
output.write_text(json.dumps(dash, indent=2) + "\n")
print(f"wrote {output} ({len(panels)} panels)")
