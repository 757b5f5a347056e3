//! Credentials: the key pair (and session token) every request is signed with, where it
//! comes from, how it is kept fresh, and how it is kept out of logs, errors, metrics and
//! `Debug` output.
//!
//! A [`Secret`] has no `Display` and a redacted `Debug`; the only way to read it is
//! [`Secret::expose`], which signing code calls. A [`CredentialProvider`] hands out the
//! current credentials: static keys from environment variables or files (re-read when
//! older than [`FILE_REFRESH`], so rotated Kubernetes secrets are picked up without a
//! restart), or temporary ones from a source that expires ([`refresh`]: OIDC, instance
//! roles, assumed roles, profiles), refreshed in the background before they do.
//!
//! This module is cloud-neutral: what a cloud's sources send and read lives in
//! `providers/<cloud>/credentials.rs`, which implements [`refresh::Fetch`].

pub mod refresh;
pub mod spec;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kcle_clock::{Clock, Instant};

pub use refresh::{
    CredentialObserver, Fetch, FetchError, FetchFuture, Issued, NoCredentialObserver, Refresher,
    SourceKind,
};
pub use spec::{AssumeRoleSpec, BaseSource, CredentialSpec, OidcSpec};

/// How long file-sourced credentials are cached before they are read again.
pub const FILE_REFRESH: Duration = Duration::from_secs(30);

/// A secret string. `Debug` prints `Secret([redacted])`; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value, for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// A resolved key pair, with the session token of temporary (STS) credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// AccessKeyId (Alibaba) or SecretId (Tencent). Not secret: it names the key.
    pub id: String,
    /// AccessKeySecret (Alibaba) or SecretKey (Tencent).
    pub secret: Secret,
    /// SecurityToken (Alibaba) or Token (Tencent), for temporary credentials.
    pub token: Option<Secret>,
}

/// Where one credential value is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// An environment variable, by name.
    Env(String),
    /// A file whose whole content (trimmed) is the value, e.g. a mounted Kubernetes secret.
    File(PathBuf),
    /// A value given directly by code (the built-in simulator and tests); never from config.
    Inline(Secret),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Env(name) => write!(f, "environment variable {name}"),
            Source::File(path) => write!(f, "file {}", path.display()),
            Source::Inline(_) => f.write_str("inline value"),
        }
    }
}

/// The names of a cloud's standard credential variables: id, secret, and the token
/// variables tried in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CredentialEnv {
    pub id: &'static str,
    pub secret: &'static str,
    pub token: &'static [&'static str],
}

/// The sources of an account's id, secret and optional token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialSources {
    pub id: Source,
    pub secret: Source,
    /// Token sources tried in order; the first one that is set wins. Empty: no token.
    pub token: Vec<Source>,
}

impl CredentialSources {
    /// A cloud's standard environment variables (its provider's profile names them).
    pub fn standard(env: &CredentialEnv) -> Self {
        let var = |s: &str| Source::Env(s.to_string());
        CredentialSources {
            id: var(env.id),
            secret: var(env.secret),
            token: env.token.iter().map(|t| var(t)).collect(),
        }
    }

    /// Fixed credentials, for the simulator and tests.
    pub fn inline(id: &str, secret: &str, token: Option<&str>) -> Self {
        CredentialSources {
            id: Source::Inline(Secret::new(id)),
            secret: Source::Inline(Secret::new(secret)),
            token: token
                .map(|t| vec![Source::Inline(Secret::new(t))])
                .unwrap_or_default(),
        }
    }
}

/// Why credentials could not be read. Names the source, never the value.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CredentialError {
    #[error("credential {what}: {from} is not set")]
    NotSet { what: &'static str, from: Source },
    #[error("credential {what}: {from} is empty")]
    Empty { what: &'static str, from: Source },
    #[error(
        "credential {what}: {from} contains a control character (a line break inside the value?); it cannot be sent in a request"
    )]
    Malformed { what: &'static str, from: Source },
    #[error("credential {what}: cannot read {from}: {reason}")]
    Unreadable {
        what: &'static str,
        from: Source,
        reason: String,
    },
    /// A source of temporary credentials has none to give: not fetched yet, or expired
    /// and not refreshed. Names the source and why, never a secret.
    #[error("{message}")]
    Unavailable { kind: SourceKind, message: String },
}

impl CredentialError {
    /// Whether the credentials came from a source that signs in (STS, metadata) rather
    /// than from local keys that could not be read: such failures are `auth` failures.
    pub fn is_sign_in(&self) -> bool {
        matches!(self, CredentialError::Unavailable { .. })
    }
}

/// Where environment variables are read from: the process, or a fixed set (tests, so
/// that they never change the process environment other tests read).
#[derive(Clone, Debug, Default)]
pub enum Environment {
    #[default]
    Process,
    Fixed(Arc<BTreeMap<String, String>>),
}

impl Environment {
    /// A fixed set of variables.
    pub fn fixed<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        Environment::Fixed(Arc::new(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        ))
    }

    /// A variable's value; `Err` when it is set but not UTF-8.
    pub fn lookup(&self, name: &str) -> Result<Option<String>, NotUnicode> {
        match self {
            Environment::Process => match std::env::var(name) {
                Ok(v) => Ok(Some(v)),
                Err(std::env::VarError::NotPresent) => Ok(None),
                Err(std::env::VarError::NotUnicode(_)) => Err(NotUnicode),
            },
            Environment::Fixed(vars) => Ok(vars.get(name).cloned()),
        }
    }

    /// A variable's value when it is set, UTF-8 and not empty.
    pub fn var(&self, name: &str) -> Option<String> {
        self.lookup(name).ok().flatten().filter(|v| !v.is_empty())
    }

    /// Whether a variable is set to `true` (any case), the SDKs' switches.
    pub fn is_true(&self, name: &str) -> bool {
        self.var(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// An environment variable whose value is not UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the value is not valid UTF-8")]
pub struct NotUnicode;

/// Hands out an account's current credentials: static keys (environment variables, files,
/// inline values) or temporary ones kept fresh by a [`Refresher`]. Cheap to clone: every
/// region's provider of an account shares one, so that one refresh serves them all.
#[derive(Clone)]
pub struct CredentialProvider(Arc<Keeper>);

enum Keeper {
    Static(StaticKeys),
    Refreshing(Arc<Refresher>),
}

/// Static keys, with file reads cached for [`FILE_REFRESH`].
struct StaticKeys {
    sources: CredentialSources,
    env: Environment,
    clock: Clock,
    cache: Mutex<Option<(Instant, Arc<Credentials>)>>,
}

impl fmt::Debug for CredentialProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            Keeper::Static(keys) => f
                .debug_struct("CredentialProvider")
                .field("sources", &keys.sources)
                .finish_non_exhaustive(),
            Keeper::Refreshing(r) => f
                .debug_struct("CredentialProvider")
                .field("source", &r.describe())
                .finish_non_exhaustive(),
        }
    }
}

impl CredentialProvider {
    /// Static keys read from `sources` (environment variables of the process); `clock`
    /// times the re-reads of files.
    pub fn new(sources: CredentialSources, clock: Clock) -> Self {
        Self::with_env(sources, clock, Environment::Process)
    }

    /// Static keys whose environment variables are read from `env`.
    pub fn with_env(sources: CredentialSources, clock: Clock, env: Environment) -> Self {
        CredentialProvider(Arc::new(Keeper::Static(StaticKeys {
            sources,
            env,
            clock,
            cache: Mutex::new(None),
        })))
    }

    /// Temporary credentials, refreshed by `refresher`.
    pub fn refreshing(refresher: Arc<Refresher>) -> Self {
        CredentialProvider(Arc::new(Keeper::Refreshing(refresher)))
    }

    /// The static sources, for static keys.
    pub fn sources(&self) -> Option<&CredentialSources> {
        match &*self.0 {
            Keeper::Static(keys) => Some(&keys.sources),
            Keeper::Refreshing(_) => None,
        }
    }

    /// What the credentials come from, for messages (never a secret).
    pub fn describe(&self) -> String {
        match &*self.0 {
            Keeper::Static(keys) => {
                format!("static keys ({}, {})", keys.sources.id, keys.sources.secret)
            }
            Keeper::Refreshing(r) => r.describe(),
        }
    }

    /// Every source kind whose refresh failures this provider may count (none for static
    /// keys, which are never refreshed).
    pub fn kinds(&self) -> Vec<SourceKind> {
        match &*self.0 {
            Keeper::Static(_) => Vec::new(),
            Keeper::Refreshing(r) => r.kinds(),
        }
    }

    /// The current credentials. Static: environment variables are read on every call
    /// (cheap), files at most every [`FILE_REFRESH`]. Temporary: the cached ones, with a
    /// refresh started in the background when they are due; only the first call, and
    /// calls after they expired, wait for a refresh (one for all callers).
    pub async fn get(&self) -> Result<Arc<Credentials>, CredentialError> {
        match &*self.0 {
            Keeper::Static(keys) => keys.get(),
            Keeper::Refreshing(r) => r.get().await,
        }
    }
}

impl StaticKeys {
    fn get(&self) -> Result<Arc<Credentials>, CredentialError> {
        let uses_files = self.uses_files();
        if uses_files {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, creds)) = cache.as_ref()
                && self.clock.instant().saturating_duration_since(*at) < FILE_REFRESH
            {
                return Ok(creds.clone());
            }
        }
        let creds = Arc::new(resolve_in(&self.sources, &self.env)?);
        if uses_files {
            *self.cache.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((self.clock.instant(), creds.clone()));
        }
        Ok(creds)
    }

    fn uses_files(&self) -> bool {
        std::iter::once(&self.sources.id)
            .chain(std::iter::once(&self.sources.secret))
            .chain(self.sources.token.iter())
            .any(|s| matches!(s, Source::File(_)))
    }
}

/// Reads every source once.
///
/// The id and the token travel in headers and query strings, so a control character in
/// them (an inner line break in a file, say) is refused here, naming the source; the
/// secret only keys the signature and may hold any character.
pub fn resolve(sources: &CredentialSources) -> Result<Credentials, CredentialError> {
    resolve_in(sources, &Environment::Process)
}

/// [`resolve`], reading environment variables from `env`.
pub fn resolve_in(
    sources: &CredentialSources,
    env: &Environment,
) -> Result<Credentials, CredentialError> {
    let id = read_required("id", &sources.id, env)?;
    sendable("id", &sources.id, &id)?;
    let secret = read_required("secret", &sources.secret, env)?;
    let mut token = None;
    for source in &sources.token {
        if let Some(value) = read_optional("token", source, env)? {
            sendable("token", source, &value)?;
            token = Some(value);
            break;
        }
    }
    Ok(Credentials {
        id: id.0,
        secret,
        token,
    })
}

fn sendable(what: &'static str, source: &Source, value: &Secret) -> Result<(), CredentialError> {
    if value.expose().chars().any(char::is_control) {
        return Err(CredentialError::Malformed {
            what,
            from: source.clone(),
        });
    }
    Ok(())
}

fn read_required(
    what: &'static str,
    source: &Source,
    env: &Environment,
) -> Result<Secret, CredentialError> {
    match read_optional(what, source, env)? {
        Some(v) => Ok(v),
        None => Err(CredentialError::NotSet {
            what,
            from: source.clone(),
        }),
    }
}

/// `Ok(None)` when an environment variable is unset; files must exist once named.
fn read_optional(
    what: &'static str,
    source: &Source,
    env: &Environment,
) -> Result<Option<Secret>, CredentialError> {
    let value = match source {
        Source::Env(name) => match env.lookup(name) {
            Ok(Some(v)) => v,
            Ok(None) => return Ok(None),
            Err(NotUnicode) => {
                return Err(CredentialError::Unreadable {
                    what,
                    from: source.clone(),
                    reason: "value is not valid UTF-8".into(),
                });
            }
        },
        Source::File(path) => read_file(what, source, path)?,
        Source::Inline(secret) => secret.expose().to_string(),
    };
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(CredentialError::Empty {
            what,
            from: source.clone(),
        });
    }
    Ok(Some(Secret::new(trimmed)))
}

fn read_file(what: &'static str, source: &Source, path: &Path) -> Result<String, CredentialError> {
    std::fs::read_to_string(path).map_err(|e| CredentialError::Unreadable {
        what,
        from: source.clone(),
        reason: e.kind().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn secret_debug_is_redacted() {
        let creds = Credentials {
            id: "AKIDvisible".into(),
            secret: Secret::new("topsecret-value"),
            token: Some(Secret::new("token-value")),
        };
        let dbg = format!("{creds:?}");
        assert!(dbg.contains("AKIDvisible"));
        assert!(!dbg.contains("topsecret-value"));
        assert!(!dbg.contains("token-value"));
        assert!(dbg.contains("[redacted]"));
    }

    #[test]
    fn files_are_trimmed_and_errors_name_the_source_not_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let id = dir.path().join("id");
        let secret = dir.path().join("secret");
        std::fs::File::create(&id)
            .unwrap()
            .write_all(b"my-id\n")
            .unwrap();
        std::fs::File::create(&secret)
            .unwrap()
            .write_all(b"  s3cr3t-in-file\n")
            .unwrap();
        let sources = CredentialSources {
            id: Source::File(id.clone()),
            secret: Source::File(secret.clone()),
            token: vec![Source::File(dir.path().join("missing-token"))],
        };
        let err = resolve(&sources).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("missing-token"), "{msg}");
        assert!(!msg.contains("s3cr3t-in-file"), "{msg}");

        let sources = CredentialSources {
            token: vec![],
            ..sources
        };
        let creds = resolve(&sources).unwrap();
        assert_eq!(creds.id, "my-id");
        assert_eq!(creds.secret.expose(), "s3cr3t-in-file");
        assert_eq!(creds.token, None);
    }

    #[test]
    fn ids_and_tokens_with_control_characters_are_refused_by_source() {
        let dir = tempfile::tempdir().unwrap();
        let id = dir.path().join("id");
        std::fs::write(&id, "AKID-one\nAKID-two\n").unwrap();
        let sources = CredentialSources {
            id: Source::File(id.clone()),
            secret: Source::Inline(Secret::new("s\u{1}ecret is fine")),
            token: vec![],
        };
        let err = resolve(&sources).unwrap_err().to_string();
        assert!(err.starts_with("credential id: file "), "{err}");
        assert!(err.contains("control character"), "{err}");
        assert!(!err.contains("AKID-one"), "{err}");
        let sources = CredentialSources {
            id: Source::Inline(Secret::new("AKID")),
            token: vec![Source::Inline(Secret::new("tok\ten"))],
            ..sources
        };
        let err = resolve(&sources).unwrap_err().to_string();
        assert!(err.starts_with("credential token: "), "{err}");
        let sources = CredentialSources {
            token: vec![],
            ..sources
        };
        assert!(
            resolve(&sources).is_ok(),
            "any character in the secret is fine"
        );
    }

    #[test]
    fn unset_env_is_reported_by_name() {
        let sources = CredentialSources {
            id: Source::Env("KCLE_TEST_SURELY_UNSET_ID".into()),
            secret: Source::Env("KCLE_TEST_SURELY_UNSET_SECRET".into()),
            token: vec![],
        };
        let err = resolve(&sources).unwrap_err();
        assert_eq!(
            err.to_string(),
            "credential id: environment variable KCLE_TEST_SURELY_UNSET_ID is not set"
        );
    }

    #[test]
    fn first_set_token_source_wins() {
        let sources = CredentialSources {
            id: Source::Inline(Secret::new("id")),
            secret: Source::Inline(Secret::new("secret")),
            token: vec![
                Source::Env("KCLE_TEST_SURELY_UNSET_TOKEN".into()),
                Source::Inline(Secret::new("tok")),
            ],
        };
        let creds = resolve(&sources).unwrap();
        assert_eq!(creds.token.unwrap().expose(), "tok");
    }
}
