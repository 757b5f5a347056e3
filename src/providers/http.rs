//! The shared HTTP client and the mapping of transport failures to [`ProviderError`].
//!
//! reqwest errors print the request URL, which for Alibaba signature V2 carries the
//! signature and any security token; every error is stripped of its URL here.

use std::fmt;
use std::sync::Once;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::{ErrorKind, ProviderError};

/// Value of the `User-Agent` header.
pub const USER_AGENT: &str = concat!("kafka-cloud-lag-exporter/", env!("CARGO_PKG_VERSION"));

/// Installs ring as rustls' process-wide crypto provider (reqwest is built without one).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err only means another provider was installed first, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The HTTP client every provider shares (connection pool, TLS through rustls).
pub fn client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
        .expect("the HTTP client configuration is static and valid")
}

/// Maps a reqwest error (timeout, connect, body read) to a retryable provider error.
pub fn transport_error(e: reqwest::Error) -> ProviderError {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_decode() || e.is_body() {
        ErrorKind::BadResponse
    } else {
        ErrorKind::Connection
    };
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    ProviderError::new(kind, message).retryable(true)
}

/// One API request, ready to send: a `POST` for the management APIs; credential sources
/// also `GET` and `PUT` (instance metadata).
///
/// Its `Debug` shows the URL without query values and hides the value of every header
/// marked sensitive, so a request in a log line or a panic never reveals a signature,
/// a security token or a signed URL. Header values are checked when added, so a key id
/// or token with a byte that HTTP cannot carry is refused before anything is sent.
#[derive(Clone)]
pub struct HttpRequest {
    pub method: reqwest::Method,
    pub url: reqwest::Url,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// A header value that HTTP cannot carry (a control character, a newline).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the value of header {name} contains a character that cannot be sent in an HTTP header")]
pub struct InvalidHeader {
    pub name: &'static str,
}

impl HttpRequest {
    /// A `POST` to `url` with no headers and an empty body.
    pub fn post(url: reqwest::Url) -> Self {
        HttpRequest {
            method: reqwest::Method::POST,
            url,
            headers: HeaderMap::new(),
            body: Vec::new(),
        }
    }

    /// A `GET` of `url` with no headers.
    pub fn get(url: reqwest::Url) -> Self {
        HttpRequest {
            method: reqwest::Method::GET,
            ..HttpRequest::post(url)
        }
    }

    /// A `PUT` to `url` with no headers and an empty body.
    pub fn put(url: reqwest::Url) -> Self {
        HttpRequest {
            method: reqwest::Method::PUT,
            ..HttpRequest::post(url)
        }
    }

    /// Adds a header whose value may be shown in `Debug`.
    pub fn header(mut self, name: &'static str, value: &str) -> Result<Self, InvalidHeader> {
        let v = HeaderValue::from_str(value).map_err(|_| InvalidHeader { name })?;
        self.headers.append(HeaderName::from_static(name), v);
        Ok(self)
    }

    /// Adds a header whose value is secret or carries a signature: marked sensitive, so
    /// that neither this type's nor reqwest's `Debug` shows it.
    pub fn secret_header(mut self, name: &'static str, value: &str) -> Result<Self, InvalidHeader> {
        let mut v = HeaderValue::from_str(value).map_err(|_| InvalidHeader { name })?;
        v.set_sensitive(true);
        self.headers.append(HeaderName::from_static(name), v);
        Ok(self)
    }

    pub fn with_body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// The URL as `Debug` shows it: query parameter names without their values.
    pub fn redacted_url(&self) -> String {
        let mut u = self.url.clone();
        let names: Vec<String> = self
            .url
            .query_pairs()
            .map(|(k, _)| format!("{k}=[redacted]"))
            .collect();
        u.set_query(None);
        let mut s = u.to_string();
        if !names.is_empty() {
            s.push('?');
            s.push_str(&names.join("&"));
        }
        s
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| {
                let shown = if v.is_sensitive() {
                    "[redacted]"
                } else {
                    v.to_str().unwrap_or("[not text]")
                };
                (n.as_str(), shown)
            })
            .collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method.as_str())
            .field("url", &self.redacted_url())
            .field("headers", &headers)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// Sends one request on the shared client and returns (status, headers, body).
///
/// No timeout is set here: the caller races the attempt against its deadline on the
/// shared clock.
pub async fn send(
    client: &reqwest::Client,
    request: HttpRequest,
) -> Result<(u16, HeaderMap, bytes::Bytes), ProviderError> {
    let response = client
        .request(request.method, request.url)
        .headers(request.headers)
        .body(request.body)
        .send()
        .await
        .map_err(transport_error)?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(transport_error)?;
    Ok((status, headers, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_query_values_and_sensitive_headers() {
        let url = reqwest::Url::parse(
            "https://alikafka.cn-hangzhou.aliyuncs.com/?AccessKeyId=LTAIvisible&SecurityToken=tok-SECRET&Signature=sig%2BSECRET",
        )
        .unwrap();
        let r = HttpRequest::post(url)
            .header("accept", "application/json")
            .unwrap()
            .secret_header(
                "authorization",
                "ACS3-HMAC-SHA256 Credential=x,Signature=abcSECRET",
            )
            .unwrap()
            .secret_header("x-acs-security-token", "tok-SECRET")
            .unwrap()
            .with_body(b"{\"k\":1}".to_vec());
        let shown = format!("{r:?} {:?}", r.headers);
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("Signature=[redacted]"), "{shown}");
        assert!(shown.contains("application/json"), "{shown}");
        assert!(shown.contains("body_bytes: 7"), "{shown}");
    }

    #[test]
    fn header_values_are_checked_before_sending() {
        let url = reqwest::Url::parse("https://example.com/").unwrap();
        let e = HttpRequest::post(url)
            .secret_header("x-tc-token", "line\nbreak")
            .unwrap_err();
        assert_eq!(e.name, "x-tc-token");
    }
}
