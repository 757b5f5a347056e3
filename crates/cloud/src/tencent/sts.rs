//! Tencent Cloud's credential services, as facts the exporter's credential code and the
//! simulator share: STS (`2018-08-13`: `AssumeRoleWithWebIdentity`, sent with
//! `Authorization: SKIP`, and `AssumeRole`, signed with TC3 for service `sts`) and the CVM
//! instance metadata service (CAM role credentials).
//!
//! Values follow `tencentcloud-sdk-python-common` 3.1.195 and `tencentcloud-sdk-go`
//! (`common/credential.py`, `common/*_provider.go`).

/// `X-TC-Version` of every STS call.
pub const STS_API_VERSION: &str = "2018-08-13";
/// The TC3 signing service of STS.
pub const STS_SERVICE: &str = "sts";
/// Assumes a CAM role with an OIDC token (TKE pod identity); not signed.
pub const ASSUME_ROLE_WITH_WEB_IDENTITY: &str = "AssumeRoleWithWebIdentity";
/// Assumes a CAM role with other credentials; TC3-signed.
pub const ASSUME_ROLE: &str = "AssumeRole";
/// The `Authorization` value of an unsigned call (`SkipSign` in the SDKs).
pub const SKIP_SIGNATURE: &str = "SKIP";

/// The STS host the SDKs call.
pub const DEFAULT_STS_HOST: &str = "sts.tencentcloudapi.com";
/// `X-TC-Region` of `AssumeRole` in both SDKs (STS is global).
pub const ASSUME_ROLE_REGION: &str = "ap-guangzhou";

/// Session durations STS accepts, seconds; the SDKs default to two hours.
pub const MIN_SESSION_SECS: u64 = 1;
pub const MAX_SESSION_SECS: u64 = 43_200;
pub const DEFAULT_SESSION_SECS: u64 = 7_200;

/// The audience (CAM OIDC provider client id) TKE's pod-identity webhook projects by
/// default.
pub const OIDC_AUDIENCE: &str = "sts.cloud.tencent.com";

/// The CVM instance metadata service.
pub const METADATA_ENDPOINT: &str = "http://metadata.tencentyun.com";
/// `GET`: the bound CAM role's name; with the name appended, its credentials.
pub const ROLE_CREDENTIALS_PATH: &str = "/latest/meta-data/cam/security-credentials/";
/// `Code` of a metadata answer that carries credentials.
pub const METADATA_SUCCESS: &str = "Success";
