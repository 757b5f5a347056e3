//! The web configuration file (`--web.config.file`) in Prometheus exporter-toolkit's
//! format: TLS for the HTTP server, basic-auth users and extra response headers.
//!
//! Owns the schema (unknown keys rejected, as exporter-toolkit's strict YAML does),
//! validation that names the file, the field and what is allowed, loading PEM files
//! into a rustls `ServerConfig`, and [`WebConfigSource`], which re-reads the file (and
//! the certificate files it names) on every new connection and request and switches
//! to the new content when it is valid. It never logs a password, hash or key.
//!
//! What differs from exporter-toolkit, on purpose (README "Protecting /metrics"):
//! TLS 1.0 and 1.1 and CBC/RSA-key-exchange cipher suites are refused because rustls
//! does not implement them; `CurveP521` is refused (no P-521 key exchange in the ring
//! provider); `http2` is accepted but the server speaks HTTP/1.1 only; `rate_limit` is
//! refused; turning TLS on or off needs a restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hyper::header::{HeaderName, HeaderValue};
use rustls::crypto::SupportedKxGroup;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite, SupportedProtocolVersion};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

use super::basic_auth::Users;
use super::client_cert::{self, ClientAuthType};
use crate::config::{ConfigError, parse_yaml};

/// The file as written (exporter-toolkit's `Config`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebConfigFile {
    #[serde(default)]
    tls_server_config: Option<TlsServerConfig>,
    #[serde(default)]
    http_server_config: Option<HttpServerConfig>,
    #[serde(default, deserialize_with = "unique_users")]
    basic_auth_users: Option<BTreeMap<String, String>>,
    /// exporter-toolkit's request rate limiter: refused with an explanation.
    #[serde(default)]
    rate_limit: Option<serde_yaml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsServerConfig {
    #[serde(default)]
    cert: Option<String>,
    #[serde(default)]
    key: Option<Secret>,
    #[serde(default)]
    client_ca: Option<String>,
    #[serde(default)]
    cert_file: Option<PathBuf>,
    #[serde(default)]
    key_file: Option<PathBuf>,
    #[serde(default)]
    client_ca_file: Option<PathBuf>,
    #[serde(default)]
    client_auth_type: Option<ClientAuthType>,
    #[serde(default)]
    client_allowed_sans: Option<Vec<String>>,
    #[serde(default)]
    min_version: Option<TlsVersion>,
    #[serde(default)]
    max_version: Option<TlsVersion>,
    #[serde(default)]
    cipher_suites: Option<Vec<String>>,
    #[serde(default)]
    prefer_server_cipher_suites: Option<bool>,
    #[serde(default)]
    curve_preferences: Option<Vec<String>>,
}

impl TlsServerConfig {
    /// exporter-toolkit's `IsEnabled`, widened: any setting at all turns TLS on (and
    /// then needs a certificate), rather than silently serving plain HTTP.
    fn is_set(&self) -> bool {
        let TlsServerConfig {
            cert,
            key,
            client_ca,
            cert_file,
            key_file,
            client_ca_file,
            client_auth_type,
            client_allowed_sans,
            min_version,
            max_version,
            cipher_suites,
            prefer_server_cipher_suites,
            curve_preferences,
        } = self;
        cert.is_some()
            || key.is_some()
            || client_ca.is_some()
            || cert_file.is_some()
            || key_file.is_some()
            || client_ca_file.is_some()
            || client_auth_type.is_some()
            || client_allowed_sans.is_some()
            || min_version.is_some()
            || max_version.is_some()
            || cipher_suites.is_some()
            || prefer_server_cipher_suites.is_some()
            || curve_preferences.is_some()
    }
}

/// An inline private key: never printed.
#[derive(Deserialize)]
#[serde(transparent)]
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// exporter-toolkit's TLS version names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
enum TlsVersion {
    TLS10,
    TLS11,
    TLS12,
    TLS13,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpServerConfig {
    /// Accepted for compatibility; this server speaks HTTP/1.1 only.
    #[serde(default)]
    #[allow(dead_code)]
    http2: Option<bool>,
    #[serde(default)]
    headers: Option<HeadersConfig>,
}

/// The response headers exporter-toolkit allows; blank means unset.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadersConfig {
    #[serde(rename = "Content-Security-Policy", default)]
    content_security_policy: Option<String>,
    #[serde(rename = "X-Frame-Options", default)]
    x_frame_options: Option<String>,
    #[serde(rename = "X-Content-Type-Options", default)]
    x_content_type_options: Option<String>,
    #[serde(rename = "X-XSS-Protection", default)]
    x_xss_protection: Option<String>,
    #[serde(rename = "Strict-Transport-Security", default)]
    strict_transport_security: Option<String>,
}

/// A loaded, valid web configuration: what the server applies.
#[derive(Clone, Default)]
pub struct WebConfig {
    /// Present when the server speaks HTTPS.
    pub tls: Option<TlsAcceptor>,
    /// Basic-auth users; `None` when no authentication is required.
    pub users: Option<Users>,
    /// Extra headers for every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users)
            .field("headers", &self.headers)
            .finish()
    }
}

impl WebConfig {
    /// Reads, parses and validates a web configuration file and every file it names.
    pub fn load(path: &Path) -> Result<WebConfig, ConfigError> {
        Ok(Loaded::read(path)?.config.as_ref().clone())
    }

    /// One line for the start-up log: what is on.
    pub fn summary(&self) -> String {
        format!(
            "tls={} basic_auth_users={}",
            self.tls.is_some(),
            self.users.as_ref().map_or(0, Users::len)
        )
    }
}

/// A loaded configuration with the fingerprint of what it was built from.
struct Loaded {
    config: Arc<WebConfig>,
    /// The files read (the web config first), to notice changes.
    files: Vec<PathBuf>,
    fingerprint: Vec<[u8; 32]>,
}

impl Loaded {
    fn read(path: &Path) -> Result<Loaded, ConfigError> {
        let mut reader = Reader {
            path,
            files: Vec::new(),
            fingerprint: Vec::new(),
        };
        let text = reader.read(path).map_err(|source| ConfigError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(text).map_err(|_| ConfigError::Parse {
            file: path.to_path_buf(),
            message: "the file is not UTF-8 text".into(),
        })?;
        let file: WebConfigFile = if is_blank_yaml(&text) {
            WebConfigFile::default()
        } else {
            parse_yaml(&text, path)?
        };
        let config = build(file, &mut reader)?;
        Ok(Loaded {
            config: Arc::new(config),
            files: reader.files,
            fingerprint: reader.fingerprint,
        })
    }
}

/// `basic_auth_users` with a user listed twice is an error (the YAML parser would keep
/// the last one silently; exporter-toolkit's strict YAML refuses it).
fn unique_users<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Option<BTreeMap<String, String>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map of user names to bcrypt hashes")
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut users = BTreeMap::new();
            while let Some((user, hash)) = map.next_entry::<String, String>()? {
                if users.contains_key(&user) {
                    return Err(serde::de::Error::custom(format!(
                        "user {user:?} is listed twice"
                    )));
                }
                users.insert(user, hash);
            }
            Ok(Some(users))
        }
    }
    d.deserialize_option(Visitor)
}

/// Only comments and blank lines: exporter-toolkit treats such a file as "no TLS, no
/// authentication", while the YAML parser would call it a missing document.
fn is_blank_yaml(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---" || l == "..."
    })
}

/// Reads files for one load, remembering what it read.
struct Reader<'a> {
    path: &'a Path,
    files: Vec<PathBuf>,
    fingerprint: Vec<[u8; 32]>,
}

impl Reader<'_> {
    fn read(&mut self, file: &Path) -> std::io::Result<Vec<u8>> {
        let bytes = std::fs::read(file)?;
        self.files.push(file.to_path_buf());
        self.fingerprint.push(Sha256::digest(&bytes).into());
        Ok(bytes)
    }

    /// Relative paths are relative to the web configuration file, as in exporter-toolkit.
    fn resolve(&self, file: &Path) -> PathBuf {
        match self.path.parent() {
            Some(dir) if file.is_relative() => dir.join(file),
            _ => file.to_path_buf(),
        }
    }

    fn invalid(&self, field: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.path.to_path_buf(),
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// PEM from a file field or an inline field (exactly one of them).
    fn pem(
        &mut self,
        file_field: &str,
        file: Option<&Path>,
        inline_field: &str,
        inline: Option<&str>,
    ) -> Result<Option<(String, Vec<u8>)>, ConfigError> {
        match (file, inline) {
            (Some(_), Some(_)) => Err(self.invalid(
                file_field,
                format!("set only one of {file_field} and {inline_field}"),
            )),
            (Some(file), None) => {
                let resolved = self.resolve(file);
                let bytes = self.read(&resolved).map_err(|e| {
                    self.invalid(
                        file_field,
                        format!("cannot read {}: {e}", resolved.display()),
                    )
                })?;
                Ok(Some((file_field.to_string(), bytes)))
            }
            (None, Some(text)) => Ok(Some((inline_field.to_string(), text.as_bytes().to_vec()))),
            (None, None) => Ok(None),
        }
    }
}

/// Names of the TLS 1.2 cipher suites the ring provider implements, spelled as Go's
/// `tls.CipherSuiteName` (with Go's older short names for ChaCha20 as aliases).
fn tls12_suites() -> [(&'static str, SupportedCipherSuite); 6] {
    use rustls::crypto::ring::cipher_suite as cs;
    [
        (
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        (
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
    ]
}

/// TLS 1.3 suite names Go accepts in `cipher_suites`; as in Go they change nothing
/// (TLS 1.3 suites are not configurable).
const TLS13_SUITE_NAMES: [&str; 3] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

fn suite_by_name(name: &str) -> Option<SupportedCipherSuite> {
    let name = match name {
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        n => n,
    };
    tls12_suites()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| s)
}

fn curve_by_name(name: &str) -> Option<&'static dyn SupportedKxGroup> {
    use rustls::crypto::ring::kx_group;
    match name {
        "X25519" => Some(kx_group::X25519),
        "CurveP256" => Some(kx_group::SECP256R1),
        "CurveP384" => Some(kx_group::SECP384R1),
        _ => None,
    }
}

fn build(file: WebConfigFile, reader: &mut Reader<'_>) -> Result<WebConfig, ConfigError> {
    if file.rate_limit.is_some() {
        return Err(reader.invalid(
            "rate_limit",
            "not supported by this exporter; remove it (/metrics is rendered from memory, so scrapes are cheap)",
        ));
    }
    let mut headers = Vec::new();
    if let Some(h) = file.http_server_config.and_then(|c| c.headers) {
        let fields = [
            (
                "Content-Security-Policy",
                h.content_security_policy,
                &[][..],
            ),
            (
                "X-Frame-Options",
                h.x_frame_options,
                &["deny", "sameorigin"][..],
            ),
            (
                "X-Content-Type-Options",
                h.x_content_type_options,
                &["nosniff"][..],
            ),
            ("X-XSS-Protection", h.x_xss_protection, &[][..]),
            (
                "Strict-Transport-Security",
                h.strict_transport_security,
                &[][..],
            ),
        ];
        for (name, value, allowed) in fields {
            let Some(value) = value.filter(|v| !v.is_empty()) else {
                continue;
            };
            let field = format!("http_server_config.headers.{name}");
            if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
                return Err(reader.invalid(
                    &field,
                    format!("{value:?} is not allowed; allowed: {}", allowed.join(", ")),
                ));
            }
            let value = HeaderValue::from_str(&value).map_err(|_| {
                reader.invalid(&field, format!("{value:?} is not a valid header value"))
            })?;
            // from_bytes lower-cases the canonical spelling.
            let name =
                HeaderName::from_bytes(name.as_bytes()).expect("allowed header names are valid");
            headers.push((name, value));
        }
    }
    let users = match file.basic_auth_users {
        Some(users) if !users.is_empty() => {
            Some(Users::new(users).map_err(|(user, message)| {
                reader.invalid(&format!("basic_auth_users.{user}"), message)
            })?)
        }
        _ => None,
    };
    let tls = match file.tls_server_config {
        Some(tls) if tls.is_set() => Some(TlsAcceptor::from(Arc::new(server_config(tls, reader)?))),
        _ => None,
    };
    Ok(WebConfig {
        tls,
        users,
        headers,
    })
}

fn server_config(tls: TlsServerConfig, r: &mut Reader<'_>) -> Result<ServerConfig, ConfigError> {
    const P: &str = "tls_server_config";
    let field = |name: &str| format!("{P}.{name}");

    // Versions.
    let version = |name: &str, v: Option<TlsVersion>, default: TlsVersion| {
        match v.unwrap_or(default) {
        TlsVersion::TLS10 | TlsVersion::TLS11 => Err(r.invalid(
            &field(name),
            format!(
                "{:?} is not supported (rustls implements TLS 1.2 and 1.3 only); allowed: TLS12, TLS13",
                v.unwrap_or(default)
            ),
        )),
        v => Ok(v),
    }
    };
    let min = version("min_version", tls.min_version, TlsVersion::TLS12)?;
    let max = version("max_version", tls.max_version, TlsVersion::TLS13)?;
    if min > max {
        return Err(r.invalid(
            &field("max_version"),
            format!("{max:?} is lower than min_version ({min:?})"),
        ));
    }
    let versions: Vec<&'static SupportedProtocolVersion> = [
        (TlsVersion::TLS12, &rustls::version::TLS12),
        (TlsVersion::TLS13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (min..=max).contains(v))
    .map(|(_, p)| p)
    .collect();

    // Cipher suites: TLS 1.3 ones always (as in Go), TLS 1.2 ones as listed.
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = &tls.cipher_suites {
        let mut tls12 = Vec::new();
        for (i, name) in names.iter().enumerate() {
            if TLS13_SUITE_NAMES.contains(&name.as_str()) {
                continue;
            }
            let Some(suite) = suite_by_name(name) else {
                let allowed: Vec<&str> = tls12_suites()
                    .iter()
                    .map(|(n, _)| *n)
                    .chain(TLS13_SUITE_NAMES)
                    .collect();
                return Err(r.invalid(
                    &format!("{P}.cipher_suites[{i}]"),
                    format!(
                        "{name:?} is not supported (rustls implements only ECDHE key exchange with AES-GCM or ChaCha20-Poly1305); allowed: {}",
                        allowed.join(", ")
                    ),
                ));
            };
            if !tls12.contains(&suite) {
                tls12.push(suite);
            }
        }
        if tls12.is_empty() && min == TlsVersion::TLS12 && !names.is_empty() {
            return Err(r.invalid(
                &field("cipher_suites"),
                "lists no TLS 1.2 cipher suite, so no TLS 1.2 client could connect; add one or set min_version: TLS13",
            ));
        }
        if !names.is_empty() {
            provider
                .cipher_suites
                .retain(|s| matches!(s, SupportedCipherSuite::Tls13(_)));
            provider.cipher_suites.extend(tls12);
        }
    }
    if let Some(names) = &tls.curve_preferences
        && !names.is_empty()
    {
        let mut groups: Vec<&'static dyn SupportedKxGroup> = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let Some(group) = curve_by_name(name) else {
                let why = if name == "CurveP521" {
                    " (the ring provider has no P-521 key exchange)"
                } else {
                    ""
                };
                return Err(r.invalid(
                    &format!("{P}.curve_preferences[{i}]"),
                    format!(
                        "{name:?} is not supported{why}; allowed: X25519, CurveP256, CurveP384"
                    ),
                ));
            };
            if !groups.iter().any(|g| g.name() == group.name()) {
                groups.push(group);
            }
        }
        provider.kx_groups = groups;
    }
    let provider = Arc::new(provider);

    // Certificate and key.
    let cert = r.pem(
        &field("cert_file"),
        tls.cert_file.as_deref(),
        &field("cert"),
        tls.cert.as_deref(),
    )?;
    let key = r.pem(
        &field("key_file"),
        tls.key_file.as_deref(),
        &field("key"),
        tls.key.as_ref().map(|s| s.0.as_str()),
    )?;
    let (cert_field, cert_pem) = cert.ok_or_else(|| {
        r.invalid(
            &field("cert_file"),
            "required when tls_server_config is set (or an inline cert)",
        )
    })?;
    let (key_field, key_pem) = key.ok_or_else(|| {
        r.invalid(
            &field("key_file"),
            "required when tls_server_config is set (or an inline key)",
        )
    })?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| r.invalid(&cert_field, format!("bad PEM: {e}")))?;
    if chain.is_empty() {
        return Err(r.invalid(
            &cert_field,
            "no certificate found; expected PEM with \"-----BEGIN CERTIFICATE-----\"",
        ));
    }
    // The key's own error text is safe (it never quotes key material), but keep it short.
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        let why = match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no private key found; expected PEM with \"-----BEGIN PRIVATE KEY-----\" (PKCS#8), \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\"".to_string()
            }
            e => format!("bad PEM: {e}"),
        };
        r.invalid(&key_field, why)
    })?;

    // Client certificates.
    let auth = tls.client_auth_type.unwrap_or_default();
    let ca = r.pem(
        &field("client_ca_file"),
        tls.client_ca_file.as_deref(),
        &field("client_ca"),
        tls.client_ca.as_deref(),
    )?;
    let roots = match ca {
        None => None,
        Some((ca_field, pem)) => {
            if auth == ClientAuthType::NoClientCert {
                return Err(r.invalid(
                    &ca_field,
                    "a client CA is set but client_auth_type is NoClientCert; set client_auth_type (RequireAndVerifyClientCert to verify client certificates)",
                ));
            }
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| r.invalid(&ca_field, format!("bad PEM: {e}")))?;
                roots.add(cert).map_err(|e| {
                    r.invalid(&ca_field, format!("not a usable CA certificate: {e}"))
                })?;
            }
            if roots.is_empty() {
                return Err(r.invalid(
                    &ca_field,
                    "no certificate found; expected PEM with \"-----BEGIN CERTIFICATE-----\"",
                ));
            }
            Some(roots)
        }
    };
    if auth.verifies() && roots.is_none() {
        return Err(r.invalid(
            &field("client_auth_type"),
            format!(
                "{auth:?} verifies client certificates and needs client_ca_file (or client_ca)"
            ),
        ));
    }
    if tls.client_allowed_sans.is_some() && !auth.requires_certificate() {
        return Err(r.invalid(
            &field("client_allowed_sans"),
            format!(
                "requires client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert (it is {auth:?}, which lets clients connect without a certificate)"
            ),
        ));
    }
    let verifier = client_cert::verifier(auth, roots, tls.client_allowed_sans, provider.clone())
        .map_err(|e| r.invalid(&field("client_auth_type"), e))?;

    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| r.invalid(&field("min_version"), e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            let message = match e {
                rustls::Error::InconsistentKeys(_) => {
                    "the private key does not belong to the certificate".to_string()
                }
                e => format!("the certificate and key cannot be used: {e}"),
            };
            r.invalid(&key_field, message)
        })?;
    config.ignore_client_order = tls.prefer_server_cipher_suites.unwrap_or(true);
    // HTTP/1.1 only; a client offering only h2 fails the handshake instead of talking
    // HTTP/1.1 to a server it believes speaks HTTP/2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The web configuration in force, re-read when its file or the files it names change.
///
/// exporter-toolkit re-reads the file on every request and the certificate on every
/// handshake; here [`WebConfigSource::current`] re-reads the same files on every new
/// connection and every request, compares their SHA-256 with those of the last good
/// load, and only parses and rebuilds when something changed. An invalid change keeps
/// the last good configuration and is logged once.
pub struct WebConfigSource {
    path: PathBuf,
    state: Mutex<State>,
}

struct State {
    good: Loaded,
    /// Fingerprint of the last rejected content, so that it is logged once.
    rejected: Option<Vec<[u8; 32]>>,
}

impl std::fmt::Debug for WebConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfigSource")
            .field("path", &self.path)
            .finish()
    }
}

impl WebConfigSource {
    /// Loads the file; an error here is a start-up error (exit status 2).
    pub fn load(path: &Path) -> Result<WebConfigSource, ConfigError> {
        let good = Loaded::read(path)?;
        Ok(WebConfigSource {
            path: path.to_path_buf(),
            state: Mutex::new(State {
                good,
                rejected: None,
            }),
        })
    }

    /// The configuration to apply now, after picking up any valid change.
    pub fn current(&self) -> Arc<WebConfig> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let fingerprint: Vec<[u8; 32]> = state
            .good
            .files
            .iter()
            .map(|f| std::fs::read(f).map_or([0; 32], |b| Sha256::digest(&b).into()))
            .collect();
        if fingerprint == state.good.fingerprint || state.rejected.as_ref() == Some(&fingerprint) {
            return state.good.config.clone();
        }
        match Loaded::read(&self.path).and_then(|new| {
            if new.config.tls.is_some() == state.good.config.tls.is_some() {
                Ok(new)
            } else {
                Err(ConfigError::Invalid {
                    file: self.path.clone(),
                    field: "tls_server_config".into(),
                    message: "turning TLS on or off needs a restart".into(),
                })
            }
        }) {
            Ok(new) => {
                tracing::info!(file = %self.path.display(), settings = %new.config.summary(), "web configuration reloaded");
                state.good = new;
                state.rejected = None;
            }
            Err(e) => {
                tracing::error!(error = %e, "web configuration change rejected; the previous one stays in force");
                state.rejected = Some(fingerprint);
            }
        }
        state.good.config.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA and a server certificate signed by it, as PEM.
    struct Pki {
        ca: String,
        cert: String,
        key: String,
    }

    fn pki() -> Pki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        Pki {
            ca: ca.pem(),
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// A directory with the PKI files and `web.yml`.
    fn dir_with(pki: &Pki) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), &pki.ca).unwrap();
        std::fs::write(dir.path().join("server.crt"), &pki.cert).unwrap();
        std::fs::write(dir.path().join("server.key"), &pki.key).unwrap();
        std::fs::write(
            dir.path().join("other.key"),
            rcgen::KeyPair::generate().unwrap().serialize_pem(),
        )
        .unwrap();
        dir
    }

    fn load(dir: &tempfile::TempDir, yaml: &str) -> Result<WebConfig, String> {
        let path = dir.path().join("web.yml");
        std::fs::write(&path, yaml).unwrap();
        WebConfig::load(&path).map_err(|e| {
            let s = e.to_string();
            let prefix = format!("{}: ", path.display());
            s.strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{s:?} does not start with the file name"))
                .to_string()
        })
    }

    const HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

    #[test]
    fn empty_and_comment_only_files_mean_no_tls_and_no_auth() {
        let dir = dir_with(&pki());
        for yaml in [
            "",
            "# nothing yet\n",
            "---\n",
            "tls_server_config:\nbasic_auth_users: {}\n",
        ] {
            let c = load(&dir, yaml).unwrap();
            assert!(
                c.tls.is_none() && c.users.is_none() && c.headers.is_empty(),
                "{yaml:?}"
            );
        }
    }

    #[test]
    fn full_exporter_toolkit_example_loads() {
        let dir = dir_with(&pki());
        let c = load(
            &dir,
            &format!(
                "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  client_allowed_sans: [prometheus.example]\n  min_version: TLS12\n  max_version: TLS13\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]\n  prefer_server_cipher_suites: true\n  curve_preferences: [X25519, CurveP256]\nhttp_server_config:\n  http2: true\n  headers:\n    X-Frame-Options: deny\n    X-Content-Type-Options: nosniff\n    Strict-Transport-Security: max-age=31536000\n    X-XSS-Protection: ''\nbasic_auth_users:\n  prom: '{HASH}'\n"
            ),
        )
        .unwrap();
        assert!(c.tls.is_some());
        assert_eq!(c.users.as_ref().map(Users::len), Some(1));
        let names: Vec<&str> = c.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "x-frame-options",
                "x-content-type-options",
                "strict-transport-security"
            ]
        );
        assert_eq!(c.summary(), "tls=true basic_auth_users=1");
    }

    #[test]
    fn inline_pem_is_accepted() {
        let pki = pki();
        let dir = dir_with(&pki);
        let indent = |s: &str| s.lines().map(|l| format!("    {l}\n")).collect::<String>();
        let c = load(
            &dir,
            &format!(
                "tls_server_config:\n  cert: |\n{}  key: |\n{}",
                indent(&pki.cert),
                indent(&pki.key)
            ),
        )
        .unwrap();
        assert!(c.tls.is_some());
    }

    /// Each bad file and fragments its message must contain.
    #[test]
    fn bad_files_name_the_field_and_what_is_allowed() {
        let dir = dir_with(&pki());
        let tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
        let cases: Vec<(String, &[&str])> = vec![
            (
                "colour: blue\n".into(),
                &[
                    "unknown field `colour`",
                    "tls_server_config",
                    "basic_auth_users",
                ],
            ),
            (
                "tls_server_config:\n  certfile: x\n".into(),
                &["tls_server_config", "unknown field `certfile`", "cert_file"],
            ),
            (
                "tls_server_config:\n  min_version: TLS12\n".into(),
                &["tls_server_config.cert_file", "required"],
            ),
            (
                "tls_server_config:\n  cert_file: server.crt\n".into(),
                &["tls_server_config.key_file", "required"],
            ),
            (
                format!("{tls}  min_version: TLS10\n"),
                &["tls_server_config.min_version", "TLS10", "TLS12, TLS13"],
            ),
            (
                format!("{tls}  max_version: TLS11\n"),
                &["tls_server_config.max_version", "TLS11", "TLS12, TLS13"],
            ),
            (
                format!("{tls}  min_version: TLS14\n"),
                &[
                    "tls_server_config.min_version",
                    "unknown variant `TLS14`",
                    "TLS13",
                ],
            ),
            (
                format!("{tls}  min_version: TLS13\n  max_version: TLS12\n"),
                &["tls_server_config.max_version", "lower than min_version"],
            ),
            (
                format!("{tls}  client_auth_type: RequireSomething\n"),
                &[
                    "tls_server_config.client_auth_type",
                    "RequireSomething",
                    "RequireAndVerifyClientCert",
                    "NoClientCert",
                ],
            ),
            (
                format!("{tls}  client_auth_type: RequireAndVerifyClientCert\n"),
                &["tls_server_config.client_auth_type", "client_ca_file"],
            ),
            (
                format!("{tls}  client_ca_file: ca.crt\n"),
                &["tls_server_config.client_ca_file", "NoClientCert"],
            ),
            (
                format!(
                    "{tls}  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\n  client_allowed_sans: [a]\n"
                ),
                &[
                    "tls_server_config.client_allowed_sans",
                    "RequireAnyClientCert or RequireAndVerifyClientCert",
                ],
            ),
            (
                format!("{tls}  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]\n"),
                &[
                    "tls_server_config.cipher_suites[0]",
                    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
                    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                ],
            ),
            (
                format!("{tls}  cipher_suites: [TLS_AES_128_GCM_SHA256]\n"),
                &[
                    "tls_server_config.cipher_suites",
                    "no TLS 1.2 cipher suite",
                    "min_version: TLS13",
                ],
            ),
            (
                format!("{tls}  curve_preferences: [X25519, CurveP521]\n"),
                &[
                    "tls_server_config.curve_preferences[1]",
                    "P-521",
                    "X25519, CurveP256, CurveP384",
                ],
            ),
            (
                "tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n".into(),
                &["tls_server_config.cert_file", "missing.crt", "cannot read"],
            ),
            (
                "tls_server_config:\n  cert_file: server.key\n  key_file: server.key\n".into(),
                &["tls_server_config.cert_file", "no certificate found"],
            ),
            (
                "tls_server_config:\n  cert_file: server.crt\n  key_file: server.crt\n".into(),
                &["tls_server_config.key_file", "no private key found"],
            ),
            (
                "tls_server_config:\n  cert_file: server.crt\n  key_file: other.key\n".into(),
                &[
                    "tls_server_config.key_file",
                    "does not belong to the certificate",
                ],
            ),
            (
                format!("{tls}  cert: inline\n"),
                &[
                    "tls_server_config.cert_file",
                    "only one of",
                    "tls_server_config.cert",
                ],
            ),
            (
                "basic_auth_users:\n  prom: hunter2\n".into(),
                &["basic_auth_users.prom", "bcrypt", "htpasswd"],
            ),
            (
                "http_server_config:\n  headers:\n    X-Frame-Options: allow\n".into(),
                &[
                    "http_server_config.headers.X-Frame-Options",
                    "deny, sameorigin",
                ],
            ),
            (
                "http_server_config:\n  headers:\n    X-Powered-By: rust\n".into(),
                &[
                    "http_server_config.headers",
                    "unknown field `X-Powered-By`",
                    "Content-Security-Policy",
                ],
            ),
            (
                "rate_limit:\n  interval: 1s\n  burst: 5\n".into(),
                &["rate_limit", "not supported"],
            ),
            (
                "basic_auth_users: [a]\n".into(),
                &["basic_auth_users", "invalid type"],
            ),
            (
                format!("basic_auth_users:\n  prom: '{HASH}'\n  prom: '{HASH}'\n"),
                &["basic_auth_users", "\"prom\" is listed twice"],
            ),
        ];
        for (yaml, fragments) in &cases {
            let err = load(&dir, yaml).expect_err(yaml);
            for f in *fragments {
                assert!(err.contains(f), "{yaml:?}: {err:?} lacks {f:?}");
            }
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn missing_file_is_a_read_error_naming_it() {
        let err = WebConfig::load(Path::new("/nonexistent/web.yml")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/nonexistent/web.yml: cannot read"),
            "{err}"
        );
    }

    #[test]
    fn source_picks_up_valid_changes_and_keeps_the_last_good_one() {
        let dir = dir_with(&pki());
        let path = dir.path().join("web.yml");
        std::fs::write(&path, format!("basic_auth_users:\n  prom: '{HASH}'\n")).unwrap();
        let source = WebConfigSource::load(&path).unwrap();
        let first = source.current();
        assert!(
            Arc::ptr_eq(&first, &source.current()),
            "unchanged file: same config"
        );

        std::fs::write(
            &path,
            format!("basic_auth_users:\n  prom: '{HASH}'\n  other: '{HASH}'\n"),
        )
        .unwrap();
        assert_eq!(source.current().users.as_ref().map(Users::len), Some(2));

        std::fs::write(&path, "basic_auth_users:\n  prom: not-a-hash\n").unwrap();
        assert_eq!(
            source.current().users.as_ref().map(Users::len),
            Some(2),
            "bad change ignored"
        );

        // Turning TLS on at runtime is refused too.
        std::fs::write(
            &path,
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
        )
        .unwrap();
        assert!(source.current().tls.is_none());

        std::fs::write(&path, "").unwrap();
        assert!(source.current().users.is_none(), "empty file: auth off");
    }

    #[test]
    fn source_notices_a_replaced_certificate() {
        let dir = dir_with(&pki());
        let path = dir.path().join("web.yml");
        std::fs::write(
            &path,
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
        )
        .unwrap();
        let source = WebConfigSource::load(&path).unwrap();
        let first = source.current();
        let next = pki();
        std::fs::write(dir.path().join("server.crt"), &next.cert).unwrap();
        // Mismatched with the old key: rejected, the old pair stays.
        assert!(Arc::ptr_eq(&first, &source.current()));
        std::fs::write(dir.path().join("server.key"), &next.key).unwrap();
        assert!(!Arc::ptr_eq(&first, &source.current()), "new pair loaded");
    }
}
