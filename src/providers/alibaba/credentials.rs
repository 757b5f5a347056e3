//! Alibaba Cloud's credential sources, as the official `alibabacloud-credentials` (Python
//! 1.0.12) and `credentials-go` libraries implement them: the standard variables, the
//! default chain's order, STS `AssumeRoleWithOIDC` (ACK RRSA, unsigned) and `AssumeRole`
//! (signature V2), the ECS metadata service (IMDSv2 token with the documented fallback to
//! IMDSv1), `ALIBABA_CLOUD_CREDENTIALS_URI`, and the CLI (`~/.aliyun/config.json`) and SDK
//! (`~/.alibabacloud/credentials.ini`) profile files.
//!
//! Requests take `credentials-go`'s form: `POST` with the protocol parameters in the query
//! and the operation's in a form body, so that the OIDC token never travels in a URL.
//! Refresh rule: 15 minutes before expiry (the Python library's stale time), or 3 minutes
//! before for credentials issued for less than that (the Go library's rule).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kcle_cloud::alibaba::{sign, sts};
use serde::Deserialize;

use super::super::credentials::{
    Answer, AssumeRolePlan, AssumedRole, FieldError, InstancePlan, OidcPlan, OidcVariables, Plan,
    Wire, describe_oidc, endpoint, home, metadata_role, metadata_url, parse_ini, read_token,
    resolve_oidc, scrub, shape_error, temporary, url, with_assumed_role,
};
use super::super::http::HttpRequest;
use super::PROFILE;
use crate::credentials::spec::DEFAULT_SESSION_NAME;
use crate::credentials::{
    BaseSource, CredentialProvider, CredentialSources, CredentialSpec, Fetch, FetchError,
    FetchFuture, Issued, OidcSpec, Secret, SourceKind,
};
use kcle_clock::unix_secs;

const ROLE_ARN: &str = "ALIBABA_CLOUD_ROLE_ARN";
const OIDC_PROVIDER_ARN: &str = "ALIBABA_CLOUD_OIDC_PROVIDER_ARN";
const OIDC_TOKEN_FILE: &str = "ALIBABA_CLOUD_OIDC_TOKEN_FILE";
const ROLE_SESSION_NAME: &str = "ALIBABA_CLOUD_ROLE_SESSION_NAME";
const STS_REGION: &str = "ALIBABA_CLOUD_STS_REGION";
const VPC_ENDPOINT_ENABLED: &str = "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED";
const ECS_METADATA: &str = "ALIBABA_CLOUD_ECS_METADATA";
const ECS_METADATA_DISABLED: &str = "ALIBABA_CLOUD_ECS_METADATA_DISABLED";
const IMDSV1_DISABLED: &str = "ALIBABA_CLOUD_IMDSV1_DISABLED";
const CLI_PROFILE_DISABLED: &str = "ALIBABA_CLOUD_CLI_PROFILE_DISABLED";
const PROFILE_NAME: &str = "ALIBABA_CLOUD_PROFILE";
const CREDENTIALS_FILE: &str = "ALIBABA_CLOUD_CREDENTIALS_FILE";
const CREDENTIALS_URI: &str = "ALIBABA_CLOUD_CREDENTIALS_URI";

/// Every variable Alibaba's credential code reads, besides the static keys'.
pub const VARIABLES: &[&str] = &[
    ROLE_ARN,
    OIDC_PROVIDER_ARN,
    OIDC_TOKEN_FILE,
    ROLE_SESSION_NAME,
    STS_REGION,
    VPC_ENDPOINT_ENABLED,
    ECS_METADATA,
    ECS_METADATA_DISABLED,
    IMDSV1_DISABLED,
    CLI_PROFILE_DISABLED,
    PROFILE_NAME,
    CREDENTIALS_FILE,
    CREDENTIALS_URI,
];

/// The CLI's configuration file, under the home directory.
const CLI_CONFIG: &str = ".aliyun/config.json";
/// The SDKs' credentials file, under the home directory.
const CREDENTIALS_INI: &str = ".alibabacloud/credentials.ini";

/// STS answers within this (the SDKs' 5 s connect and 10 s read timeouts, together).
const STS_TIMEOUT: Duration = Duration::from_secs(10);
/// Each metadata request within this (the SDKs' 1 s), so that a host without a metadata
/// service (a laptop) fails fast.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(1);
/// The credentials URI answers within this (the SDKs' read timeout).
const URI_TIMEOUT: Duration = Duration::from_secs(10);
/// Refresh this long before expiry (`alibabacloud-credentials`' stale time)...
const REFRESH_BEFORE: Duration = Duration::from_secs(15 * 60);
/// ...or this long before, for credentials issued for less (`credentials-go`).
const SHORT_REFRESH_BEFORE: Duration = Duration::from_secs(180);
/// Profiles that assume roles from other profiles, at most this deep.
const MAX_PROFILE_DEPTH: usize = 8;

/// When to refresh credentials issued at `now` that expire at `expires`.
pub fn refresh_at(now: SystemTime, expires: SystemTime) -> SystemTime {
    let left = expires.duration_since(now).unwrap_or_default();
    let before = if left > REFRESH_BEFORE {
        REFRESH_BEFORE
    } else {
        SHORT_REFRESH_BEFORE
    };
    expires.checked_sub(before).unwrap_or(now).max(now)
}

fn default_duration() -> Duration {
    Duration::from_secs(sts::DEFAULT_SESSION_SECS)
}

/// Resolves `spec` (see [`super::super::credentials::resolve`]).
pub fn resolve(
    spec: &CredentialSpec,
    env: &crate::credentials::Environment,
    _region: &str,
) -> Result<Plan, FieldError> {
    let sts_url = match &spec.sts_endpoint {
        Some(e) => endpoint("sts_endpoint", e)?,
        None => {
            let host = sts::sts_host(
                env.var(STS_REGION).as_deref(),
                env.is_true(VPC_ENDPOINT_ENABLED),
            );
            reqwest::Url::parse(&format!("https://{host}")).expect("STS hosts are valid")
        }
    };
    let ctx = Ctx {
        env,
        sts: &sts_url,
        spec,
    };
    let base = match &spec.base {
        BaseSource::DefaultChain => ctx.default_chain()?,
        BaseSource::Keys(sources) => Plan::Keys(sources.clone()),
        BaseSource::Oidc(oidc) => Plan::Oidc(ctx.oidc(oidc)?),
        BaseSource::InstanceRole { name } => Plan::Instance(ctx.instance(name.clone())?),
        BaseSource::Profile { name, file } => ctx.profile(name.as_deref(), file.as_deref())?,
    };
    Ok(with_assumed_role(base, spec, &sts_url, default_duration()))
}

struct Ctx<'a> {
    env: &'a crate::credentials::Environment,
    sts: &'a reqwest::Url,
    spec: &'a CredentialSpec,
}

impl Ctx<'_> {
    /// `DefaultCredentialsProvider`'s order: environment keys, OIDC variables, the CLI
    /// profile, the credentials file, the ECS role, the credentials URI.
    fn default_chain(&self) -> Result<Plan, FieldError> {
        let env = self.env;
        let mut members = Vec::new();
        let keys = PROFILE.credential_env;
        if env.var(keys.id).is_some() && env.var(keys.secret).is_some() {
            members.push(Plan::Keys(CredentialSources::standard(&keys)));
        }
        if [ROLE_ARN, OIDC_PROVIDER_ARN, OIDC_TOKEN_FILE]
            .iter()
            .all(|v| env.var(v).is_some())
        {
            members.push(
                self.oidc(&OidcSpec::default())
                    .map(Plan::Oidc)
                    .unwrap_or_else(|e| Plan::Broken(SourceKind::Oidc, e.to_string())),
            );
        }
        if !env.is_true(CLI_PROFILE_DISABLED)
            && let Some(path) = home(env).map(|h| h.join(CLI_CONFIG))
            && path.exists()
        {
            members.push(self.profile_member(&path));
        }
        match env.var(CREDENTIALS_FILE) {
            Some(named) => members.push(self.profile_member(Path::new(&named))),
            None => {
                if let Some(path) = home(env).map(|h| h.join(CREDENTIALS_INI))
                    && path.exists()
                {
                    members.push(self.profile_member(&path));
                }
            }
        }
        if !env.is_true(ECS_METADATA_DISABLED) {
            members.push(Plan::Instance(self.instance(None)?));
        }
        if let Some(uri) = env.var(CREDENTIALS_URI) {
            members.push(match reqwest::Url::parse(&uri) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Plan::Uri(u),
                _ => Plan::Broken(
                    SourceKind::CredentialsUri,
                    format!("{CREDENTIALS_URI} is not an http or https URL"),
                ),
            });
        }
        Ok(Plan::Chain(members))
    }

    fn profile_member(&self, path: &Path) -> Plan {
        self.profile_file(path, None)
            .unwrap_or_else(|e| Plan::Broken(SourceKind::Profile, e.to_string()))
    }

    fn oidc(&self, oidc: &OidcSpec) -> Result<OidcPlan, FieldError> {
        let vars = OidcVariables {
            role_arn: ROLE_ARN,
            provider: OIDC_PROVIDER_ARN,
            token_file: OIDC_TOKEN_FILE,
            session_name: Some(ROLE_SESSION_NAME),
            region: None,
        };
        resolve_oidc(oidc, self.env, &vars, self.sts, default_duration(), "")
    }

    fn instance(&self, name: Option<String>) -> Result<InstancePlan, FieldError> {
        Ok(InstancePlan {
            endpoint: metadata_url(self.spec, sts::METADATA_ENDPOINT)?,
            role: name.or_else(|| self.env.var(ECS_METADATA)),
            imds_v1: !self.env.is_true(IMDSV1_DISABLED),
        })
    }

    /// An explicit `profile`: the named file, else the CLI's configuration if it exists,
    /// else the credentials file.
    fn profile(&self, name: Option<&str>, file: Option<&Path>) -> Result<Plan, FieldError> {
        let path = match file {
            Some(f) => f.to_path_buf(),
            None => {
                let cli = home(self.env)
                    .map(|h| h.join(CLI_CONFIG))
                    .filter(|p| p.exists());
                let ini = self
                    .env
                    .var(CREDENTIALS_FILE)
                    .map(PathBuf::from)
                    .or_else(|| home(self.env).map(|h| h.join(CREDENTIALS_INI)));
                cli.or(ini).ok_or_else(|| {
                    FieldError::new("profile.file", "missing; HOME is not set, so name the file")
                })?
            }
        };
        self.profile_file(&path, name)
    }

    fn profile_file(&self, path: &Path, name: Option<&str>) -> Result<Plan, FieldError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            FieldError::new(
                "profile.file",
                format!("cannot read {}: {}", path.display(), e.kind()),
            )
        })?;
        let result = if path.extension().is_some_and(|e| e == "json") {
            self.cli_profile(&text, name)
        } else {
            self.ini_profile(&text, name)
        };
        result.map_err(|(about_name, message)| {
            let field = if about_name {
                "profile.name"
            } else {
                "profile.file"
            };
            FieldError::new(field, format!("{}: {message}", path.display()))
        })
    }

    /// A profile of the CLI's `config.json` (`current` unless named).
    fn cli_profile(&self, text: &str, name: Option<&str>) -> Result<Plan, (bool, String)> {
        let config: CliConfig = serde_json::from_str(text)
            .map_err(|e| (false, shape_error("the CLI configuration", &e)))?;
        let name = name
            .map(str::to_string)
            .or_else(|| self.env.var(PROFILE_NAME))
            .or_else(|| config.current.clone())
            .unwrap_or_else(|| "default".into());
        self.cli_plan(&config, &name, 0)
    }

    fn cli_plan(
        &self,
        config: &CliConfig,
        name: &str,
        depth: usize,
    ) -> Result<Plan, (bool, String)> {
        let p = config
            .profiles
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| (true, format!("no profile named {name:?}")))?;
        let text = |v: &Option<String>, key: &str| {
            v.clone()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| (false, format!("profile {name:?} has no {key}")))
        };
        let keys = |token: Option<String>| -> Result<Plan, (bool, String)> {
            Ok(Plan::Keys(CredentialSources::inline(
                &text(&p.access_key_id, "access_key_id")?,
                &text(&p.access_key_secret, "access_key_secret")?,
                token.as_deref(),
            )))
        };
        let role = |base: Plan| -> Result<Plan, (bool, String)> {
            Ok(Plan::AssumeRole(
                Box::new(base),
                AssumeRolePlan {
                    role_arn: text(&p.ram_role_arn, "ram_role_arn")?,
                    session_name: p
                        .ram_session_name
                        .clone()
                        .unwrap_or_else(|| DEFAULT_SESSION_NAME.into()),
                    duration: p
                        .expired_seconds
                        .map_or_else(default_duration, Duration::from_secs),
                    external_id: p.external_id.clone(),
                    sts: self.profile_sts(p),
                },
            ))
        };
        match p.mode.as_str() {
            "AK" => keys(None),
            "StsToken" => keys(Some(text(&p.sts_token, "sts_token")?)),
            "RamRoleArn" => role(keys(None)?),
            "ChainableRamRoleArn" if depth < MAX_PROFILE_DEPTH => {
                let source = text(&p.source_profile, "source_profile")?;
                role(self.cli_plan(config, &source, depth + 1)?)
            }
            "ChainableRamRoleArn" => Err((
                false,
                format!("profile {name:?}: source_profile chains deeper than {MAX_PROFILE_DEPTH}"),
            )),
            "EcsRamRole" => self
                .instance(p.ram_role_name.clone())
                .map(Plan::Instance)
                .map_err(|e| (false, e.to_string())),
            "OIDC" => {
                let oidc = OidcSpec {
                    role_arn: Some(text(&p.ram_role_arn, "ram_role_arn")?),
                    provider: Some(text(&p.oidc_provider_arn, "oidc_provider_arn")?),
                    token_file: Some(text(&p.oidc_token_file, "oidc_token_file")?.into()),
                    session_name: p.role_session_name.clone(),
                    duration: p.expired_seconds.map(Duration::from_secs),
                    region: None,
                };
                let mut plan = self.oidc(&oidc).map_err(|e| (false, e.message))?;
                plan.sts = self.profile_sts(p);
                Ok(Plan::Oidc(plan))
            }
            other => Err((
                false,
                format!(
                    "profile {name:?} has mode {other:?}; this exporter supports AK, StsToken, RamRoleArn, ChainableRamRoleArn, EcsRamRole and OIDC"
                ),
            )),
        }
    }

    /// A profile's own STS region and VPC switch, when it has them.
    fn profile_sts(&self, p: &CliProfile) -> reqwest::Url {
        match (&p.sts_region, self.spec.sts_endpoint.is_some()) {
            (Some(region), false) if !region.is_empty() => {
                let host = sts::sts_host(Some(region), p.enable_vpc.unwrap_or(false));
                reqwest::Url::parse(&format!("https://{host}")).expect("STS hosts are valid")
            }
            _ => self.sts.clone(),
        }
    }

    /// A section of the SDKs' `credentials.ini` (`default` unless named).
    fn ini_profile(&self, text: &str, name: Option<&str>) -> Result<Plan, (bool, String)> {
        let ini = parse_ini(text).map_err(|e| (false, e))?;
        let name = name
            .map(str::to_string)
            .or_else(|| self.env.var(PROFILE_NAME))
            .unwrap_or_else(|| "default".into());
        let section = ini
            .get(&name)
            .ok_or_else(|| (true, format!("no section [{name}]")))?;
        let get = |key: &str| {
            section
                .get(key)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| (false, format!("section [{name}] has no {key}")))
        };
        let keys = || -> Result<Plan, (bool, String)> {
            Ok(Plan::Keys(CredentialSources::inline(
                &get("access_key_id")?,
                &get("access_key_secret")?,
                None,
            )))
        };
        match section.get("type").map(String::as_str) {
            Some("access_key") => keys(),
            Some("ram_role_arn") => Ok(Plan::AssumeRole(
                Box::new(keys()?),
                AssumeRolePlan {
                    role_arn: get("role_arn")?,
                    session_name: section
                        .get("role_session_name")
                        .cloned()
                        .unwrap_or_else(|| DEFAULT_SESSION_NAME.into()),
                    duration: default_duration(),
                    external_id: None,
                    sts: self.sts.clone(),
                },
            )),
            Some("oidc_role_arn") => {
                let oidc = OidcSpec {
                    role_arn: Some(get("role_arn")?),
                    provider: Some(get("oidc_provider_arn")?),
                    token_file: Some(get("oidc_token_file_path")?.into()),
                    session_name: section.get("role_session_name").cloned(),
                    ..OidcSpec::default()
                };
                self.oidc(&oidc)
                    .map(Plan::Oidc)
                    .map_err(|e| (false, e.message))
            }
            Some("ecs_ram_role") => self
                .instance(section.get("role_name").cloned())
                .map(Plan::Instance)
                .map_err(|e| (false, e.to_string())),
            other => Err((
                false,
                format!(
                    "section [{name}] has type {:?}; this exporter supports access_key, ram_role_arn, oidc_role_arn and ecs_ram_role",
                    other.unwrap_or("")
                ),
            )),
        }
    }
}

/// The CLI's `config.json`. No `Debug`: it holds secrets.
#[derive(Deserialize)]
struct CliConfig {
    current: Option<String>,
    #[serde(default)]
    profiles: Vec<CliProfile>,
}

#[derive(Deserialize)]
struct CliProfile {
    name: String,
    #[serde(default)]
    mode: String,
    access_key_id: Option<String>,
    access_key_secret: Option<String>,
    sts_token: Option<String>,
    ram_role_arn: Option<String>,
    ram_session_name: Option<String>,
    expired_seconds: Option<u64>,
    ram_role_name: Option<String>,
    oidc_provider_arn: Option<String>,
    oidc_token_file: Option<String>,
    role_session_name: Option<String>,
    source_profile: Option<String>,
    external_id: Option<String>,
    sts_region: Option<String>,
    enable_vpc: Option<bool>,
}

/// The source of a resolved OIDC, instance or URI plan.
pub fn fetcher(plan: Plan, wire: Wire) -> Arc<dyn Fetch> {
    match plan {
        Plan::Oidc(plan) => Arc::new(OidcFetch { plan, wire }),
        Plan::Instance(plan) => Arc::new(EcsFetch { plan, wire }),
        Plan::Uri(uri) => Arc::new(UriFetch { uri, wire }),
        other => unreachable!("built elsewhere: {other:?}"),
    }
}

/// A role assumed with `base`'s credentials.
pub fn assume_role(plan: AssumeRolePlan, base: CredentialProvider, wire: Wire) -> Arc<dyn Fetch> {
    Arc::new(AssumeRoleFetch(AssumedRole { plan, base, wire }))
}

/// An STS answer: credentials, or an error body.
#[derive(Deserialize)]
struct StsAnswer {
    #[serde(rename = "RequestId")]
    request_id: Option<String>,
    #[serde(rename = "Code")]
    code: Option<String>,
    #[serde(rename = "Message")]
    message: Option<String>,
    #[serde(rename = "Credentials")]
    credentials: Option<StsCredentials>,
}

/// Temporary credentials as STS, the metadata service and the credentials URI give them.
/// No `Debug`: it holds secrets.
#[derive(Deserialize)]
struct StsCredentials {
    #[serde(rename = "Code")]
    code: Option<String>,
    #[serde(rename = "AccessKeyId")]
    access_key_id: String,
    #[serde(rename = "AccessKeySecret")]
    access_key_secret: String,
    #[serde(rename = "SecurityToken")]
    security_token: String,
    #[serde(rename = "Expiration")]
    expiration: String,
}

/// Turns temporary credentials into [`Issued`], with the refresh rule.
fn issued(
    kind: SourceKind,
    what: &str,
    c: StsCredentials,
    now: SystemTime,
) -> Result<Issued, FetchError> {
    let expires = sign::parse_timestamp(&c.expiration)
        .map(|s| kcle_clock::from_unix_millis(s.saturating_mul(1000)))
        .map_err(|_| FetchError::new(kind, format!("{what} has a malformed Expiration")))?;
    let credentials = temporary(
        kind,
        what,
        c.access_key_id,
        c.access_key_secret,
        c.security_token,
    )?;
    Ok(Issued {
        credentials: Arc::new(credentials),
        expires_at: Some(expires),
        refresh_at: Some(refresh_at(now, expires)),
    })
}

/// Reads an STS answer of `action`; server messages are scrubbed of `secrets`.
fn sts_answer(
    kind: SourceKind,
    action: &str,
    answer: Answer,
    now: SystemTime,
    secrets: &[&str],
) -> Result<Issued, FetchError> {
    let parsed = serde_json::from_slice::<StsAnswer>(&answer.body);
    if answer.status != 200 {
        let message = match parsed {
            Ok(StsAnswer {
                code: Some(code),
                message,
                request_id,
                ..
            }) => format!(
                "STS {action} failed: {code}: {} (http {}, request id {})",
                scrub(message.as_deref().unwrap_or_default(), secrets),
                answer.status,
                request_id.as_deref().unwrap_or("none")
            ),
            _ => format!(
                "STS {action} failed with http {} and no STS error body",
                answer.status
            ),
        };
        return Err(FetchError::new(kind, message));
    }
    let what = format!("the STS {action} answer");
    let parsed = parsed.map_err(|e| FetchError::new(kind, shape_error(&what, &e)))?;
    let credentials = parsed
        .credentials
        .ok_or_else(|| FetchError::new(kind, format!("{what} has no Credentials")))?;
    issued(kind, &what, credentials, now)
}

/// A `POST` to STS: `query` in the URL, `form` as the body.
fn sts_request(
    kind: SourceKind,
    sts_url: &reqwest::Url,
    query: &[(String, String)],
    form: &[(String, String)],
) -> Result<HttpRequest, FetchError> {
    let mut target = url(sts_url, "/");
    target.set_query(Some(&sign::canonicalized_query(query)));
    let body = sign::canonicalized_query(form).into_bytes();
    HttpRequest::post(target)
        .header("content-type", "application/x-www-form-urlencoded")
        .and_then(|r| r.header("accept", "application/json"))
        .map(|r| r.with_body(body))
        .map_err(|e| FetchError::new(kind, e.to_string()))
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn timestamp(kind: SourceKind, now: SystemTime) -> Result<String, FetchError> {
    sign::timestamp(unix_secs(now)).map_err(|e| FetchError::new(kind, e.to_string()))
}

/// STS `AssumeRoleWithOIDC` with the token file's current token (ACK RRSA).
#[derive(Debug)]
struct OidcFetch {
    plan: OidcPlan,
    wire: Wire,
}

impl Fetch for OidcFetch {
    fn kind(&self) -> SourceKind {
        SourceKind::Oidc
    }
    fn describe(&self) -> String {
        describe_oidc(&self.plan)
    }
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(async move {
            let kind = SourceKind::Oidc;
            let token = read_token(kind, &self.plan.token_file)?;
            let now = self.wire.now();
            let query = pairs(&[
                ("Action", sts::ASSUME_ROLE_WITH_OIDC),
                ("Format", "JSON"),
                ("Version", sts::STS_API_VERSION),
                ("Timestamp", &timestamp(kind, now)?),
            ]);
            let duration = self.plan.duration.as_secs().to_string();
            let form = pairs(&[
                ("RoleArn", &self.plan.role_arn),
                ("OIDCProviderArn", &self.plan.provider),
                ("OIDCToken", token.expose()),
                ("RoleSessionName", &self.plan.session_name),
                ("DurationSeconds", &duration),
            ]);
            let request = sts_request(kind, &self.plan.sts, &query, &form)?;
            let service = format!("STS at {}", self.plan.sts);
            let answer = self
                .wire
                .exchange(kind, &service, request, STS_TIMEOUT)
                .await?;
            sts_answer(
                kind,
                sts::ASSUME_ROLE_WITH_OIDC,
                answer,
                now,
                &[token.expose()],
            )
        })
    }
}

/// STS `AssumeRole`, signed (V2) with the base credentials.
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
            let AssumedRole { plan, wire, .. } = &self.0;
            let base = self.0.base_credentials().await?;
            let now = wire.now();
            let nonce = uuid::Uuid::new_v4().simple().to_string();
            let mut query = pairs(&[
                ("Action", sts::ASSUME_ROLE),
                ("Format", "JSON"),
                ("Version", sts::STS_API_VERSION),
                ("Timestamp", &timestamp(kind, now)?),
                ("SignatureMethod", sign::V2_SIGNATURE_METHOD),
                ("SignatureVersion", sign::V2_SIGNATURE_VERSION),
                ("SignatureNonce", &nonce),
                ("AccessKeyId", &base.id),
            ]);
            if let Some(token) = &base.token {
                query.push(("SecurityToken".into(), token.expose().to_string()));
            }
            let duration = plan.duration.as_secs().to_string();
            let mut form = pairs(&[
                ("RoleArn", &plan.role_arn),
                ("RoleSessionName", &plan.session_name),
                ("DurationSeconds", &duration),
            ]);
            if let Some(id) = &plan.external_id {
                form.push(("ExternalId".into(), id.clone()));
            }
            // The signature covers the query and the form alike.
            let signed: Vec<(String, String)> = query.iter().chain(&form).cloned().collect();
            let to_sign = sign::v2_string_to_sign("POST", &sign::canonicalized_query(&signed));
            query.push((
                "Signature".into(),
                sign::v2_signature(base.secret.expose(), &to_sign),
            ));
            // The URL carries the signature and any token; `HttpRequest`'s `Debug` and the
            // transport errors never show query values.
            let request = sts_request(kind, &plan.sts, &query, &form)?;
            let service = format!("STS at {}", plan.sts);
            let answer = wire.exchange(kind, &service, request, STS_TIMEOUT).await?;
            let token = base.token.as_ref().map(Secret::expose).unwrap_or_default();
            sts_answer(
                kind,
                sts::ASSUME_ROLE,
                answer,
                now,
                &[base.secret.expose(), token],
            )
        })
    }
}

/// The ECS instance's RAM role, from the metadata service: an IMDSv2 token first, then
/// the role name and its credentials; without a token (an older service, or a read the
/// token did not allow) the reads fall back to IMDSv1 unless that is disabled.
#[derive(Debug)]
struct EcsFetch {
    plan: InstancePlan,
    wire: Wire,
}

impl EcsFetch {
    fn service(&self) -> String {
        format!("the ECS metadata service at {}", self.plan.endpoint)
    }

    async fn token(&self) -> Result<Option<Secret>, FetchError> {
        let kind = SourceKind::InstanceRole;
        let request = HttpRequest::put(url(&self.plan.endpoint, sts::METADATA_TOKEN_PATH))
            .header(
                sts::METADATA_TOKEN_TTL_HEADER,
                &sts::METADATA_TOKEN_TTL_SECS.to_string(),
            )
            .map_err(|e| FetchError::new(kind, e.to_string()))?;
        let answer = self
            .wire
            .exchange(kind, &self.service(), request, METADATA_TIMEOUT)
            .await
            .map_err(|e| {
                FetchError::new(
                    kind,
                    format!(
                        "{}: not an ECS instance, or its metadata service is blocked",
                        e.message
                    ),
                )
            })?;
        match answer.status {
            200 => {
                let token = String::from_utf8_lossy(&answer.body).trim().to_string();
                Ok((!token.is_empty()).then(|| Secret::new(token)))
            }
            _ if self.plan.imds_v1 => Ok(None),
            status => Err(FetchError::new(
                kind,
                format!(
                    "{} refused an IMDSv2 token (http {status}) and IMDSv1 is disabled ({IMDSV1_DISABLED})",
                    self.service()
                ),
            )),
        }
    }

    /// A metadata read, with the token if there is one, falling back to none.
    async fn read(&self, path: &str, token: Option<&Secret>) -> Result<Answer, FetchError> {
        let kind = SourceKind::InstanceRole;
        let mut request = HttpRequest::get(url(&self.plan.endpoint, path));
        if let Some(token) = token {
            request = request
                .secret_header(sts::METADATA_TOKEN_HEADER, token.expose())
                .map_err(|e| FetchError::new(kind, e.to_string()))?;
        }
        let answer = self
            .wire
            .exchange(kind, &self.service(), request, METADATA_TIMEOUT)
            .await?;
        if answer.status != 200 && token.is_some() && self.plan.imds_v1 {
            let request = HttpRequest::get(url(&self.plan.endpoint, path));
            return self
                .wire
                .exchange(kind, &self.service(), request, METADATA_TIMEOUT)
                .await;
        }
        Ok(answer)
    }
}

impl Fetch for EcsFetch {
    fn kind(&self) -> SourceKind {
        SourceKind::InstanceRole
    }
    fn describe(&self) -> String {
        match &self.plan.role {
            Some(role) => format!("ECS RAM role {role} ({})", self.service()),
            None => format!("the ECS instance's RAM role ({})", self.service()),
        }
    }
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(async move {
            let kind = SourceKind::InstanceRole;
            let token = self.token().await?;
            let role = match &self.plan.role {
                Some(role) => role.clone(),
                None => {
                    let answer = self
                        .read(sts::ROLE_CREDENTIALS_PATH, token.as_ref())
                        .await?;
                    metadata_role(
                        &answer,
                        &self.service(),
                        "no RAM role is attached to this ECS instance",
                        "RAM role",
                    )?
                }
            };
            let now = self.wire.now();
            let path = format!("{}{role}", sts::ROLE_CREDENTIALS_PATH);
            let answer = self.read(&path, token.as_ref()).await?;
            match answer.status {
                200 => {}
                404 => {
                    return Err(FetchError::new(
                        kind,
                        format!("RAM role {role} is not attached to this ECS instance"),
                    ));
                }
                status => {
                    return Err(FetchError::new(
                        kind,
                        format!(
                            "{} answered http {status} for the credentials of {role}",
                            self.service()
                        ),
                    ));
                }
            }
            metadata_credentials(
                kind,
                &format!("the credentials of RAM role {role}"),
                &answer,
                now,
            )
        })
    }
}

/// Reads a `{Code: "Success", AccessKeyId, ...}` answer (metadata service, credentials
/// URI).
fn metadata_credentials(
    kind: SourceKind,
    what: &str,
    answer: &Answer,
    now: SystemTime,
) -> Result<Issued, FetchError> {
    let c: StsCredentials = serde_json::from_slice(&answer.body)
        .map_err(|e| FetchError::new(kind, shape_error(what, &e)))?;
    match c.code.as_deref() {
        Some(sts::METADATA_SUCCESS) => issued(kind, what, c, now),
        other => Err(FetchError::new(
            kind,
            format!(
                "{what}: Code is {:?}, not {:?}",
                other.unwrap_or(""),
                sts::METADATA_SUCCESS
            ),
        )),
    }
}

/// `ALIBABA_CLOUD_CREDENTIALS_URI`: a `GET` answering temporary credentials.
#[derive(Debug)]
struct UriFetch {
    uri: reqwest::Url,
    wire: Wire,
}

impl UriFetch {
    /// The URI without its query, which may hold a secret.
    fn shown(&self) -> String {
        let mut u = self.uri.clone();
        u.set_query(None);
        u.to_string()
    }
}

impl Fetch for UriFetch {
    fn kind(&self) -> SourceKind {
        SourceKind::CredentialsUri
    }
    fn describe(&self) -> String {
        format!("the credentials URI {}", self.shown())
    }
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(async move {
            let kind = SourceKind::CredentialsUri;
            let now = self.wire.now();
            let service = format!("the credentials URI {}", self.shown());
            let answer = self
                .wire
                .exchange(
                    kind,
                    &service,
                    HttpRequest::get(self.uri.clone()),
                    URI_TIMEOUT,
                )
                .await?;
            if answer.status != 200 {
                return Err(FetchError::new(
                    kind,
                    format!("{service} answered http {}", answer.status),
                ));
            }
            metadata_credentials(kind, &format!("the answer of {service}"), &answer, now)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Environment;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn refresh_fifteen_minutes_before_or_three_for_short_sessions() {
        assert_eq!(refresh_at(at(0), at(3600)), at(2700));
        assert_eq!(refresh_at(at(0), at(900)), at(720));
        assert_eq!(refresh_at(at(0), at(100)), at(0));
    }

    fn resolve_with(spec: &CredentialSpec, vars: &[(&str, &str)]) -> Result<Plan, FieldError> {
        resolve(
            spec,
            &Environment::fixed(vars.iter().copied()),
            "cn-hangzhou",
        )
    }

    #[test]
    fn sts_host_follows_region_and_vpc_variables() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "jwt").unwrap();
        let t = token.to_str().unwrap();
        let vars = [
            (ROLE_ARN, "acs:ram::1:role/r"),
            (OIDC_PROVIDER_ARN, "acs:ram::1:oidc-provider/p"),
            (OIDC_TOKEN_FILE, t),
            (STS_REGION, "cn-shanghai"),
            (VPC_ENDPOINT_ENABLED, "true"),
        ];
        let spec = CredentialSpec::from_base(BaseSource::Oidc(OidcSpec::default()));
        let Plan::Oidc(p) = resolve_with(&spec, &vars).unwrap() else {
            panic!()
        };
        assert_eq!(p.sts.as_str(), "https://sts-vpc.cn-shanghai.aliyuncs.com/");
        assert_eq!(p.session_name, DEFAULT_SESSION_NAME);
        assert_eq!(p.duration, Duration::from_secs(3600));
        let Plan::Oidc(p) = resolve_with(&spec, &vars[..3]).unwrap() else {
            panic!()
        };
        assert_eq!(p.sts.as_str(), "https://sts.aliyuncs.com/");
    }

    #[test]
    fn missing_oidc_values_name_the_field_and_the_variable() {
        let spec = CredentialSpec::from_base(BaseSource::Oidc(OidcSpec::default()));
        let e = resolve_with(&spec, &[]).unwrap_err();
        assert_eq!(e.field, "oidc.role_arn");
        assert!(e.message.contains(ROLE_ARN), "{e}");
        let e = resolve_with(
            &spec,
            &[
                (ROLE_ARN, "r"),
                (OIDC_PROVIDER_ARN, "p"),
                (OIDC_TOKEN_FILE, "/nonexistent/token"),
            ],
        )
        .unwrap_err();
        assert_eq!(e.field, "oidc.token_file");
        assert!(e.message.contains("/nonexistent/token"), "{e}");
        assert!(e.message.contains(OIDC_TOKEN_FILE), "{e}");
    }

    #[test]
    fn cli_profiles_of_every_supported_mode() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        std::fs::create_dir_all(home.join(".aliyun")).unwrap();
        std::fs::write(home.join("token"), "jwt").unwrap();
        let config = serde_json::json!({
            "current": "ak",
            "profiles": [
                {"name": "ak", "mode": "AK", "access_key_id": "LTAIak", "access_key_secret": "s1"},
                {"name": "sts", "mode": "StsToken", "access_key_id": "STS.x", "access_key_secret": "s2", "sts_token": "t"},
                {"name": "role", "mode": "RamRoleArn", "access_key_id": "LTAIak", "access_key_secret": "s1",
                 "ram_role_arn": "acs:ram::2:role/r", "ram_session_name": "sess", "expired_seconds": 1800, "sts_region": "cn-beijing"},
                {"name": "chain", "mode": "ChainableRamRoleArn", "source_profile": "role", "ram_role_arn": "acs:ram::3:role/r"},
                {"name": "ecs", "mode": "EcsRamRole", "ram_role_name": "node"},
                {"name": "oidc", "mode": "OIDC", "ram_role_arn": "acs:ram::1:role/o", "oidc_provider_arn": "p",
                 "oidc_token_file": home.join("token").to_str().unwrap()},
                {"name": "sso", "mode": "CloudSSO"},
            ]
        });
        std::fs::write(home.join(CLI_CONFIG), config.to_string()).unwrap();
        let h = home.to_str().unwrap();
        let profile = |name: Option<&str>| {
            resolve_with(
                &CredentialSpec::from_base(BaseSource::Profile {
                    name: name.map(str::to_string),
                    file: None,
                }),
                &[("HOME", h)],
            )
        };
        assert_eq!(
            profile(None).unwrap(),
            Plan::Keys(CredentialSources::inline("LTAIak", "s1", None))
        );
        assert_eq!(
            profile(Some("sts")).unwrap(),
            Plan::Keys(CredentialSources::inline("STS.x", "s2", Some("t")))
        );
        let Plan::AssumeRole(base, role) = profile(Some("role")).unwrap() else {
            panic!()
        };
        assert!(matches!(*base, Plan::Keys(_)));
        assert_eq!(role.duration, Duration::from_secs(1800));
        assert_eq!(role.sts.as_str(), "https://sts.cn-beijing.aliyuncs.com/");
        let Plan::AssumeRole(base, _) = profile(Some("chain")).unwrap() else {
            panic!()
        };
        assert!(matches!(*base, Plan::AssumeRole(..)));
        let Plan::Instance(i) = profile(Some("ecs")).unwrap() else {
            panic!()
        };
        assert_eq!(i.role.as_deref(), Some("node"));
        assert!(matches!(profile(Some("oidc")).unwrap(), Plan::Oidc(_)));
        let e = profile(Some("sso")).unwrap_err();
        assert_eq!(e.field, "profile.file");
        assert!(e.message.contains("CloudSSO"), "{e}");
        let e = profile(Some("nope")).unwrap_err();
        assert_eq!(e.field, "profile.name");
    }

    #[test]
    fn ini_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials.ini");
        std::fs::write(
            &file,
            "[default]\ntype = access_key\naccess_key_id = LTAIini\naccess_key_secret = s\n[role]\ntype = ram_role_arn\naccess_key_id = a\naccess_key_secret = b\nrole_arn = acs:ram::1:role/x\n[ecs]\ntype = ecs_ram_role\nrole_name = r\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();
        let spec = |name: &str| {
            CredentialSpec::from_base(BaseSource::Profile {
                name: Some(name.into()),
                file: None,
            })
        };
        let vars = [(CREDENTIALS_FILE, f)];
        assert_eq!(
            resolve_with(&spec("default"), &vars).unwrap(),
            Plan::Keys(CredentialSources::inline("LTAIini", "s", None))
        );
        assert!(matches!(
            resolve_with(&spec("role"), &vars).unwrap(),
            Plan::AssumeRole(..)
        ));
        assert!(matches!(
            resolve_with(&spec("ecs"), &vars).unwrap(),
            Plan::Instance(_)
        ));
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
                Plan::Uri(_) => "uri",
                Plan::Broken(..) => "broken",
                Plan::AssumeRole(..) => "assume_role",
                Plan::Chain(_) => "chain",
            })
            .collect()
    }

    /// The default chain in `DefaultCredentialsProvider`'s order, each member present only
    /// when its variables or files are.
    #[test]
    fn default_chain_order() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        std::fs::create_dir_all(home.join(".aliyun")).unwrap();
        std::fs::create_dir_all(home.join(".alibabacloud")).unwrap();
        std::fs::write(
            home.join(CLI_CONFIG),
            r#"{"current":"a","profiles":[{"name":"a","mode":"AK","access_key_id":"i","access_key_secret":"s"}]}"#,
        )
        .unwrap();
        std::fs::write(
            home.join(CREDENTIALS_INI),
            "[default]\ntype = access_key\naccess_key_id = i\naccess_key_secret = s\n",
        )
        .unwrap();
        std::fs::write(home.join("token"), "jwt").unwrap();
        let h = home.to_str().unwrap();
        let t = home.join("token");
        let all = [
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI"),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "s"),
            (ROLE_ARN, "r"),
            (OIDC_PROVIDER_ARN, "p"),
            (OIDC_TOKEN_FILE, t.to_str().unwrap()),
            ("HOME", h),
            (CREDENTIALS_URI, "http://127.0.0.1:1/creds"),
        ];
        let chain = CredentialSpec::default_chain();
        assert_eq!(
            kinds(&resolve_with(&chain, &all).unwrap()),
            ["keys", "oidc", "keys", "keys", "instance", "uri"]
        );
        assert_eq!(
            kinds(&resolve_with(&chain, &all[2..6]).unwrap()),
            ["oidc", "keys", "keys", "instance"]
        );
        let off = [
            ("HOME", h),
            (CLI_PROFILE_DISABLED, "TRUE"),
            (ECS_METADATA_DISABLED, "true"),
        ];
        assert_eq!(kinds(&resolve_with(&chain, &off).unwrap()), ["keys"]);
        assert_eq!(kinds(&resolve_with(&chain, &[]).unwrap()), ["instance"]);
        // A broken OIDC token file or credentials file is a member that fails, so that the
        // chain moves on as the SDKs' does.
        let broken = [
            (ROLE_ARN, "r"),
            (OIDC_PROVIDER_ARN, "p"),
            (OIDC_TOKEN_FILE, "/nonexistent/t"),
            (CREDENTIALS_FILE, "/nonexistent/ini"),
        ];
        assert_eq!(
            kinds(&resolve_with(&chain, &broken).unwrap()),
            ["broken", "broken", "instance"]
        );
    }
}
