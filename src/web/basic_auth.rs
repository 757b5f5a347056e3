//! HTTP basic authentication against bcrypt hashes (`basic_auth_users` of the web
//! configuration), as exporter-toolkit does it: unknown users cost the same bcrypt as
//! known ones, one bcrypt runs at a time, and successful checks are cached so that a
//! scrape every second does not cost a bcrypt per request.
//!
//! The cache never holds a password: its entries are HMAC-SHA256 digests of (user,
//! stored hash, password) under a key drawn at start-up, so they are useless outside
//! this process and stop matching as soon as the stored hash changes. Nothing here logs.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;
use sha2::Sha256;

/// A bcrypt hash of "fakepassword" (exporter-toolkit's): checked for unknown users so
/// that response times do not reveal which user names exist.
const UNKNOWN_USER_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

/// Most cached successful checks; the cache starts over when full. Scrapers are few,
/// so this only bounds memory against a client cycling through valid passwords.
const CACHE_CAPACITY: usize = 256;

/// User names and their bcrypt hashes, validated (see [`Users::new`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Users(BTreeMap<String, String>);

impl std::fmt::Debug for Users {
    // The hashes are secrets too (offline guessing); show names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Users")
            .field(&self.0.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Users {
    /// Checks every hash; `Err((user, message))` names the first bad entry.
    pub fn new(users: BTreeMap<String, String>) -> Result<Users, (String, String)> {
        for (user, hash) in &users {
            if user.contains(':') {
                return Err((
                    user.clone(),
                    "a user name cannot contain ':' (basic auth splits user and password at the first colon)".into(),
                ));
            }
            check_hash(hash).map_err(|m| (user.clone(), m))?;
        }
        Ok(Users(users))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// Whether `hash` is a bcrypt hash the `bcrypt` crate can check. The message never
/// repeats the hash.
fn check_hash(hash: &str) -> Result<(), String> {
    const HOW: &str = "expected a bcrypt hash such as \"$2y$10$...\" (60 characters); make one with `htpasswd -nbBC 10 USER PASSWORD`";
    let parts: bcrypt::HashParts = hash
        .parse()
        .map_err(|e: bcrypt::BcryptError| format!("not a bcrypt hash ({e}); {HOW}"))?;
    let cost = parts.get_cost();
    if !(4..=31).contains(&cost) {
        return Err(format!(
            "bcrypt cost {cost} is out of range; allowed 4 to 31; {HOW}"
        ));
    }
    Ok(())
}

/// Checks `Authorization` headers, with the cache of successes.
pub struct Authenticator {
    key: [u8; 32],
    cache: Mutex<HashSet<[u8; 32]>>,
    /// One bcrypt at a time (each costs tens of milliseconds of CPU), so that a burst
    /// of bad requests cannot take every core; cached successes skip the queue.
    bcrypt: tokio::sync::Mutex<()>,
}

impl Default for Authenticator {
    fn default() -> Self {
        Self::new()
    }
}

impl Authenticator {
    pub fn new() -> Authenticator {
        let mut key = [0u8; 32];
        // The OS random source through rustls' provider; only fails if the OS has none,
        // and then the all-zero key still keeps passwords out of the cache.
        let _ = rustls::crypto::ring::default_provider()
            .secure_random
            .fill(&mut key);
        Authenticator {
            key,
            cache: Mutex::new(HashSet::new()),
            bcrypt: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether the request's basic-auth credentials match one of `users`.
    pub async fn check(&self, users: &Users, headers: &HeaderMap) -> bool {
        let Some((user, password)) = credentials(headers) else {
            return false;
        };
        let known = users.0.get(&user);
        let hash = known.map(String::as_str).unwrap_or(UNKNOWN_USER_HASH);
        let digest = self.digest(&user, hash, &password);
        if known.is_some() && self.lock_cache().contains(&digest) {
            return true;
        }
        let hash = hash.to_string();
        let matched = {
            let _one_at_a_time = self.bcrypt.lock().await;
            // bcrypt is CPU work: keep it off the async workers.
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false)
        };
        let ok = matched && known.is_some();
        if ok {
            let mut cache = self.lock_cache();
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(digest);
        }
        ok
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn digest(&self, user: &str, hash: &str, password: &[u8]) -> [u8; 32] {
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes any key length");
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        for part in [user.as_bytes(), hash.as_bytes(), password] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

/// The user and password of an `Authorization: Basic` header, as Go's
/// `Request.BasicAuth` reads it (scheme case-insensitive, split at the first colon).
fn credentials(headers: &HeaderMap) -> Option<(String, Vec<u8>)> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    let (scheme, encoded) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn basic(user: &str, password: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {token}")).unwrap(),
        );
        h
    }

    fn users(pairs: &[(&str, &str)]) -> Users {
        Users::new(
            pairs
                .iter()
                .map(|(u, p)| (u.to_string(), bcrypt::hash(p, 4).unwrap()))
                .collect(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn right_wrong_missing_and_unknown() {
        let auth = Authenticator::new();
        let users = users(&[("prom", "s3cret:with:colons"), ("other", "x")]);
        assert!(
            auth.check(&users, &basic("prom", "s3cret:with:colons"))
                .await
        );
        assert!(!auth.check(&users, &basic("prom", "s3cret")).await);
        assert!(!auth.check(&users, &basic("prom", "x")).await);
        assert!(!auth.check(&users, &basic("nobody", "fakepassword")).await);
        assert!(!auth.check(&users, &HeaderMap::new()).await);
        let mut bearer = HeaderMap::new();
        bearer.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert!(!auth.check(&users, &bearer).await);
        let mut garbage = HeaderMap::new();
        garbage.insert(AUTHORIZATION, HeaderValue::from_static("basic !!!"));
        assert!(!auth.check(&users, &garbage).await);
    }

    #[tokio::test]
    async fn cache_holds_successes_only_and_follows_the_hash() {
        let auth = Authenticator::new();
        let before = users(&[("prom", "one")]);
        assert!(auth.check(&before, &basic("prom", "one")).await);
        assert!(!auth.check(&before, &basic("prom", "two")).await);
        assert_eq!(auth.lock_cache().len(), 1, "only the success is cached");
        assert!(auth.check(&before, &basic("prom", "one")).await);
        assert_eq!(auth.lock_cache().len(), 1);
        // A new hash for the same user: the cached success no longer applies.
        let after = users(&[("prom", "two")]);
        assert!(!auth.check(&after, &basic("prom", "one")).await);
        assert!(auth.check(&after, &basic("prom", "two")).await);
    }

    #[test]
    fn lowercase_scheme_and_empty_password_parse() {
        let mut h = HeaderMap::new();
        let token = base64::engine::general_purpose::STANDARD.encode("u:");
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("bAsIc {token}")).unwrap(),
        );
        assert_eq!(credentials(&h), Some(("u".to_string(), Vec::new())));
    }

    #[test]
    fn bad_hashes_are_refused_without_echoing_them() {
        for bad in [
            "plaintext",
            "$1$abc$0123456789012345678901234567890123456789012345678901",
            "$2y$99$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi",
        ] {
            let err =
                Users::new(BTreeMap::from([("prom".to_string(), bad.to_string())])).unwrap_err();
            assert_eq!(err.0, "prom");
            assert!(err.1.contains("bcrypt"), "{err:?}");
            assert!(!err.1.contains(bad), "{err:?} repeats the hash");
        }
        let err = Users::new(BTreeMap::from([(
            "a:b".to_string(),
            UNKNOWN_USER_HASH.to_string(),
        )]))
        .unwrap_err();
        assert!(err.1.contains("':'"), "{err:?}");
        assert!(Users::new(BTreeMap::from([("p".into(), UNKNOWN_USER_HASH.into())])).is_ok());
        let debug = format!(
            "{:?}",
            Users::new(BTreeMap::from([("p".into(), UNKNOWN_USER_HASH.into())])).unwrap()
        );
        assert!(!debug.contains("$2y$"), "{debug}");
    }
}
