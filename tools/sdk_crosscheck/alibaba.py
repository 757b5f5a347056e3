#!/usr/bin/env python3
"""Independent proof of the Alibaba (alikafka) signing and simulator with the official SDKs.

Needs a virtualenv with the official packages (see ../shared/reference/cloud-apis.md, Part D1):
    aliyun-python-sdk-core==2.16.1 alibabacloud-openapi-util==0.2.4
    alibabacloud-tea-openapi==0.4.6 alibabacloud-alikafka20190916==2.16.0

Mode 1, signatures of recorded requests:

    python tools/sdk_crosscheck/alibaba.py --requests DUMP.json

DUMP.json is {"keys": {"<key id>": {"secret": "...", "token": null | "..."}},
"requests": [<LoggedRequest as serialized by serde_json>]}, written from a simulator
started with `record_raw: true`. For every Alibaba request the signature our client sent
is recomputed from the raw request by the vendors' own functions:
  V2: aliyunsdkcore `__compose_string_to_sign` + `__get_signature`,
      alibabacloud_openapi_util `Client.get_rpcsignature`, tea-openapi `Utils.get_rpcsignature`;
  V3: alibabacloud_openapi_util `Client.get_authorization`, tea-openapi `Utils.get_authorization`
      (and the body hash against `x-acs-content-sha256`).
Prints one line per request and a summary; exits 1 on any mismatch, or unless every
action seen was checked in both signature versions (at least one V2 and one V3 request
of each), so that a signer that silently stopped being exercised fails the check.

Mode 2, the official clients against a running simulator:

    python tools/sdk_crosscheck/alibaba.py --endpoint http://127.0.0.1:PORT \\
        --key-id ID --key-secret S --region R --instance I --group G

Calls GetConsumerProgress (also with HideLastTimestamp), GetConsumerList and
GetInstanceList with the `alibabacloud_alikafka20190916` client (signature V3), and
GetConsumerProgress with an `aliyunsdkcore` CommonRequest (signature V2); checks that the
SDK models parse the answers; then checks that a wrong secret makes both SDKs raise
`SignatureDoesNotMatch`. With `--idle-group G2` (a group without members) the SDKs also
write: UpdateConsumerOffset with explicit offsets (V3 model, and V2 with the Offsets JSON
string) and with a time, each read back; the same write to the active `--group` must be
refused. Exits 1 on any failure. The simulator must run on the real clock (the SDKs sign
with the current time).

Secrets, tokens and signatures are never printed.
"""

import argparse
import hashlib
import json
import sys
import types
from urllib.parse import unquote, urlparse

COMMON_ALGORITHM = "ACS3-HMAC-SHA256"


def parse_pairs(text, plus_is_space=False):
    """Query (or form) pairs, percent-decoded; '+' is literal in RFC 3986 queries."""
    pairs = []
    for part in text.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if plus_is_space:
            name, value = name.replace("+", " "), value.replace("+", " ")
        pairs.append((unquote(name), unquote(value)))
    return pairs


def redact(text, secrets):
    for s in secrets:
        if s:
            text = text.replace(s, "[redacted]")
    return text


def check_v2(raw, params, keys):
    """Returns (ok, detail) for a V2 (query Signature) request."""
    import aliyunsdkcore.auth.composer.rpc_signature_composer as rpc
    from alibabacloud_openapi_util.client import Client as OpenApiUtil
    from alibabacloud_tea_openapi.utils import Utils as TeaUtils

    compose = getattr(rpc, "__compose_string_to_sign")
    get_signature = getattr(rpc, "__get_signature")

    signed = {k: v for k, v in params if k != "Signature"}
    sent = dict(params).get("Signature")
    key_id = signed.get("AccessKeyId")
    if sent is None or key_id not in keys:
        return False, f"no Signature or unknown key id {key_id!r}"
    secret = keys[key_id]["secret"]
    method = raw["method"]
    string_to_sign = compose(method, dict(signed))
    computed = {
        "aliyunsdkcore": get_signature(string_to_sign, secret),
        "openapi-util": OpenApiUtil.get_rpcsignature(dict(signed), method, secret),
        "tea-openapi": TeaUtils.get_rpcsignature(dict(signed), method, secret),
    }
    bad = [name for name, sig in computed.items() if sig != sent]
    if bad:
        token = keys[key_id].get("token")
        return False, "differs from {}; SDK string to sign: {}".format(
            ", ".join(bad), redact(string_to_sign, [token, secret])
        )
    return True, "aliyunsdkcore, openapi-util and tea-openapi agree"


def check_v3(raw, params, headers, keys):
    """Returns (ok, detail) for a V3 (Authorization header) request."""
    from alibabacloud_openapi_util.client import Client as OpenApiUtil
    from alibabacloud_tea_openapi.utils import Utils as TeaUtils

    sent = headers["authorization"]
    fields = dict(
        part.split("=", 1) for part in sent[len(COMMON_ALGORITHM) + 1 :].split(",")
    )
    key_id = fields.get("Credential")
    if key_id not in keys:
        return False, f"unknown key id {key_id!r}"
    secret = keys[key_id]["secret"]
    payload = headers.get("x-acs-content-sha256", "")
    body_hash = hashlib.sha256(raw["body"].encode("utf-8")).hexdigest()
    if payload != body_hash:
        return False, "x-acs-content-sha256 is not the SHA-256 of the body"
    signed_names = fields.get("SignedHeaders", "").split(";")
    missing = [n for n in signed_names if n not in headers]
    if missing:
        return False, f"signed headers not sent: {missing}"
    unsigned = [n for n in headers if n.startswith("x-acs-") and n not in signed_names]
    if unsigned:
        return False, f"x-acs headers sent but not signed: {unsigned}"
    path = raw["path_and_query"].partition("?")[0]
    request = types.SimpleNamespace(
        pathname=path,
        method=raw["method"],
        query=dict(params),
        headers={n: headers[n] for n in signed_names},
    )
    computed = {
        "openapi-util": OpenApiUtil.get_authorization(
            request, COMMON_ALGORITHM, payload, key_id, secret
        ),
        "tea-openapi": TeaUtils.get_authorization(
            request, COMMON_ALGORITHM, payload, key_id, secret
        ),
    }
    bad = [name for name, auth in computed.items() if auth != sent]
    if bad:
        return False, "Authorization differs from " + ", ".join(bad)
    return True, "openapi-util and tea-openapi agree"


def check_requests(path):
    with open(path, encoding="utf-8") as f:
        dump = json.load(f)
    keys = dump.get("keys", {})
    counts = {"v2": 0, "v3": 0}
    by_action = {}
    failures = 0
    for i, entry in enumerate(dump.get("requests", [])):
        if entry.get("cloud") != "alibaba":
            continue
        action = entry.get("action") or "?"
        raw = entry.get("raw")
        if not raw:
            print(f"FAIL #{i} {action}: no raw request (start the simulator with record_raw)")
            failures += 1
            continue
        headers = {}
        for name, value in raw["headers"]:
            headers.setdefault(name.lower(), value)
        query = raw["path_and_query"].partition("?")[2]
        params = parse_pairs(query)
        content_type = headers.get("content-type", "")
        if raw["body"] and content_type.startswith("application/x-www-form-urlencoded"):
            params += parse_pairs(raw["body"], plus_is_space=True)
        if headers.get("authorization", "").startswith(COMMON_ALGORITHM):
            version = "v3"
            ok, detail = check_v3(raw, params, headers, keys)
        else:
            version = "v2"
            ok, detail = check_v2(raw, params, keys)
        counts[version] += 1
        by_action.setdefault(action, {"v2": 0, "v3": 0})[version] += 1
        status = "OK  " if ok else "FAIL"
        print(f"{status} #{i} {action} {version} ({entry.get('outcome')}): {detail}")
        if not ok:
            failures += 1
    total = counts["v2"] + counts["v3"]
    print(
        f"checked {total} alibaba requests (v2: {counts['v2']}, v3: {counts['v3']}), "
        f"{failures} failed"
    )
    if total == 0:
        print("FAIL: no alibaba request was checked")
        return 1
    for action, n in sorted(by_action.items()):
        line = f"{action}: v2 {n['v2']}, v3 {n['v3']}"
        if n["v2"] == 0 or n["v3"] == 0:
            print(f"FAIL {line}: each action must be checked in both signature versions")
            failures += 1
        else:
            print(f"OK   {line}")
    return 1 if failures else 0


class Checks:
    def __init__(self):
        self.failures = 0

    def expect(self, condition, what):
        print(("OK   " if condition else "FAIL ") + what)
        if not condition:
            self.failures += 1
        return condition


def tea_client(endpoint, key_id, secret, region):
    from alibabacloud_alikafka20190916.client import Client as KafkaClient
    from alibabacloud_tea_openapi.utils_models import Config

    url = urlparse(endpoint)
    config = Config(
        access_key_id=key_id,
        access_key_secret=secret,
        endpoint=url.netloc,
        protocol=url.scheme or "http",
        region_id=region,
    )
    return KafkaClient(config)


def core_progress(endpoint, key_id, secret, region, instance, group):
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkcore.request import CommonRequest

    url = urlparse(endpoint)
    client = AcsClient(key_id, secret, region)
    request = CommonRequest()
    request.set_domain(url.netloc)
    request.set_protocol_type(url.scheme or "http")
    request.set_version("2019-09-16")
    request.set_action_name("GetConsumerProgress")
    request.set_method("POST")
    request.set_accept_format("json")
    request.add_query_param("RegionId", region)
    request.add_query_param("InstanceId", instance)
    request.add_query_param("ConsumerId", group)
    return json.loads(client.do_action_with_exception(request))


def error_code(exc):
    return getattr(exc, "code", None) or getattr(exc, "error_code", None) or (
        exc.get_error_code() if hasattr(exc, "get_error_code") else None
    )


def drive(args):
    from alibabacloud_alikafka20190916 import models as km

    c = Checks()
    client = tea_client(args.endpoint, args.key_id, args.key_secret, args.region)

    # V3: GetConsumerProgress, parsed into the SDK model.
    try:
        body = client.get_consumer_progress(
            km.GetConsumerProgressRequest(
                region_id=args.region, instance_id=args.instance, consumer_id=args.group
            )
        ).body
        topics = body.consumer_progress.topic_list.topic_list or []
        parts = [p for t in topics for p in (t.offset_list.offset_list or [])]
        c.expect(body.success is True and body.code == 200, "v3 GetConsumerProgress succeeded")
        c.expect(len(topics) > 0 and len(parts) > 0,
                 f"v3 GetConsumerProgress model has {len(topics)} topics, {len(parts)} partitions")
        c.expect(all(isinstance(p.broker_offset, int) and isinstance(p.consumer_offset, int)
                     and isinstance(p.partition, int) for p in parts),
                 "v3 GetConsumerProgress offsets are ints")
        c.expect(isinstance(body.consumer_progress.state, str),
                 f"v3 GetConsumerProgress state {body.consumer_progress.state!r}")
        known = [p for p in parts if isinstance(p.last_timestamp, int) and p.last_timestamp > 0]
        c.expect(len(known) > 0, f"v3 GetConsumerProgress has {len(known)} known LastTimestamps")
    except Exception as e:  # noqa: BLE001 - report any SDK failure as a check failure
        c.expect(False, f"v3 GetConsumerProgress raised {type(e).__name__} code={error_code(e)}")

    # V3 with HideLastTimestamp=True (the SDK sends "True"): every LastTimestamp is -1.
    try:
        body = client.get_consumer_progress(
            km.GetConsumerProgressRequest(
                region_id=args.region, instance_id=args.instance, consumer_id=args.group,
                hide_last_timestamp=True,
            )
        ).body
        topics = body.consumer_progress.topic_list.topic_list or []
        parts = [p for t in topics for p in (t.offset_list.offset_list or [])]
        c.expect(len(parts) > 0 and all(p.last_timestamp == -1 for p in parts),
                 "v3 GetConsumerProgress with HideLastTimestamp=True gives LastTimestamp -1")
    except Exception as e:  # noqa: BLE001
        c.expect(False, f"v3 hidden GetConsumerProgress raised {type(e).__name__} code={error_code(e)}")

    # V3: GetConsumerList.
    try:
        body = client.get_consumer_list(
            km.GetConsumerListRequest(
                region_id=args.region, instance_id=args.instance, current_page=1, page_size=100
            )
        ).body
        ids = [v.consumer_id for v in (body.consumer_list.consumer_vo or [])]
        c.expect(body.success is True and isinstance(body.total, int) and body.total >= len(ids),
                 f"v3 GetConsumerList succeeded, Total {body.total}")
        c.expect(args.group in ids, f"v3 GetConsumerList lists {args.group} among {len(ids)} groups")
    except Exception as e:  # noqa: BLE001
        c.expect(False, f"v3 GetConsumerList raised {type(e).__name__} code={error_code(e)}")

    # V3: GetInstanceList.
    try:
        body = client.get_instance_list(km.GetInstanceListRequest(region_id=args.region)).body
        vos = body.instance_list.instance_vo or []
        ids = [v.instance_id for v in vos]
        c.expect(args.instance in ids, f"v3 GetInstanceList lists {args.instance} among {len(ids)}")
        c.expect(all(isinstance(v.service_status, int) for v in vos),
                 "v3 GetInstanceList ServiceStatus values are ints")
    except Exception as e:  # noqa: BLE001
        c.expect(False, f"v3 GetInstanceList raised {type(e).__name__} code={error_code(e)}")

    # V3: GetInstanceList narrowed to one instance (the SDK sends InstanceId.1), with the
    # instance's retention in hours, as the exporter reads it for the retention margin.
    try:
        req = km.GetInstanceListRequest(region_id=args.region, instance_id=[args.instance])
        vos = client.get_instance_list(req).body.instance_list.instance_vo or []
        c.expect([v.instance_id for v in vos] == [args.instance],
                 f"v3 GetInstanceList with InstanceId.1 lists only {args.instance}")
        c.expect(all(isinstance(v.msg_retain, int) and v.msg_retain > 0 for v in vos),
                 f"v3 GetInstanceList MsgRetain is an int of hours: {[v.msg_retain for v in vos]}")
    except Exception as e:  # noqa: BLE001
        c.expect(False, f"v3 GetInstanceList (one instance) raised {type(e).__name__} code={error_code(e)}")

    # V2: aliyunsdkcore CommonRequest.
    try:
        data = core_progress(args.endpoint, args.key_id, args.key_secret, args.region,
                             args.instance, args.group)
        topics = data["ConsumerProgress"]["TopicList"]["TopicList"]
        parts = [p for t in topics for p in t["OffsetList"]["OffsetList"]]
        c.expect(data.get("Success") is True and len(parts) > 0,
                 f"v2 (aliyunsdkcore) GetConsumerProgress succeeded with {len(parts)} partitions")
        c.expect(all(isinstance(p["BrokerOffset"], int) for p in parts),
                 "v2 GetConsumerProgress offsets are ints")
    except Exception as e:  # noqa: BLE001
        c.expect(False, f"v2 GetConsumerProgress raised {type(e).__name__} code={error_code(e)}")

    # A wrong secret: both SDKs raise SignatureDoesNotMatch.
    wrong = args.key_secret + "-wrong"
    try:
        tea_client(args.endpoint, args.key_id, wrong, args.region).get_consumer_progress(
            km.GetConsumerProgressRequest(
                region_id=args.region, instance_id=args.instance, consumer_id=args.group
            )
        )
        c.expect(False, "v3 with a wrong secret did not raise")
    except Exception as e:  # noqa: BLE001
        c.expect(error_code(e) == "SignatureDoesNotMatch",
                 f"v3 with a wrong secret raises {error_code(e)}")
    try:
        core_progress(args.endpoint, args.key_id, wrong, args.region, args.instance, args.group)
        c.expect(False, "v2 with a wrong secret did not raise")
    except Exception as e:  # noqa: BLE001
        c.expect(error_code(e) == "SignatureDoesNotMatch",
                 f"v2 with a wrong secret raises {error_code(e)}")

    if args.idle_group:
        drive_writes(args, client, c)

    print(f"{c.failures} of the checks failed" if c.failures else "all checks passed")
    return 1 if c.failures else 0


def core_update(args, group, params):
    """UpdateConsumerOffset through an aliyunsdkcore CommonRequest (signature V2)."""
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkcore.request import CommonRequest

    url = urlparse(args.endpoint)
    request = CommonRequest()
    request.set_domain(url.netloc)
    request.set_protocol_type(url.scheme or "http")
    request.set_version("2019-09-16")
    request.set_action_name("UpdateConsumerOffset")
    request.set_method("POST")
    request.set_accept_format("json")
    for name, value in [("RegionId", args.region), ("InstanceId", args.instance),
                        ("ConsumerId", group)] + params:
        request.add_query_param(name, value)
    client = AcsClient(args.key_id, args.key_secret, args.region)
    return json.loads(client.do_action_with_exception(request))


def drive_writes(args, client, c):
    """The official clients' UpdateConsumerOffset requests, as the simulator must take them."""
    from alibabacloud_alikafka20190916 import models as km

    def progress(group):
        body = client.get_consumer_progress(
            km.GetConsumerProgressRequest(region_id=args.region, instance_id=args.instance,
                                          consumer_id=group)).body
        return {(t.topic, p.partition): (p.consumer_offset, p.broker_offset)
                for t in body.consumer_progress.topic_list.topic_list or []
                for p in t.offset_list.offset_list or []}

    try:
        before = progress(args.idle_group)
        (topic, partition), (_, log_end) = sorted(before.items())[0]
        body = client.update_consumer_offset(km.UpdateConsumerOffsetRequest(
            region_id=args.region, instance_id=args.instance, consumer_id=args.idle_group,
            topic=topic, reset_type="offset",
            offsets=[km.UpdateConsumerOffsetRequestOffsets(partition=partition, offset=log_end)],
        )).body
        c.expect(body.success is True and body.code == 200,
                 f"v3 UpdateConsumerOffset with explicit offsets succeeded (Code {body.code})")
        after = progress(args.idle_group)[(topic, partition)][0]
        c.expect(after == log_end, f"v3 explicit offset read back: {after} == {log_end}")
        others = [k for k, v in progress(args.idle_group).items()
                  if k != (topic, partition) and v[0] != before[k][0]]
        c.expect(not others, f"no other partition moved ({len(others)} did)")
    except Exception as e:  # noqa: BLE001
        c.expect(False, f"v3 UpdateConsumerOffset raised {type(e).__name__} code={error_code(e)}")

    try:
        (topic, partition), (committed, _) = sorted(progress(args.idle_group).items())[-1]
        target = max(committed - 1, 0)
        offsets = json.dumps([{"Partition": partition, "Offset": target}], separators=(",", ":"))
        data = core_update(args, args.idle_group,
                           [("Topic", topic), ("ResetType", "offset"), ("Offsets", offsets)])
        c.expect(data.get("Success") is True, "v2 (aliyunsdkcore) UpdateConsumerOffset with an Offsets JSON string succeeded")
        after = progress(args.idle_group)[(topic, partition)][0]
        c.expect(after == target, f"v2 explicit offset read back: {after} == {target}")
    except Exception as e:  # noqa: BLE001
        c.expect(False, f"v2 UpdateConsumerOffset raised {type(e).__name__} code={error_code(e)}")

    try:
        before = progress(args.idle_group)
        body = client.update_consumer_offset(km.UpdateConsumerOffsetRequest(
            region_id=args.region, instance_id=args.instance, consumer_id=args.idle_group,
            topic="", reset_type="timestamp", time="-1",
        )).body
        c.expect(body.success is True, "v3 UpdateConsumerOffset of all topics to the latest offset succeeded")
        # The log ends keep growing (real time): at least the ends read before the reset.
        behind = [k for k, (committed, _) in progress(args.idle_group).items()
                  if committed < before[k][1]]
        c.expect(not behind, f"every partition at least at its log end before the reset ({len(behind)} behind)")
    except Exception as e:  # noqa: BLE001
        c.expect(False, f"v3 UpdateConsumerOffset to latest raised {type(e).__name__} code={error_code(e)}")

    try:
        body = client.update_consumer_offset(km.UpdateConsumerOffsetRequest(
            region_id=args.region, instance_id=args.instance, consumer_id=args.group,
            topic="", reset_type="timestamp", time="-2",
        )).body
        # A business failure: HTTP 200 with Success false, as alikafka answers.
        c.expect(body.success is False and "active" in (body.message or ""),
                 f"a write to the active group {args.group} is refused: {body.message!r}")
    except Exception as e:  # noqa: BLE001
        c.expect(False, f"a write to the active group raised {type(e).__name__} code={error_code(e)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", metavar="DUMP.json", help="check recorded signatures")
    parser.add_argument("--endpoint", help="simulator base URL, e.g. http://127.0.0.1:PORT")
    parser.add_argument("--key-id")
    parser.add_argument("--key-secret")
    parser.add_argument("--region")
    parser.add_argument("--instance")
    parser.add_argument("--group")
    parser.add_argument("--idle-group", help="a group without members, to write to")
    args = parser.parse_args()
    if args.requests:
        return check_requests(args.requests)
    needed = ["endpoint", "key_id", "key_secret", "region", "instance", "group"]
    if all(getattr(args, n) for n in needed):
        return drive(args)
    parser.error("give --requests DUMP.json, or all of " + ", ".join("--" + n.replace("_", "-") for n in needed))
    return 2


if __name__ == "__main__":
    sys.exit(main())
