//! The shared HTTP client and the mapping of transport failures to [`ProviderError`].
//!
//! reqwest errors print the request URL, which for Alibaba signature V2 carries the
//! signature and any security token; every error is stripped of its URL here.

use std::sync::Once;
use std::time::Duration;

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
        .connect_timeout(Duration::from_secs(5))
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
