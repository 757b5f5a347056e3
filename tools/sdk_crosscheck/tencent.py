#!/usr/bin/env python3
"""Independent proof of our Tencent Cloud TC3 signing and simulator, with the official SDK.

Requires tencentcloud-sdk-python-common and tencentcloud-sdk-python-ckafka (checked with
3.1.195). Nothing here talks to the real cloud; every signature is computed by vendor code.

Mode 1, signatures our client sent:

    tencent.py --requests DUMP.json

  DUMP.json is {"keys": {"<SecretId>": {"secret": "...", "token": null | "..."}},
  "requests": [<LoggedRequest as serde_json writes it: {"cloud", "action", "group",
  "params", "outcome", "at_ms", "raw": {"method", "path_and_query",
  "headers": [[name, value], ...], "body"}}>]}, as written from the simulator's request log
  with `record_raw: true`. Every Tencent request is re-signed from its raw bytes: with the
  SDK's own canonicalisation (`AbstractClient._get_tc3_signature`) when the signed headers
  are `content-type;host`, otherwise with the canonical request built as the TC3
  documentation describes and the SDK's HMAC chain (`Sign.sign_tc3`). The result must equal
  the `Signature=` the client sent, and the credential scope date must be the UTC date of
  `X-TC-Timestamp`. Every body is also read into the SDK's request model of its action,
  which must know each field and give back the same JSON (so field names and types are the
  SDK's, writes included). Prints one line per request (never a signature or a secret)
  and a summary; exits non-zero on any mismatch, or when no Tencent request was checked.

Mode 2, the simulator as the official client sees it:

    tencent.py --endpoint http://127.0.0.1:PORT --secret-id ID --secret-key K \\
        --region R --instance I --group G

  Drives `CkafkaClient` against a running simulator (its clock must be the real time):
  DescribeGroupOffsets, DescribeGroup, DescribeInstances, DescribeGroupInfo and
  DescribeTopicAttributes must succeed and parse into the SDK's models with topics,
  partitions, integer offsets and an integer retention; a call
  signed with a wrong secret key must raise TencentCloudSDKException with code
  AuthFailure.SignatureFailure. With `--idle-group G2` (a group without members) the SDK
  also writes: ModifyGroupOffsets with Partitions and BatchModifyGroupOffsets, each read
  back, and the same write to the active `--group` must be refused with FailedOperation.
  Exits non-zero on any failure.
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import sys
import types
import urllib.parse
import warnings

from tencentcloud.common.abstract_client import AbstractClient
from tencentcloud.common.sign import Sign

AUTH_RE = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[^/]+)/tc3_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})"
)


def utc_date(timestamp):
    return datetime.datetime.fromtimestamp(int(timestamp), tz=datetime.timezone.utc).strftime("%Y-%m-%d")


def expected_signature(raw, headers, auth, secret):
    """The signature the vendor code computes for this request, and how it was computed."""
    uri = raw["path_and_query"].split("?", 1)[0]
    body = raw["body"]
    if auth["signed"] == "content-type;host":
        req = types.SimpleNamespace(
            method=raw["method"],
            uri=uri,
            data=body,
            header={
                "Content-Type": headers["content-type"],
                "Host": headers["host"],
                "X-TC-Timestamp": headers["x-tc-timestamp"],
            },
        )
        if headers.get("x-tc-content-sha256") == "UNSIGNED-PAYLOAD":
            req.header["X-TC-Content-SHA256"] = "UNSIGNED-PAYLOAD"
        sig = AbstractClient._get_tc3_signature(None, None, req, auth["date"], auth["service"], secret)
        return sig, "sdk _get_tc3_signature"
    # The SDK never signs more than content-type;host: build the canonical request as the
    # TC3 documentation says (names and values lower-cased and trimmed) and let the SDK do
    # the HMAC chain.
    names = auth["signed"].split(";")
    canonical_headers = "".join("%s:%s\n" % (n, headers[n].strip().lower()) for n in names)
    payload = b"UNSIGNED-PAYLOAD" if headers.get("x-tc-content-sha256") == "UNSIGNED-PAYLOAD" else body.encode("utf8")
    canonical = "%s\n%s\n%s\n%s\n%s\n%s" % (
        raw["method"], uri, "", canonical_headers, auth["signed"], hashlib.sha256(payload).hexdigest())
    scope = "%s/%s/tc3_request" % (auth["date"], auth["service"])
    to_sign = "TC3-HMAC-SHA256\n%s\n%s\n%s" % (
        headers["x-tc-timestamp"], scope, hashlib.sha256(canonical.encode("utf8")).hexdigest())
    return Sign.sign_tc3(secret, auth["date"], auth["service"], to_sign), "doc canonical request + sdk sign_tc3"


def model_check(action, body):
    """Reads a request body into the SDK's model of the action: every field must be known to
    it, and the model must give back the same JSON."""
    from tencentcloud.ckafka.v20190819 import models

    cls = getattr(models, "%sRequest" % action, None)
    if cls is None:
        return False, "the SDK has no %sRequest model" % action
    sent = json.loads(body)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = cls()
        model._deserialize(sent)
    if caught:
        return False, "fields the SDK model does not know: %s" % "; ".join(str(w.message) for w in caught)
    # The model writes every field it has; those we did not send come back as null.
    def present(v):
        if isinstance(v, dict):
            return {k: present(x) for k, x in v.items() if x is not None}
        if isinstance(v, list):
            return [present(x) for x in v]
        return v

    back = present(json.loads(model.to_json_string()))
    if back != sent:
        return False, "the SDK model gives back %s" % sorted(set(back) ^ set(sent) or back)
    return True, "body fits the SDK's %s" % cls.__name__


def check_dump(path):
    with open(path) as f:
        dump = json.load(f)
    keys = dump.get("keys", {})
    ok = bad = skipped = 0
    for i, entry in enumerate(dump.get("requests", [])):
        if entry.get("cloud") != "tencent":
            continue
        label = "#%d %s outcome=%s" % (i, entry.get("action") or "-", entry.get("outcome"))
        raw = entry.get("raw")
        if raw is None:
            skipped += 1
            print("SKIP     %s: no raw request (record_raw off)" % label)
            continue
        headers = {}
        for name, value in raw["headers"]:
            headers.setdefault(name.lower(), value)
        m = AUTH_RE.fullmatch(headers.get("authorization", ""))
        if not m:
            bad += 1
            print("MISMATCH %s: Authorization header is not a TC3 value" % label)
            continue
        auth = m.groupdict()
        key = keys.get(auth["id"])
        if key is None:
            bad += 1
            print("MISMATCH %s: SecretId %s is not in the dump's keys" % (label, auth["id"]))
            continue
        timestamp = headers.get("x-tc-timestamp", "")
        if not timestamp.isdigit() or utc_date(timestamp) != auth["date"]:
            bad += 1
            print("MISMATCH %s: scope date %s is not the UTC date of X-TC-Timestamp %s"
                  % (label, auth["date"], timestamp))
            continue
        missing = [n for n in auth["signed"].split(";") if n not in headers]
        if missing:
            bad += 1
            print("MISMATCH %s: signed headers missing from the request: %s" % (label, ",".join(missing)))
            continue
        expected, how = expected_signature(raw, headers, auth, key["secret"])
        model_ok, model = model_check(entry.get("action"), raw["body"])
        if expected == auth["sig"] and model_ok:
            ok += 1
            print("OK       %s signed=%s via %s; %s" % (label, auth["signed"], how, model))
        elif not model_ok:
            bad += 1
            print("MISMATCH %s: %s" % (label, model))
        else:
            bad += 1
            print("MISMATCH %s signed=%s via %s: the signature sent differs" % (label, auth["signed"], how))
    print("tencent signatures: %d checked, %d ok, %d mismatched, %d skipped" % (ok + bad, ok, bad, skipped))
    if ok + bad == 0:
        print("FAIL: no Tencent request was checked")
        return 1
    return 1 if bad else 0


def drive_simulator(args):
    from tencentcloud.ckafka.v20190819 import ckafka_client, models
    from tencentcloud.common import credential
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile

    # The simulator is on loopback: never send it through a proxy from the environment.
    no_proxy = os.environ.get("NO_PROXY", "")
    os.environ["NO_PROXY"] = ",".join(filter(None, [no_proxy, "127.0.0.1", "localhost"]))
    url = urllib.parse.urlparse(args.endpoint)

    def client(secret_key):
        http_profile = HttpProfile(endpoint=url.netloc, protocol=url.scheme or "http")
        http_profile.scheme = url.scheme or "http"
        return ckafka_client.CkafkaClient(
            credential.Credential(args.secret_id, secret_key), args.region, ClientProfile(httpProfile=http_profile))

    c = client(args.secret_key)
    failures = []

    def check(name, fn):
        try:
            detail = fn()
            print("OK   %s: %s" % (name, detail))
        except TencentCloudSDKException as e:
            failures.append(name)
            print("FAIL %s: %s %s (request id %s)" % (name, e.get_code(), e.get_message(), e.get_request_id()))
        except AssertionError as e:
            failures.append(name)
            print("FAIL %s: %s" % (name, e))

    def group_offsets():
        req = models.DescribeGroupOffsetsRequest()
        req.InstanceId, req.Group = args.instance, args.group
        r = c.DescribeGroupOffsets(req).Result
        assert isinstance(r, models.GroupOffsetResponse), type(r)
        assert r.TotalCount > 0 and len(r.TopicList) > 0, "no topics"
        parts = [p for t in r.TopicList for p in t.Partitions]
        assert parts, "no partitions"
        for p in parts:
            assert isinstance(p, models.GroupOffsetPartition)
            for field in ("Partition", "Offset", "LogEndOffset", "Lag", "ErrorCode"):
                assert isinstance(getattr(p, field), int), "%s is %r" % (field, getattr(p, field))
        return "%d topics (TotalCount %d), %d partitions" % (len(r.TopicList), r.TotalCount, len(parts))

    def groups():
        req = models.DescribeGroupRequest()
        req.InstanceId = args.instance
        r = c.DescribeGroup(req).Result
        names = [g.Group for g in r.GroupList]
        assert isinstance(r.TotalCount, int) and r.TotalCount >= len(names) > 0, "no groups"
        assert args.group in names, "%s not in the first page %s" % (args.group, names)
        return "%d of %d groups" % (len(names), r.TotalCount)

    def instances():
        req = models.DescribeInstancesRequest()
        r = c.DescribeInstances(req).Result
        ids = {i.InstanceId: i.Status for i in r.InstanceList}
        assert args.instance in ids, "%s not listed: %s" % (args.instance, sorted(ids))
        assert all(isinstance(s, int) for s in ids.values())
        return "%d instances, %s has status %d" % (r.TotalCount, args.instance, ids[args.instance])

    def group_info():
        req = models.DescribeGroupInfoRequest()
        req.InstanceId, req.GroupList = args.instance, [args.group]
        r = c.DescribeGroupInfo(req).Result
        assert len(r) == 1 and isinstance(r[0], models.GroupInfoResponse)
        g = r[0]
        assert g.Group == args.group and g.ErrorCode == "0", (g.Group, g.ErrorCode)
        assert g.State in ("Stable", "Empty", "PreparingRebalance", "CompletingRebalance"), g.State
        return "state %s, %d members" % (g.State, len(g.Members or []))

    def topic_attributes():
        req = models.DescribeGroupOffsetsRequest()
        req.InstanceId, req.Group = args.instance, args.group
        topic = c.DescribeGroupOffsets(req).Result.TopicList[0].Topic
        req = models.DescribeTopicAttributesRequest()
        req.InstanceId, req.TopicName = args.instance, topic
        r = c.DescribeTopicAttributes(req).Result
        assert isinstance(r, models.TopicAttributesResponse), type(r)
        assert isinstance(r.Config, models.Config), type(r.Config)
        assert isinstance(r.Config.Retention, int) and r.Config.Retention > 0, r.Config.Retention
        return "topic %s keeps messages %d ms" % (topic, r.Config.Retention)

    def wrong_key():
        req = models.DescribeGroupRequest()
        req.InstanceId = args.instance
        try:
            client(args.secret_key + "-wrong").DescribeGroup(req)
        except TencentCloudSDKException as e:
            assert e.get_code() == "AuthFailure.SignatureFailure", "code %s" % e.get_code()
            return "refused with %s" % e.get_code()
        raise AssertionError("a wrong secret key was accepted")

    def offsets(group):
        req = models.DescribeGroupOffsetsRequest()
        req.InstanceId, req.Group = args.instance, group
        r = c.DescribeGroupOffsets(req).Result
        return {(t.Topic, p.Partition): (p.Offset, p.LogEndOffset) for t in r.TopicList for p in t.Partitions}

    def modify_partitions():
        before = offsets(args.idle_group)
        topic = sorted(before)[0][0]
        parts = sorted(p for (t, p) in before if t == topic)
        req = models.ModifyGroupOffsetsRequest()
        req.InstanceId, req.Group, req.Strategy = args.instance, args.idle_group, 1
        req.Topics, req.ShiftTimestamp, req.Partitions = [topic], -1, parts[:1]
        r = c.ModifyGroupOffsets(req).Result
        assert r.ReturnCode == "0", "ReturnCode %s: %s" % (r.ReturnCode, r.ReturnMessage)
        after = offsets(args.idle_group)
        first = (topic, parts[0])
        assert after[first][0] >= before[first][1], "%s not at its log end: %s" % (first, after[first])
        moved = [k for k in before if k != first and after[k][0] != before[k][0]]
        assert not moved, "partitions outside Partitions moved: %s" % moved
        return "Strategy 1 with Partitions [%d] moved only %s/%d" % (parts[0], topic, parts[0])

    def batch_modify():
        before = offsets(args.idle_group)
        (topic, partition), (committed, _) = sorted(before.items())[-1]
        target = max(committed - 1, 0)
        p = models.Partitions()
        p.Partition, p.Offset = partition, target
        req = models.BatchModifyGroupOffsetsRequest()
        req.GroupName, req.InstanceId, req.TopicName, req.Partitions = args.idle_group, args.instance, [topic], [p]
        r = c.BatchModifyGroupOffsets(req).Result
        assert r.ReturnCode == "0", "ReturnCode %s: %s" % (r.ReturnCode, r.ReturnMessage)
        after = offsets(args.idle_group)[(topic, partition)][0]
        assert after == target, "read back %s, not %s" % (after, target)
        return "%s/%d set to %d and read back" % (topic, partition, target)

    def active_refused():
        req = models.ModifyGroupOffsetsRequest()
        topic = sorted(offsets(args.group))[0][0]
        req.InstanceId, req.Group, req.Strategy, req.Topics, req.ShiftTimestamp = args.instance, args.group, 1, [topic], -2
        try:
            c.ModifyGroupOffsets(req)
        except TencentCloudSDKException as e:
            assert e.get_code() == "FailedOperation", "code %s" % e.get_code()
            return "refused with %s" % e.get_code()
        raise AssertionError("a reset of the active group %s was accepted" % args.group)

    checks = [
        ("DescribeGroupOffsets", group_offsets),
        ("DescribeGroup", groups),
        ("DescribeInstances", instances),
        ("DescribeGroupInfo", group_info),
        ("DescribeTopicAttributes", topic_attributes),
        ("wrong secret key", wrong_key),
    ]
    if args.idle_group:
        checks += [
            ("ModifyGroupOffsets with Partitions", modify_partitions),
            ("BatchModifyGroupOffsets", batch_modify),
            ("ModifyGroupOffsets of an active group", active_refused),
        ]
    for name, fn in checks:
        check(name, fn)
    print("tencent sdk against the simulator: %d checks, %d failed" % (len(checks), len(failures)))
    return 1 if failures else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", metavar="DUMP.json", help="check the signatures of a request dump")
    p.add_argument("--endpoint", help="simulator base URL, e.g. http://127.0.0.1:8123")
    p.add_argument("--secret-id")
    p.add_argument("--secret-key")
    p.add_argument("--region")
    p.add_argument("--instance")
    p.add_argument("--group")
    p.add_argument("--idle-group", help="a group without members, to write to")
    args = p.parse_args()
    if args.requests:
        return check_dump(args.requests)
    needed = ["endpoint", "secret_id", "secret_key", "region", "instance", "group"]
    absent = [n for n in needed if not getattr(args, n)]
    if absent:
        p.error("give --requests, or all of: " + ", ".join("--" + n.replace("_", "-") for n in absent))
    return drive_simulator(args)


if __name__ == "__main__":
    sys.exit(main())
