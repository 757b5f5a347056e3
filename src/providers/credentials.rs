//! Builds an account's [`CredentialProvider`] from its [`CredentialSpec`], and what every
//! cloud's credential sources share: the resolved [`Plan`], static keys and the default
//! chain as sources, requests raced against the clock, token files, profile files.
//!
//! Each cloud's `credentials.rs` resolves a spec into a [`Plan`] (reading its standard
//! variables and files: only it knows their names) and builds the sources that fetch
//! (STS, metadata). Resolving does no I/O but reading the environment and local files, so
//! [`check`] can run at start-up and refuse a bad configuration with the field at fault.
//! No secret (token, temporary key, session token) ever reaches a message or `Debug`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use kcle_clock::Clock;

use super::http::{HttpRequest, send};
use super::{alibaba, tencent};
use crate::credentials::spec::DEFAULT_SESSION_NAME;
use crate::credentials::{
    CredentialObserver, CredentialProvider, CredentialSources, CredentialSpec, Credentials,
    Environment, Fetch, FetchError, FetchFuture, Issued, OidcSpec, Refresher, Secret, SourceKind,
};
use crate::model::Cloud;

/// What building an account's credential sources needs.
#[derive(Clone)]
pub struct CredentialDeps {
    pub http: reqwest::Client,
    pub clock: Clock,
    pub observer: Arc<dyn CredentialObserver>,
    /// Where the standard variables are read from.
    pub env: Environment,
    pub account: Arc<str>,
    /// The account's (first) region, where a call needs one and nothing else names it.
    pub region: Arc<str>,
}

/// A credential setting that cannot work: the field (relative to `credentials`, e.g.
/// `oidc.role_arn`) and why, with what is allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Sources with every value resolved (configuration, else standard variables, else
/// defaults).
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    Keys(CredentialSources),
    Oidc(OidcPlan),
    Instance(InstancePlan),
    /// Alibaba `ALIBABA_CLOUD_CREDENTIALS_URI`.
    Uri(reqwest::Url),
    AssumeRole(Box<Plan>, AssumeRolePlan),
    /// The default chain: the first member that gives credentials, kept once found.
    Chain(Vec<Plan>),
    /// A member of the default chain that cannot work (a malformed profile file), and why.
    Broken(SourceKind, String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct OidcPlan {
    pub role_arn: String,
    /// Alibaba: the OIDC provider ARN; Tencent: the provider id.
    pub provider: String,
    pub token_file: PathBuf,
    pub session_name: String,
    pub duration: Duration,
    /// Tencent: `X-TC-Region`.
    pub region: String,
    pub sts: reqwest::Url,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InstancePlan {
    pub endpoint: reqwest::Url,
    /// The role; `None`: ask the metadata service.
    pub role: Option<String>,
    /// Alibaba: whether reads without an IMDSv2 token are allowed (the fallback).
    pub imds_v1: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AssumeRolePlan {
    pub role_arn: String,
    pub session_name: String,
    pub duration: Duration,
    pub external_id: Option<String>,
    pub sts: reqwest::Url,
}

/// Resolves `spec` for `cloud`, reading the standard variables from `env` and the local
/// files it names; an error names the field at fault. This is the start-up check.
pub fn resolve(
    cloud: Cloud,
    spec: &CredentialSpec,
    env: &Environment,
    region: &str,
) -> Result<Plan, FieldError> {
    match cloud {
        Cloud::Alibaba => alibaba::credentials::resolve(spec, env, region),
        Cloud::Tencent => tencent::credentials::resolve(spec, env, region),
    }
}

/// The standard variables of a cloud's OIDC source (named in `providers/<cloud>/`).
pub struct OidcVariables {
    pub role_arn: &'static str,
    pub provider: &'static str,
    pub token_file: &'static str,
    pub session_name: Option<&'static str>,
    pub region: Option<&'static str>,
}

/// An OIDC source's values: the configuration's, else the standard variables', else the
/// defaults (`region`: the account's); the token file must be readable now.
pub fn resolve_oidc(
    oidc: &OidcSpec,
    env: &Environment,
    vars: &OidcVariables,
    sts: &reqwest::Url,
    default_duration: Duration,
    region: &str,
) -> Result<OidcPlan, FieldError> {
    let missing = |field: &str, variable: &str| {
        FieldError::new(
            field,
            format!("missing; set it here or in the environment variable {variable}"),
        )
    };
    let role_arn = oidc
        .role_arn
        .clone()
        .or_else(|| env.var(vars.role_arn))
        .ok_or_else(|| missing("oidc.role_arn", vars.role_arn))?;
    let provider = oidc
        .provider
        .clone()
        .or_else(|| env.var(vars.provider))
        .ok_or_else(|| missing("oidc.provider", vars.provider))?;
    let (token_file, from) = match &oidc.token_file {
        Some(f) => (f.clone(), String::new()),
        None => (
            env.var(vars.token_file)
                .map(PathBuf::from)
                .ok_or_else(|| missing("oidc.token_file", vars.token_file))?,
            format!(" (named by {})", vars.token_file),
        ),
    };
    check_token_file("oidc.token_file", &token_file, &from)?;
    Ok(OidcPlan {
        role_arn,
        provider,
        token_file,
        session_name: oidc
            .session_name
            .clone()
            .or_else(|| vars.session_name.and_then(|v| env.var(v)))
            .unwrap_or_else(|| DEFAULT_SESSION_NAME.into()),
        duration: oidc.duration.unwrap_or(default_duration),
        region: oidc
            .region
            .clone()
            .or_else(|| vars.region.and_then(|v| env.var(v)))
            .unwrap_or_else(|| region.to_string()),
        sts: sts.clone(),
    })
}

/// The configured metadata base URL, else the cloud's.
pub fn metadata_url(spec: &CredentialSpec, default: &str) -> Result<reqwest::Url, FieldError> {
    match &spec.metadata_endpoint {
        Some(e) => endpoint("metadata_endpoint", e),
        None => Ok(reqwest::Url::parse(default).expect("the clouds' metadata URLs are valid")),
    }
}

/// `base`, with the spec's `assume_role` on top if it has one.
pub fn with_assumed_role(
    base: Plan,
    spec: &CredentialSpec,
    sts: &reqwest::Url,
    default_duration: Duration,
) -> Plan {
    match &spec.assume_role {
        None => base,
        Some(role) => Plan::AssumeRole(
            Box::new(base),
            AssumeRolePlan {
                role_arn: role.role_arn.clone(),
                session_name: role
                    .session_name
                    .clone()
                    .unwrap_or_else(|| DEFAULT_SESSION_NAME.into()),
                duration: role.duration.unwrap_or(default_duration),
                external_id: role.external_id.clone(),
                sts: sts.clone(),
            },
        ),
    }
}

/// The credential provider of an account.
pub fn credential_provider(
    cloud: Cloud,
    spec: &CredentialSpec,
    deps: &CredentialDeps,
) -> Result<CredentialProvider, FieldError> {
    let plan = resolve(cloud, spec, &deps.env, &deps.region)?;
    Ok(build(cloud, plan, deps, true))
}

/// A provider that never has credentials, saying why: for an account whose source cannot
/// be built, so that its polls fail with the reason rather than the exporter stopping.
pub fn unusable(kind: SourceKind, why: String, deps: &CredentialDeps) -> CredentialProvider {
    CredentialProvider::refreshing(Refresher::new(
        deps.account.clone(),
        Arc::new(Broken { kind, why }),
        deps.clock.clone(),
        deps.observer.clone(),
        true,
    ))
}

/// A provider for `plan`: static keys as they are, anything else refreshed. `outer`: the
/// credentials requests are signed with (not the base of an assumed role).
fn build(cloud: Cloud, plan: Plan, deps: &CredentialDeps, outer: bool) -> CredentialProvider {
    match plan {
        Plan::Keys(sources) => {
            CredentialProvider::with_env(sources, deps.clock.clone(), deps.env.clone())
        }
        other => CredentialProvider::refreshing(Refresher::new(
            deps.account.clone(),
            fetcher(cloud, other, deps),
            deps.clock.clone(),
            deps.observer.clone(),
            outer,
        )),
    }
}

fn fetcher(cloud: Cloud, plan: Plan, deps: &CredentialDeps) -> Arc<dyn Fetch> {
    let wire = Wire {
        http: deps.http.clone(),
        clock: deps.clock.clone(),
    };
    match plan {
        Plan::Keys(sources) => Arc::new(KeysFetch {
            sources,
            env: deps.env.clone(),
        }),
        Plan::Chain(members) => Arc::new(Chain {
            members: members
                .into_iter()
                .map(|p| fetcher(cloud, p, deps))
                .collect(),
            chosen: Mutex::new(None),
        }),
        Plan::Broken(kind, why) => Arc::new(Broken { kind, why }),
        Plan::AssumeRole(base, role) => {
            let base = build(cloud, *base, deps, false);
            match cloud {
                Cloud::Alibaba => alibaba::credentials::assume_role(role, base, wire),
                Cloud::Tencent => tencent::credentials::assume_role(role, base, wire),
            }
        }
        other => match cloud {
            Cloud::Alibaba => alibaba::credentials::fetcher(other, wire),
            Cloud::Tencent => tencent::credentials::fetcher(other, wire),
        },
    }
}

/// What a source needs to send requests: the shared HTTP client and the clock.
#[derive(Clone)]
pub struct Wire {
    pub http: reqwest::Client,
    pub clock: Clock,
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Wire")
    }
}

/// What both clouds' assumed-role sources share: the role, the credentials it is assumed
/// with (refreshed on their own rule), and the wire.
#[derive(Debug)]
pub struct AssumedRole {
    pub plan: AssumeRolePlan,
    pub base: CredentialProvider,
    pub wire: Wire,
}

impl AssumedRole {
    pub fn describe(&self) -> String {
        format!(
            "role {} assumed with {} (STS {})",
            self.plan.role_arn,
            self.base.describe(),
            self.plan.sts
        )
    }

    /// The base's kinds and `assume_role`.
    pub fn kinds(&self) -> Vec<SourceKind> {
        let mut kinds = self.base.kinds();
        kinds.push(SourceKind::AssumeRole);
        kinds
    }

    /// The credentials to sign `AssumeRole` with; their failure counts under the base's
    /// own source.
    pub async fn base_credentials(&self) -> Result<Arc<Credentials>, FetchError> {
        self.base.get().await.map_err(|e| {
            let source = match &e {
                crate::credentials::CredentialError::Unavailable { kind, .. } => *kind,
                _ => SourceKind::Static,
            };
            FetchError::new(
                source,
                format!("the credentials to assume a role with: {e}"),
            )
        })
    }
}

/// How an OIDC source describes itself.
pub fn describe_oidc(plan: &OidcPlan) -> String {
    format!(
        "OIDC role {} (token file {}, STS {})",
        plan.role_arn,
        plan.token_file.display(),
        plan.sts
    )
}

/// The role a metadata service names (the first line of its answer), or why there is
/// none: `none` when it answers 404 or nothing, the status otherwise. `what` names the
/// kind of role in messages ("RAM role").
pub fn metadata_role(
    answer: &Answer,
    service: &str,
    none: &str,
    what: &str,
) -> Result<String, FetchError> {
    let kind = SourceKind::InstanceRole;
    let text = String::from_utf8_lossy(&answer.body);
    let role = text.lines().next().unwrap_or_default().trim().to_string();
    match answer.status {
        200 if !role.is_empty() => {}
        200 | 404 => return Err(FetchError::new(kind, none)),
        status => {
            return Err(FetchError::new(
                kind,
                format!("{service} answered http {status} for the role name"),
            ));
        }
    }
    // The name becomes part of a path.
    if role.contains(['/', '?', '#']) || role.contains("..") {
        return Err(FetchError::new(
            kind,
            format!("{what} name {role:?} is not valid"),
        ));
    }
    Ok(role)
}

/// One HTTP answer of a credential service.
pub struct Answer {
    pub status: u16,
    pub body: bytes::Bytes,
}

impl Wire {
    /// Sends `request`, raced against `timeout` on the clock (the HTTP client has none of
    /// its own). `service` names what was called in errors, e.g. "STS at https://...".
    pub async fn exchange(
        &self,
        kind: SourceKind,
        service: &str,
        request: HttpRequest,
        timeout: Duration,
    ) -> Result<Answer, FetchError> {
        let cutoff = self.clock.instant() + timeout;
        match self
            .clock
            .timeout_at(cutoff, send(&self.http, request))
            .await
        {
            Ok(Ok((status, _, body))) => Ok(Answer { status, body }),
            Ok(Err(e)) => Err(FetchError::new(
                kind,
                format!("cannot reach {service}: {}", e.message),
            )),
            Err(_) => Err(FetchError::new(
                kind,
                format!("{service} did not answer within {}", seconds(timeout)),
            )),
        }
    }

    /// The current time, as STS wants it.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }
}

/// A timeout as people write it: `1s`, `500ms`.
pub fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The URL of a configured or default base endpoint with `path` (which starts with `/`).
pub fn url(base: &reqwest::Url, path: &str) -> reqwest::Url {
    let mut u = base.clone();
    u.set_path(path);
    u.set_query(None);
    u
}

/// Parses an endpoint the way the configuration allows it (scheme, host, optional port).
pub fn endpoint(field: &str, value: &str) -> Result<reqwest::Url, FieldError> {
    reqwest::Url::parse(value)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            FieldError::new(
                field,
                format!("{value:?} is not an http or https URL with a host"),
            )
        })
}

/// The `Host` header value of a URL: the host, with the port when it is not the scheme's
/// default (what reqwest sends, and what a signature covers).
pub fn host_header(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// Reads an OIDC token file, afresh on every refresh (kubelet rotates it).
pub fn read_token(kind: SourceKind, path: &Path) -> Result<Secret, FetchError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        FetchError::new(
            kind,
            format!(
                "cannot read the token file {}: {}",
                path.display(),
                e.kind()
            ),
        )
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(FetchError::new(
            kind,
            format!("the token file {} is empty", path.display()),
        ));
    }
    Ok(Secret::new(token))
}

/// Checks at start-up that a token file can be read, naming `field`.
pub fn check_token_file(field: &str, path: &Path, from: &str) -> Result<(), FieldError> {
    read_token(SourceKind::Oidc, path)
        .map(|_| ())
        .map_err(|e| FieldError::new(field, format!("{}{from}", e.message)))
}

/// Replaces every secret in a server message (raw, and percent-encoded once and twice,
/// as a string to sign shows them) with `[redacted]`.
pub fn scrub(message: &str, secrets: &[&str]) -> String {
    let mut out = message.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        let once = kcle_cloud::alibaba::sign::percent_encode(secret);
        let twice = kcle_cloud::alibaba::sign::percent_encode(&once);
        for form in [twice, once, secret.to_string()] {
            out = out.replace(&form, "[redacted]");
        }
    }
    out
}

/// What is wrong with a JSON answer, without quoting any of it (a mistyped field would
/// be quoted, and the field may hold a secret).
pub fn shape_error(what: &str, e: &serde_json::Error) -> String {
    let detail = e.to_string();
    if detail.starts_with("missing field") {
        let field = detail.split('`').nth(1).unwrap_or("?");
        format!("{what} has no {field}")
    } else {
        format!(
            "{what} is not of the documented shape (line {}, column {})",
            e.line(),
            e.column()
        )
    }
}

/// The home directory, for the default profile file paths.
pub fn home(env: &Environment) -> Option<PathBuf> {
    env.var("HOME").map(PathBuf::from)
}

/// One parsed INI file: section -> key -> value. `key = value` or `key: value`; lines
/// starting with `#` or `;` are comments; keys and values are trimmed, and a value in
/// matching quotes loses them (as the SDKs' INI readers do).
pub type Ini = BTreeMap<String, BTreeMap<String, String>>;

/// Parses the INI files of the clouds' credentials (see [`Ini`]); `Err` names the first
/// line that is neither a section, a key nor a comment.
pub fn parse_ini(text: &str) -> Result<Ini, String> {
    let mut out = Ini::new();
    let mut section: Option<String> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().to_string();
            out.entry(name.clone()).or_default();
            section = Some(name);
            continue;
        }
        let Some((key, value)) = line.split_once(['=', ':']) else {
            return Err(format!("line {} is not `key = value`", n + 1));
        };
        let Some(section) = &section else {
            return Err(format!("line {} is outside any [section]", n + 1));
        };
        let value = value.trim();
        let value = ['"', '\'']
            .iter()
            .find_map(|q| {
                value
                    .strip_prefix(*q)
                    .and_then(|v| v.strip_suffix(*q))
                    .filter(|_| value.len() >= 2)
            })
            .unwrap_or(value);
        out.entry(section.clone())
            .or_default()
            .insert(key.trim().to_string(), value.to_string());
    }
    Ok(out)
}

/// Static keys as a source of a chain: read once per fetch, never expiring.
#[derive(Debug)]
struct KeysFetch {
    sources: CredentialSources,
    env: Environment,
}

impl Fetch for KeysFetch {
    fn kind(&self) -> SourceKind {
        SourceKind::Static
    }
    fn describe(&self) -> String {
        format!("static keys ({}, {})", self.sources.id, self.sources.secret)
    }
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(async move {
            crate::credentials::resolve_in(&self.sources, &self.env)
                .map(Issued::lasting)
                .map_err(|e| FetchError::new(SourceKind::Static, e.to_string()))
        })
    }
}

/// A member of the default chain that cannot work.
#[derive(Debug)]
struct Broken {
    kind: SourceKind,
    why: String,
}

impl Fetch for Broken {
    fn kind(&self) -> SourceKind {
        self.kind
    }
    fn describe(&self) -> String {
        format!("a {} source that cannot be used", self.kind)
    }
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(async move { Err(FetchError::new(self.kind, self.why.clone())) })
    }
}

/// The default chain: members tried in order until one gives credentials; that one is
/// used from then on (as the SDKs' `reuse_last_provider`).
#[derive(Debug)]
struct Chain {
    members: Vec<Arc<dyn Fetch>>,
    chosen: Mutex<Option<usize>>,
}

impl Chain {
    fn chosen(&self) -> Option<usize> {
        *self.chosen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Fetch for Chain {
    fn kind(&self) -> SourceKind {
        self.chosen()
            .map_or(SourceKind::DefaultChain, |i| self.members[i].kind())
    }
    fn describe(&self) -> String {
        match self.chosen() {
            Some(i) => format!("the default chain: {}", self.members[i].describe()),
            None => "the default chain".into(),
        }
    }
    fn kinds(&self) -> Vec<SourceKind> {
        let mut kinds: Vec<SourceKind> = self.members.iter().flat_map(|m| m.kinds()).collect();
        kinds.push(SourceKind::DefaultChain);
        kinds.sort();
        kinds.dedup();
        kinds
    }
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(async move {
            if let Some(i) = self.chosen() {
                return self.members[i].fetch().await;
            }
            let mut tried = Vec::new();
            for (i, member) in self.members.iter().enumerate() {
                match member.fetch().await {
                    Ok(issued) => {
                        tracing::info!(source = %member.describe(), "the default credential chain found credentials");
                        *self.chosen.lock().unwrap_or_else(|e| e.into_inner()) = Some(i);
                        return Ok(issued);
                    }
                    Err(e) => tried.push(format!("{}: {e}", member.kind())),
                }
            }
            let message = if tried.is_empty() {
                "the default chain found no credential source".to_string()
            } else {
                format!(
                    "no source of the default chain gave credentials ({})",
                    tried.join("; ")
                )
            };
            Err(FetchError::new(SourceKind::DefaultChain, message))
        })
    }
}

/// Checks a temporary credential's parts before it is used: present, and sendable (an id
/// and a token travel in headers).
pub fn temporary(
    kind: SourceKind,
    what: &str,
    id: String,
    secret: String,
    token: String,
) -> Result<Credentials, FetchError> {
    if id.is_empty() || secret.is_empty() || token.is_empty() {
        return Err(FetchError::new(
            kind,
            format!("{what} has an empty key id, secret or token"),
        ));
    }
    if id.chars().chain(token.chars()).any(char::is_control) {
        return Err(FetchError::new(
            kind,
            format!("{what} has a control character in its key id or token"),
        ));
    }
    Ok(Credentials {
        id,
        secret: Secret::new(secret),
        token: Some(Secret::new(token)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_files_parse_like_the_sdks_read_them() {
        let ini = parse_ini(
            "# comment\n[default]\nsecret_id = AKIDx\nsecret_key=\"quoted\"\n; other\n[prod]\ntype: access_key\n",
        )
        .unwrap();
        assert_eq!(ini["default"]["secret_id"], "AKIDx");
        assert_eq!(ini["default"]["secret_key"], "quoted");
        assert_eq!(ini["prod"]["type"], "access_key");
        assert!(parse_ini("key = value\n").unwrap_err().contains("line 1"));
        assert!(
            parse_ini("[a]\nnot a pair\n")
                .unwrap_err()
                .contains("line 2")
        );
    }

    #[test]
    fn scrub_removes_raw_and_encoded_secrets() {
        let s = scrub("token a+b/c= then a%2Bb%2Fc%3D", &["a+b/c="]);
        assert_eq!(s, "token [redacted] then [redacted]");
    }

    #[test]
    fn shape_errors_never_quote_values() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            #[serde(rename = "AccessKeySecret")]
            secret: String,
        }
        let e = serde_json::from_str::<T>(r#"{"AccessKeySecret": 12345678}"#).unwrap_err();
        let m = shape_error("the answer", &e);
        assert!(!m.contains("12345678"), "{m}");
        let e = serde_json::from_str::<T>("{}").unwrap_err();
        assert_eq!(
            shape_error("the answer", &e),
            "the answer has no AccessKeySecret"
        );
    }
}
