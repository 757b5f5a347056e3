//! Alibaba Cloud's credential services, as facts the exporter's credential code and the
//! simulator share: STS (`2015-04-01`: `AssumeRoleWithOIDC`, unsigned, and `AssumeRole`,
//! signed like any RPC call) and the ECS instance metadata service (IMDSv2 token, RAM role
//! credentials).
//!
//! Values follow the official `alibabacloud-credentials` (Python 1.0.12) and
//! `credentials-go` libraries, which build these requests themselves.

/// The STS API version every request names.
pub const STS_API_VERSION: &str = "2015-04-01";
/// Assumes a RAM role with an OIDC token (ACK RRSA); sent without a signature.
pub const ASSUME_ROLE_WITH_OIDC: &str = "AssumeRoleWithOIDC";
/// Assumes a RAM role with other credentials; signed (signature V2, HMAC-SHA1).
pub const ASSUME_ROLE: &str = "AssumeRole";

/// The public STS host, when neither a region nor a VPC endpoint is chosen.
pub const DEFAULT_STS_HOST: &str = "sts.aliyuncs.com";

/// The STS host of a region, public or VPC (`sts[-vpc].<region>.aliyuncs.com`), as the SDKs
/// build it from `ALIBABA_CLOUD_STS_REGION` and `ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED`;
/// without a region, the public host (the VPC switch needs a region).
pub fn sts_host(region: Option<&str>, vpc: bool) -> String {
    let prefix = if vpc { "sts-vpc" } else { "sts" };
    match region {
        Some(r) if !r.is_empty() => format!("{prefix}.{r}.aliyuncs.com"),
        _ => DEFAULT_STS_HOST.to_string(),
    }
}

/// Session durations STS accepts, seconds: 15 minutes up to the role's maximum (at most
/// 12 hours); the SDKs default to one hour.
pub const MIN_SESSION_SECS: u64 = 900;
pub const MAX_SESSION_SECS: u64 = 43_200;
pub const DEFAULT_SESSION_SECS: u64 = 3_600;

/// The audience of the service-account token ACK RRSA projects (the OIDC provider's
/// client id), whatever STS host is called.
pub const OIDC_AUDIENCE: &str = "sts.aliyuncs.com";

/// The ECS instance metadata service.
pub const METADATA_ENDPOINT: &str = "http://100.100.100.200";
/// `PUT`: an IMDSv2 session token.
pub const METADATA_TOKEN_PATH: &str = "/latest/api/token";
/// The token's lifetime, requested in this header (seconds).
pub const METADATA_TOKEN_TTL_HEADER: &str = "x-aliyun-ecs-metadata-token-ttl-seconds";
/// The token, sent with every metadata read.
pub const METADATA_TOKEN_HEADER: &str = "x-aliyun-ecs-metadata-token";
/// The lifetime the SDKs ask for: 6 hours, the maximum.
pub const METADATA_TOKEN_TTL_SECS: u64 = 21_600;
/// `GET`: the attached RAM role's name; with the name appended, its credentials.
pub const ROLE_CREDENTIALS_PATH: &str = "/latest/meta-data/ram/security-credentials/";

/// `Code` of a metadata (or credentials URI) answer that carries credentials.
pub const METADATA_SUCCESS: &str = "Success";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sts_hosts_follow_the_sdks() {
        assert_eq!(sts_host(None, false), "sts.aliyuncs.com");
        assert_eq!(sts_host(None, true), "sts.aliyuncs.com");
        assert_eq!(
            sts_host(Some("cn-hangzhou"), false),
            "sts.cn-hangzhou.aliyuncs.com"
        );
        assert_eq!(
            sts_host(Some("cn-hangzhou"), true),
            "sts-vpc.cn-hangzhou.aliyuncs.com"
        );
    }
}
