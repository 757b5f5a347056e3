#!/usr/bin/env python3
"""Independent proof of the simulator's credential services with the official libraries.

The official credential providers are pointed at a running simulator (`kafka-cloud-lag-exporter
simulator --write-config DIR`, on the real clock) and must accept its answers; the temporary
keys they get must then work with the official API clients:

  Alibaba, alibabacloud-credentials==1.0.12:
    OIDCRoleArnCredentialsProvider   STS AssumeRoleWithOIDC (GET, every parameter in the query)
    RamRoleArnCredentialsProvider    STS AssumeRole, signed (HMAC-SHA1) with the static key,
                                     with the role's external id; a wrong one must be refused
    EcsRamRoleCredentialsProvider    ECS metadata (IMDSv2 token, role name, credentials)
    URLCredentialsProvider           ALIBABA_CLOUD_CREDENTIALS_URI
  then GetConsumerProgress with alibabacloud-alikafka20190916 and each temporary key.
  Tencent, tencentcloud-sdk-python-common==3.1.195:
    OIDCRoleArnCredential            STS AssumeRoleWithWebIdentity (Authorization: SKIP)
    STSAssumeRoleCredential          STS AssumeRole, TC3-signed for service sts
    CVMRoleCredential                CVM metadata (role name, credentials)
  then DescribeGroupOffsets with tencentcloud-sdk-python-ckafka and each temporary key.

The libraries hard-code https for STS; the simulator speaks http on loopback, so the
transports are switched to http (the requests themselves are built by the libraries), and
the metadata hosts are pointed at the simulator's listeners.

    python tools/sdk_crosscheck/credentials.py --simulator-output SIM.out --dir DIR

SIM.out is the simulator's stdout (`name=value` lines); DIR holds its key and OIDC token
files. Exits 1 on any failure. Secrets, tokens and keys are never printed.
"""

import argparse
import logging
import os
import sys
import urllib.parse


class Checks:
    def __init__(self):
        self.failures = 0

    def run(self, name, fn):
        try:
            detail = fn()
            print(f"OK   {name}: {detail}")
        except Exception as e:  # noqa: BLE001 (every failure is reported, then counted)
            self.failures += 1
            print(f"FAIL {name}: {type(e).__name__}: {str(e)[:300]}")


def values(path):
    out = {}
    for line in open(path):
        name, sep, value = line.strip().partition("=")
        if sep:
            out[name] = value
    return out


def hostport(url):
    return urllib.parse.urlparse(url).netloc


def force_http():
    """The libraries build https URLs for STS; the simulator is plain http on loopback."""
    from Tea.core import TeaCore
    from tencentcloud.common.profile import http_profile

    original = TeaCore.do_action

    def do_action(request, runtime_option=None):
        request.protocol = "http"
        return original(request, runtime_option)

    TeaCore.do_action = staticmethod(do_action)

    init = http_profile.HttpProfile.__init__

    def profile_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.protocol = self.scheme = "http"

    http_profile.HttpProfile.__init__ = profile_init


def alikafka_progress(endpoint, creds, region, instance, group):
    from alibabacloud_alikafka20190916 import models as km
    from alibabacloud_alikafka20190916.client import Client
    from alibabacloud_tea_openapi.utils_models import Config

    url = urllib.parse.urlparse(endpoint)
    client = Client(Config(
        access_key_id=creds.get_access_key_id(),
        access_key_secret=creds.get_access_key_secret(),
        security_token=creds.get_security_token(),
        endpoint=url.netloc,
        protocol=url.scheme,
        region_id=region,
    ))
    body = client.get_consumer_progress(km.GetConsumerProgressRequest(
        region_id=region, instance_id=instance, consumer_id=group)).body
    assert body.success, body.message
    return body.consumer_progress.total_diff


def ckafka_offsets(endpoint, secret_id, secret_key, token, region, instance, group):
    from tencentcloud.ckafka.v20190819 import ckafka_client, models
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile

    url = urllib.parse.urlparse(endpoint)
    profile = HttpProfile(endpoint=url.netloc, protocol=url.scheme)
    client = ckafka_client.CkafkaClient(
        credential.Credential(secret_id, secret_key, token), region, ClientProfile(httpProfile=profile))
    req = models.DescribeGroupOffsetsRequest()
    req.InstanceId, req.Group = instance, group
    return f"{client.DescribeGroupOffsets(req).Result.TotalCount} topics"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--simulator-output", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--alibaba-region", default="cn-hangzhou")
    p.add_argument("--alibaba-instance", default="alikafka_post-cn-sim0001")
    p.add_argument("--tencent-region", default="ap-guangzhou")
    p.add_argument("--tencent-instance", default="ckafka-sim0001")
    p.add_argument("--group", default="group-0001")
    args = p.parse_args()
    v = values(args.simulator_output)
    read = lambda name: open(os.path.join(args.dir, name)).read().strip()  # noqa: E731
    # The simulator is on loopback: never through a proxy from the environment.
    os.environ["NO_PROXY"] = ",".join(filter(None, [os.environ.get("NO_PROXY", ""), "127.0.0.1", "localhost"]))
    force_http()
    c = Checks()

    from alibabacloud_credentials.provider import (
        EcsRamRoleCredentialsProvider, OIDCRoleArnCredentialsProvider,
        RamRoleArnCredentialsProvider, URLCredentialsProvider)
    # The library logs every refresh (and the expected refusal, with its traceback) to
    # stderr itself; the checks below say what matters.
    logging.getLogger("credentials").disabled = True

    ali = (v["alibaba_endpoint"], args.alibaba_region, args.alibaba_instance, args.group)

    def ali_check(provider):
        creds = provider.get_credentials()
        assert creds.get_access_key_id().startswith("STS."), "not a temporary key"
        return f"GetConsumerProgress with the temporary key: TotalDiff {alikafka_progress(ali[0], creds, *ali[1:])}"

    c.run("alibaba AssumeRoleWithOIDC (OIDCRoleArnCredentialsProvider)", lambda: ali_check(
        OIDCRoleArnCredentialsProvider(
            role_arn=v["alibaba_role_arn"], oidc_provider_arn=v["alibaba_oidc_provider"],
            oidc_token_file_path=os.path.join(args.dir, "oidc-token-alibaba"),
            role_session_name="sdk-crosscheck", duration_seconds=900,
            sts_endpoint=hostport(v["alibaba_sts_endpoint"]))))
    c.run("alibaba AssumeRole (RamRoleArnCredentialsProvider)", lambda: ali_check(
        RamRoleArnCredentialsProvider(
            access_key_id=read("alibaba-key-id"), access_key_secret=read("alibaba-key-secret"),
            role_arn=v["alibaba_cross_account_role"], role_session_name="sdk-crosscheck",
            external_id=v["external_id"], duration_seconds=900,
            sts_endpoint=hostport(v["alibaba_sts_endpoint"]))))

    def wrong_external_id():
        try:
            RamRoleArnCredentialsProvider(
                access_key_id=read("alibaba-key-id"), access_key_secret=read("alibaba-key-secret"),
                role_arn=v["alibaba_cross_account_role"], role_session_name="sdk-crosscheck",
                external_id="not-the-external-id",
                sts_endpoint=hostport(v["alibaba_sts_endpoint"])).get_credentials()
        except Exception as e:  # noqa: BLE001
            assert "NoPermission" in str(e), str(e)[:200]
            return "refused with NoPermission"
        raise AssertionError("a wrong external id was accepted")

    c.run("alibaba AssumeRole refuses a wrong ExternalId", wrong_external_id)

    def ecs():
        provider = EcsRamRoleCredentialsProvider(async_update_enabled=False)
        provider._EcsRamRoleCredentialsProvider__metadata_service_host = hostport(v["alibaba_metadata_endpoint"])
        return ali_check(provider)

    c.run("alibaba ECS metadata (EcsRamRoleCredentialsProvider, IMDSv2)", ecs)
    c.run("alibaba credentials URI (URLCredentialsProvider)",
          lambda: ali_check(URLCredentialsProvider(uri=v["alibaba_credentials_uri"])))

    from tencentcloud.common.credential import (
        CVMRoleCredential, OIDCRoleArnCredential, STSAssumeRoleCredential)

    tc = (v["tencent_endpoint"], args.tencent_region, args.tencent_instance, args.group)

    def tc_check(cred):
        secret_id, secret_key, token = cred.get_credential_info()
        assert secret_id and secret_key and token, "no temporary key"
        return f"DescribeGroupOffsets with the temporary key: {ckafka_offsets(tc[0], secret_id, secret_key, token, *tc[1:])}"

    c.run("tencent AssumeRoleWithWebIdentity (OIDCRoleArnCredential)", lambda: tc_check(
        OIDCRoleArnCredential(
            args.tencent_region, v["tencent_oidc_provider"], read("oidc-token-tencent"),
            v["tencent_role_arn"], "sdk-crosscheck", 900, endpoint=hostport(v["tencent_sts_endpoint"]))))
    c.run("tencent AssumeRole (STSAssumeRoleCredential)", lambda: tc_check(
        STSAssumeRoleCredential(
            read("tencent-key-id"), read("tencent-key-secret"), v["tencent_role_arn"], "sdk-crosscheck",
            900, endpoint=hostport(v["tencent_sts_endpoint"]))))

    def cvm():
        cred = CVMRoleCredential()
        cred._role_endpoint = v["tencent_metadata_endpoint"] + "/latest/meta-data/cam/security-credentials/"
        return tc_check(cred)

    c.run("tencent CVM metadata (CVMRoleCredential)", cvm)

    print(f"{8 - c.failures} of 8 checks passed")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
