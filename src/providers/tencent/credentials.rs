//! Tencent Cloud's credential sources, as `tencentcloud-sdk-python-common` 3.1.195 and
//! `tencentcloud-sdk-go` implement them: the standard variables, the default chain's
//! order, STS `AssumeRoleWithWebIdentity` (TKE pod identity, `Authorization: SKIP`) and
//! `AssumeRole` (TC3, service `sts`), the CVM metadata service, and the profile file
//! (`~/.tencentcloud/credentials`).
//!
//! Refresh rules, the SDKs': CVM role credentials when fewer than 300 s remain; web
//! identity ones once `ExpiredTime` minus a tenth of the duration has passed; assumed
//! roles once a tenth of the duration has passed (both SDKs take `ExpiredTime - 0.9 ×
//! duration`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kcle_cloud::tencent::{sign, sts};
use serde::Deserialize;

use super::super::credentials::{
    Answer, AssumeRolePlan, AssumedRole, FieldError, InstancePlan, OidcPlan, OidcVariables, Plan,
    Wire, describe_oidc, endpoint, home, host_header, metadata_role, metadata_url, parse_ini,
    read_token, resolve_oidc, scrub, shape_error, temporary, url, with_assumed_role,
};
use super::super::http::HttpRequest;
use super::PROFILE;
use crate::credentials::{
    BaseSource, CredentialProvider, CredentialSources, CredentialSpec, Environment, Fetch,
    FetchError, FetchFuture, Issued, OidcSpec, Secret, SourceKind,
};
use kcle_clock::unix_secs;

const ROLE_ARN: &str = "TKE_ROLE_ARN";
const PROVIDER_ID: &str = "TKE_PROVIDER_ID";
const TOKEN_FILE: &str = "TKE_WEB_IDENTITY_TOKEN_FILE";
const REGION: &str = "TKE_REGION";
const CREDENTIALS_FILE: &str = "TENCENTCLOUD_CREDENTIALS_FILE";

/// Every variable Tencent's credential code reads, besides the static keys'.
pub const VARIABLES: &[&str] = &[ROLE_ARN, PROVIDER_ID, TOKEN_FILE, REGION, CREDENTIALS_FILE];

/// The profile file under the home directory, then the system-wide one (Python SDK).
const PROFILE_FILE: &str = ".tencentcloud/credentials";
const SYSTEM_PROFILE_FILE: &str = "/etc/tencentcloud/credentials";

/// STS answers within this.
const STS_TIMEOUT: Duration = Duration::from_secs(10);
/// Each metadata request within this, so that a host without a metadata service fails
/// fast (the SDKs set none; a second is ample on a CVM).
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(1);
/// CVM role credentials are refreshed when fewer than this remain (both SDKs).
const CVM_REFRESH_BEFORE: Duration = Duration::from_secs(300);
/// The content type signed and sent.
const JSON: &str = "application/json";

fn default_duration() -> Duration {
    Duration::from_secs(sts::DEFAULT_SESSION_SECS)
}

/// Resolves `spec` (see [`super::super::credentials::resolve`]); `region` is the
/// account's, the web-identity call's region when neither `oidc.region` nor `TKE_REGION`
/// gives one.
pub fn resolve(spec: &CredentialSpec, env: &Environment, region: &str) -> Result<Plan, FieldError> {
    let sts_url = match &spec.sts_endpoint {
        Some(e) => endpoint("sts_endpoint", e)?,
        None => {
            reqwest::Url::parse(&format!("https://{}", sts::DEFAULT_STS_HOST)).expect("a valid URL")
        }
    };
    let ctx = Ctx {
        env,
        spec,
        sts: &sts_url,
        region,
    };
    let base = match &spec.base {
        BaseSource::DefaultChain => ctx.default_chain()?,
        BaseSource::Keys(sources) => Plan::Keys(sources.clone()),
        BaseSource::Oidc(oidc) => Plan::Oidc(ctx.oidc(oidc)?),
        BaseSource::InstanceRole { name } => Plan::Instance(ctx.instance(name.clone())?),
        BaseSource::Profile { name, file } => ctx.profile(name.as_deref(), file.clone())?,
    };
    Ok(with_assumed_role(base, spec, &sts_url, default_duration()))
}

struct Ctx<'a> {
    env: &'a Environment,
    spec: &'a CredentialSpec,
    sts: &'a reqwest::Url,
    region: &'a str,
}

impl Ctx<'_> {
    /// The Python SDK's `DefaultCredentialProvider` order: environment keys, the profile
    /// file, the CVM role, TKE pod identity.
    fn default_chain(&self) -> Result<Plan, FieldError> {
        let env = self.env;
        let mut members = Vec::new();
        let keys = PROFILE.credential_env;
        if env.var(keys.id).is_some() && env.var(keys.secret).is_some() {
            members.push(Plan::Keys(CredentialSources::standard(&keys)));
        }
        if let Some(path) = self.profile_path(None).filter(|p| p.exists()) {
            members.push(
                self.profile(None, Some(path))
                    .unwrap_or_else(|e| Plan::Broken(SourceKind::Profile, e.to_string())),
            );
        }
        members.push(Plan::Instance(self.instance(None)?));
        if [REGION, PROVIDER_ID, TOKEN_FILE, ROLE_ARN]
            .iter()
            .all(|v| env.var(v).is_some())
        {
            members.push(
                self.oidc(&OidcSpec::default())
                    .map(Plan::Oidc)
                    .unwrap_or_else(|e| Plan::Broken(SourceKind::Oidc, e.to_string())),
            );
        }
        Ok(Plan::Chain(members))
    }

    fn oidc(&self, oidc: &OidcSpec) -> Result<OidcPlan, FieldError> {
        let vars = OidcVariables {
            role_arn: ROLE_ARN,
            provider: PROVIDER_ID,
            token_file: TOKEN_FILE,
            session_name: None,
            region: Some(REGION),
        };
        resolve_oidc(
            oidc,
            self.env,
            &vars,
            self.sts,
            default_duration(),
            self.region,
        )
    }

    fn instance(&self, name: Option<String>) -> Result<InstancePlan, FieldError> {
        Ok(InstancePlan {
            endpoint: metadata_url(self.spec, sts::METADATA_ENDPOINT)?,
            role: name,
            imds_v1: true,
        })
    }

    /// The profile file: the named one, `TENCENTCLOUD_CREDENTIALS_FILE`, the home
    /// directory's, else the system-wide one.
    fn profile_path(&self, file: Option<PathBuf>) -> Option<PathBuf> {
        file.or_else(|| self.env.var(CREDENTIALS_FILE).map(PathBuf::from))
            .or_else(|| {
                home(self.env)
                    .map(|h| h.join(PROFILE_FILE))
                    .filter(|p| p.exists())
            })
            .or_else(|| Some(PathBuf::from(SYSTEM_PROFILE_FILE)))
    }

    /// A section (`default` unless named) of the profile file: `secret_id`, `secret_key`.
    fn profile(&self, name: Option<&str>, file: Option<PathBuf>) -> Result<Plan, FieldError> {
        let path = self.profile_path(file).expect("a path is always chosen");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            FieldError::new(
                "profile.file",
                format!("cannot read {}: {}", path.display(), e.kind()),
            )
        })?;
        let at =
            |field: &str, m: String| FieldError::new(field, format!("{}: {m}", path.display()));
        let ini = parse_ini(&text).map_err(|e| at("profile.file", e))?;
        let name = name.unwrap_or("default");
        let section = ini
            .get(name)
            .ok_or_else(|| at("profile.name", format!("no section [{name}]")))?;
        let get = |key: &str| {
            section
                .get(key)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| at("profile.file", format!("section [{name}] has no {key}")))
        };
        Ok(Plan::Keys(CredentialSources::inline(
            get("secret_id")?,
            get("secret_key")?,
            None,
        )))
    }
}

/// The source of a resolved OIDC or instance plan.
pub fn fetcher(plan: Plan, wire: Wire) -> Arc<dyn Fetch> {
    match plan {
        Plan::Oidc(plan) => Arc::new(WebIdentityFetch { plan, wire }),
        Plan::Instance(plan) => Arc::new(CvmFetch { plan, wire }),
        other => unreachable!("built elsewhere: {other:?}"),
    }
}

/// A role assumed with `base`'s credentials.
pub fn assume_role(plan: AssumeRolePlan, base: CredentialProvider, wire: Wire) -> Arc<dyn Fetch> {
    Arc::new(AssumeRoleFetch(AssumedRole { plan, base, wire }))
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Response")]
    response: StsResponse,
}

#[derive(Deserialize)]
struct StsResponse {
    #[serde(rename = "Credentials")]
    credentials: Option<TmpCredentials>,
    #[serde(rename = "ExpiredTime")]
    expired_time: Option<i64>,
    #[serde(rename = "Error")]
    error: Option<ApiError>,
    #[serde(rename = "RequestId")]
    request_id: Option<String>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(rename = "Code")]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

/// No `Debug`: it holds secrets.
#[derive(Deserialize)]
struct TmpCredentials {
    #[serde(rename = "TmpSecretId")]
    tmp_secret_id: String,
    #[serde(rename = "TmpSecretKey")]
    tmp_secret_key: String,
    #[serde(rename = "Token")]
    token: String,
}

/// Reads an STS answer: `Response.Credentials` and `ExpiredTime`, or `Response.Error`;
/// `refresh_before` is how long before `ExpiredTime` to refresh.
fn sts_answer(
    kind: SourceKind,
    action: &str,
    answer: Answer,
    now: SystemTime,
    refresh_before: Duration,
    secrets: &[&str],
) -> Result<Issued, FetchError> {
    if answer.status != 200 {
        return Err(FetchError::new(
            kind,
            format!("STS {action} failed with http {}", answer.status),
        ));
    }
    let what = format!("the STS {action} answer");
    let envelope: Envelope = serde_json::from_slice(&answer.body)
        .map_err(|e| FetchError::new(kind, shape_error(&what, &e)))?;
    let r = envelope.response;
    if let Some(error) = r.error {
        return Err(FetchError::new(
            kind,
            format!(
                "STS {action} failed: {}: {} (request id {})",
                error.code,
                scrub(error.message.trim_end_matches('.'), secrets),
                r.request_id.as_deref().unwrap_or("none")
            ),
        ));
    }
    let (Some(c), Some(expired)) = (r.credentials, r.expired_time) else {
        return Err(FetchError::new(
            kind,
            format!("{what} has no Credentials or ExpiredTime"),
        ));
    };
    issued(kind, &what, c, expired, now, refresh_before)
}

fn issued(
    kind: SourceKind,
    what: &str,
    c: TmpCredentials,
    expired_time: i64,
    now: SystemTime,
    refresh_before: Duration,
) -> Result<Issued, FetchError> {
    let expires = kcle_clock::from_unix_millis(expired_time.saturating_mul(1000));
    let credentials = temporary(kind, what, c.tmp_secret_id, c.tmp_secret_key, c.token)?;
    Ok(Issued {
        credentials: Arc::new(credentials),
        expires_at: Some(expires),
        refresh_at: Some(expires.checked_sub(refresh_before).unwrap_or(now).max(now)),
    })
}

/// The common part of an STS request; `authorization` is the signature or `SKIP`.
fn sts_request(
    sts_url: &reqwest::Url,
    action: &str,
    region: &str,
    timestamp: i64,
    body: Vec<u8>,
    authorization: &str,
    token: Option<&Secret>,
) -> Result<HttpRequest, super::super::http::InvalidHeader> {
    let mut request = HttpRequest::post(url(sts_url, "/"))
        .header("content-type", JSON)?
        .header("host", &host_header(sts_url))?
        .header("x-tc-action", action)?
        .header("x-tc-version", sts::STS_API_VERSION)?
        .header("x-tc-region", region)?
        .header("x-tc-timestamp", &timestamp.to_string())?
        .secret_header("authorization", authorization)?;
    if let Some(token) = token {
        request = request.secret_header("x-tc-token", token.expose())?;
    }
    Ok(request.with_body(body))
}

/// STS `AssumeRoleWithWebIdentity` with the token file's current token (TKE pod identity).
#[derive(Debug)]
struct WebIdentityFetch {
    plan: OidcPlan,
    wire: Wire,
}

impl Fetch for WebIdentityFetch {
    fn kind(&self) -> SourceKind {
        SourceKind::Oidc
    }
    fn describe(&self) -> String {
        describe_oidc(&self.plan)
    }
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(async move {
            let kind = SourceKind::Oidc;
            let action = sts::ASSUME_ROLE_WITH_WEB_IDENTITY;
            let token = read_token(kind, &self.plan.token_file)?;
            let now = self.wire.now();
            let body = serde_json::json!({
                "ProviderId": self.plan.provider,
                "WebIdentityToken": token.expose(),
                "RoleArn": self.plan.role_arn,
                "RoleSessionName": self.plan.session_name,
                "DurationSeconds": self.plan.duration.as_secs(),
            })
            .to_string()
            .into_bytes();
            let request = sts_request(
                &self.plan.sts,
                action,
                &self.plan.region,
                unix_secs(now),
                body,
                sts::SKIP_SIGNATURE,
                None,
            )
            .map_err(|e| FetchError::new(kind, e.to_string()))?;
            let service = format!("STS at {}", self.plan.sts);
            let answer = self
                .wire
                .exchange(kind, &service, request, STS_TIMEOUT)
                .await?;
            sts_answer(
                kind,
                action,
                answer,
                now,
                self.plan.duration / 10,
                &[token.expose()],
            )
        })
    }
}

/// STS `AssumeRole`, TC3-signed with the base credentials.
#[derive(Debug)]
struct AssumeRoleFetch(AssumedRole);

impl Fetch for AssumeRoleFetch {
    fn kind(&self) -> SourceKind {
        SourceKind::AssumeRole
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn kinds(&self) -> Vec<SourceKind> {
        self.0.kinds()
    }
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(async move {
            let kind = SourceKind::AssumeRole;
            let action = sts::ASSUME_ROLE;
            let AssumedRole { plan, wire, .. } = &self.0;
            let base = self.0.base_credentials().await?;
            let now = wire.now();
            let timestamp = unix_secs(now);
            let mut body = serde_json::json!({
                "RoleArn": plan.role_arn,
                "RoleSessionName": plan.session_name,
                "DurationSeconds": plan.duration.as_secs(),
            });
            if let Some(id) = &plan.external_id {
                body["ExternalId"] = id.clone().into();
            }
            let payload = body.to_string().into_bytes();
            let host = host_header(&plan.sts);
            let signed = sign::sign(
                &sign::Request {
                    method: "POST",
                    headers: &[("content-type", JSON), ("host", &host)],
                    payload: &payload,
                    timestamp,
                    service: sts::STS_SERVICE,
                },
                &base.id,
                base.secret.expose(),
            )
            .map_err(|e| FetchError::new(kind, format!("cannot sign: {e}")))?;
            let request = sts_request(
                &plan.sts,
                action,
                sts::ASSUME_ROLE_REGION,
                timestamp,
                payload,
                &signed.authorization,
                base.token.as_ref(),
            )
            .map_err(|e| FetchError::new(kind, e.to_string()))?;
            let service = format!("STS at {}", plan.sts);
            let answer = wire.exchange(kind, &service, request, STS_TIMEOUT).await?;
            let token = base.token.as_ref().map(Secret::expose).unwrap_or_default();
            sts_answer(
                kind,
                action,
                answer,
                now,
                plan.duration.mul_f64(0.9),
                &[base.secret.expose(), token],
            )
        })
    }
}

/// The CVM instance's CAM role, from the metadata service.
#[derive(Debug)]
struct CvmFetch {
    plan: InstancePlan,
    wire: Wire,
}

impl CvmFetch {
    fn service(&self) -> String {
        format!("the CVM metadata service at {}", self.plan.endpoint)
    }

    async fn read(&self, path: &str) -> Result<Answer, FetchError> {
        let request = HttpRequest::get(url(&self.plan.endpoint, path));
        self.wire
            .exchange(
                SourceKind::InstanceRole,
                &self.service(),
                request,
                METADATA_TIMEOUT,
            )
            .await
    }
}

/// The metadata service's answer. No `Debug`: it holds secrets.
#[derive(Deserialize)]
struct CvmCredentials {
    #[serde(rename = "Code")]
    code: Option<String>,
    #[serde(rename = "ExpiredTime")]
    expired_time: i64,
    #[serde(flatten)]
    credentials: TmpCredentials,
}

impl Fetch for CvmFetch {
    fn kind(&self) -> SourceKind {
        SourceKind::InstanceRole
    }
    fn describe(&self) -> String {
        match &self.plan.role {
            Some(role) => format!("CVM CAM role {role} ({})", self.service()),
            None => format!("the CVM instance's CAM role ({})", self.service()),
        }
    }
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(async move {
            let kind = SourceKind::InstanceRole;
            let role = match &self.plan.role {
                Some(role) => role.clone(),
                None => {
                    let answer = self.read(sts::ROLE_CREDENTIALS_PATH).await.map_err(|e| {
                        FetchError::new(
                            kind,
                            format!(
                                "{}: not a CVM instance, or its metadata service is blocked",
                                e.message
                            ),
                        )
                    })?;
                    metadata_role(
                        &answer,
                        &self.service(),
                        "no CAM role is bound to this CVM instance",
                        "CAM role",
                    )?
                }
            };
            let now = self.wire.now();
            let answer = self
                .read(&format!("{}{role}", sts::ROLE_CREDENTIALS_PATH))
                .await?;
            if answer.status != 200 {
                return Err(FetchError::new(
                    kind,
                    format!(
                        "{} answered http {} for the credentials of {role}",
                        self.service(),
                        answer.status
                    ),
                ));
            }
            let what = format!("the credentials of CAM role {role}");
            let c: CvmCredentials = serde_json::from_slice(&answer.body)
                .map_err(|e| FetchError::new(kind, shape_error(&what, &e)))?;
            if c.code.as_deref() != Some(sts::METADATA_SUCCESS) {
                return Err(FetchError::new(
                    kind,
                    format!(
                        "{what}: Code is {:?}, not {:?}",
                        c.code.unwrap_or_default(),
                        sts::METADATA_SUCCESS
                    ),
                ));
            }
            issued(
                kind,
                &what,
                c.credentials,
                c.expired_time,
                now,
                CVM_REFRESH_BEFORE,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_with(spec: &CredentialSpec, vars: &[(&str, &str)]) -> Result<Plan, FieldError> {
        resolve(
            spec,
            &Environment::fixed(vars.iter().copied()),
            "ap-guangzhou",
        )
    }

    fn kinds(plan: &Plan) -> Vec<&'static str> {
        let Plan::Chain(members) = plan else {
            panic!("{plan:?}")
        };
        members
            .iter()
            .map(|m| match m {
                Plan::Keys(_) => "keys",
                Plan::Oidc(_) => "oidc",
                Plan::Instance(_) => "instance",
                Plan::Broken(..) => "broken",
                _ => "other",
            })
            .collect()
    }

    /// The Python SDK's order: environment, profile file, CVM role, TKE OIDC.
    #[test]
    fn default_chain_order() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        std::fs::create_dir_all(home.join(".tencentcloud")).unwrap();
        std::fs::write(
            home.join(PROFILE_FILE),
            "[default]\nsecret_id = AKIDfile\nsecret_key = k\n",
        )
        .unwrap();
        std::fs::write(home.join("token"), "jwt").unwrap();
        let t = home.join("token");
        let vars = [
            ("TENCENTCLOUD_SECRET_ID", "AKID"),
            ("TENCENTCLOUD_SECRET_KEY", "k"),
            ("HOME", home.to_str().unwrap()),
            (REGION, "ap-shanghai"),
            (PROVIDER_ID, "p"),
            (TOKEN_FILE, t.to_str().unwrap()),
            (ROLE_ARN, "qcs::cam::uin/1:roleName/r"),
        ];
        let chain = CredentialSpec::default_chain();
        assert_eq!(
            kinds(&resolve_with(&chain, &vars).unwrap()),
            ["keys", "keys", "instance", "oidc"]
        );
        assert_eq!(
            kinds(&resolve_with(&chain, &vars[2..]).unwrap()),
            ["keys", "instance", "oidc"]
        );
        // Three of the four TKE variables are not enough.
        assert_eq!(
            kinds(&resolve_with(&chain, &vars[3..6]).unwrap()),
            ["instance"]
        );
        let Plan::Chain(members) = resolve_with(&chain, &vars[3..]).unwrap() else {
            panic!()
        };
        let Plan::Oidc(p) = &members[1] else { panic!() };
        assert_eq!(p.region, "ap-shanghai");
        assert_eq!(p.duration, Duration::from_secs(7200));
        assert_eq!(p.sts.as_str(), "https://sts.tencentcloudapi.com/");
    }

    #[test]
    fn explicit_oidc_takes_the_account_region_last() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("token");
        std::fs::write(&t, "jwt").unwrap();
        let spec = CredentialSpec::from_base(BaseSource::Oidc(OidcSpec {
            role_arn: Some("r".into()),
            provider: Some("p".into()),
            token_file: Some(t),
            ..OidcSpec::default()
        }));
        let Plan::Oidc(p) = resolve_with(&spec, &[]).unwrap() else {
            panic!()
        };
        assert_eq!(p.region, "ap-guangzhou");
        let e = resolve_with(
            &CredentialSpec::from_base(BaseSource::Oidc(OidcSpec::default())),
            &[(ROLE_ARN, "r")],
        )
        .unwrap_err();
        assert_eq!(e.field, "oidc.provider");
        assert!(e.message.contains(PROVIDER_ID), "{e}");
    }

    #[test]
    fn profile_sections_name_the_field_at_fault() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("credentials");
        std::fs::write(
            &f,
            "[default]\nsecret_id = AKIDp\nsecret_key = \"k\"\n[bad]\nsecret_id = x\n",
        )
        .unwrap();
        let spec = |name: Option<&str>| {
            CredentialSpec::from_base(BaseSource::Profile {
                name: name.map(str::to_string),
                file: Some(f.clone()),
            })
        };
        assert_eq!(
            resolve_with(&spec(None), &[]).unwrap(),
            Plan::Keys(CredentialSources::inline("AKIDp", "k", None))
        );
        assert_eq!(
            resolve_with(&spec(Some("nope")), &[]).unwrap_err().field,
            "profile.name"
        );
        let e = resolve_with(&spec(Some("bad")), &[]).unwrap_err();
        assert_eq!(e.field, "profile.file");
        assert!(e.message.contains("secret_key"), "{e}");
    }

    #[test]
    fn refresh_rules_are_the_sdks() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let c = || TmpCredentials {
            tmp_secret_id: "AKIDtmp".into(),
            tmp_secret_key: "k".into(),
            token: "t".into(),
        };
        let expired = 1000 + 7200;
        let at = |before: Duration| {
            issued(SourceKind::Oidc, "x", c(), expired, now, before)
                .unwrap()
                .refresh_at
                .unwrap()
        };
        let secs = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(at(CVM_REFRESH_BEFORE), secs(8200 - 300));
        assert_eq!(at(Duration::from_secs(7200) / 10), secs(8200 - 720));
        assert_eq!(at(Duration::from_secs(7200).mul_f64(0.9)), secs(1000 + 720));
    }
}
