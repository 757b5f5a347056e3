//! Tencent Cloud API 3.0 request signing (`TC3-HMAC-SHA256`), as pure staged functions:
//! canonical request, credential scope, string to sign, signing key, signature and the
//! `Authorization` value.
//!
//! Each stage is a separate function so that the unit tests can check it against the
//! vendor's published intermediate values, and so that the simulator can verify requests
//! with the same code. This module does no I/O and never reads a clock or a random
//! source: the timestamp is an input. Nothing here logs; [`Signed`] redacts its `Debug`.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// The algorithm name that starts the string to sign and the `Authorization` value.
pub const ALGORITHM: &str = "TC3-HMAC-SHA256";

/// The last element of the credential scope and of the key derivation.
pub const TERMINATOR: &str = "tc3_request";

/// Why a request could not be signed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("timestamp {0} is outside the range of calendar dates")]
    TimestampOutOfRange(i64),
}

/// Lowercase hex SHA-256 of `data` (`HashedRequestPayload` and `HashedCanonicalRequest`).
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The `CanonicalHeaders` and `SignedHeaders` parts of the canonical request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanonicalHeaders {
    /// `name:value\n` per header: names and values lower-cased and trimmed, sorted by name.
    pub canonical: String,
    /// The names joined with `;`, in the same order.
    pub signed: String,
}

/// Canonicalises the headers to sign (at least `content-type` and `host`).
///
/// Values are lower-cased as the TC3 documentation requires; that is why TC3-c signs
/// `x-tc-action:describeinstances`. The caller must send exactly these values.
pub fn canonical_headers(headers: &[(&str, &str)]) -> CanonicalHeaders {
    let mut pairs: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase()))
        .collect();
    pairs.sort();
    let mut canonical = String::new();
    for (n, v) in &pairs {
        canonical.push_str(n);
        canonical.push(':');
        canonical.push_str(v);
        canonical.push('\n');
    }
    let signed = pairs
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    CanonicalHeaders { canonical, signed }
}

/// The canonical request of a request to `/` without a query string (every CKafka call is
/// a `POST /` with a JSON body, so the query part is always empty).
///
/// `payload` is the exact body as sent: the hash covers bytes, not JSON values.
pub fn canonical_request(method: &str, headers: &CanonicalHeaders, payload: &[u8]) -> String {
    format!(
        "{method}\n/\n\n{}\n{}\n{}",
        headers.canonical,
        headers.signed,
        sha256_hex(payload)
    )
}

/// The UTC date (`YYYY-MM-DD`) of a Unix timestamp, for the credential scope.
///
/// Always UTC: a local date is a day off around midnight (1551113065 is 2019-02-26 in
/// UTC+8 but the scope date is 2019-02-25).
pub fn scope_date(timestamp: i64) -> Result<String, SignError> {
    let ts = jiff::Timestamp::from_second(timestamp)
        .map_err(|_| SignError::TimestampOutOfRange(timestamp))?;
    Ok(ts.strftime("%Y-%m-%d").to_string())
}

/// `<date>/<service>/tc3_request`.
pub fn credential_scope(date: &str, service: &str) -> String {
    format!("{date}/{service}/{TERMINATOR}")
}

/// The string to sign: algorithm, timestamp, scope and the hashed canonical request.
pub fn string_to_sign(timestamp: i64, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{timestamp}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `SecretSigning`: HMAC chain `"TC3" + key` → date → service → `tc3_request`, each step
/// keyed with the raw bytes of the previous digest.
pub fn signing_key(secret_key: &str, date: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac_sha256(&k_date, service.as_bytes());
    hmac_sha256(&k_service, TERMINATOR.as_bytes())
}

/// Lowercase hex HMAC-SHA256 of the string to sign under the signing key.
pub fn signature(signing_key: &[u8], string_to_sign: &str) -> String {
    hex::encode(hmac_sha256(signing_key, string_to_sign.as_bytes()))
}

/// The `Authorization` header value; note the comma + space separators.
pub fn authorization(
    secret_id: &str,
    scope: &str,
    signed_headers: &str,
    signature: &str,
) -> String {
    format!(
        "{ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
    )
}

/// Everything one signature covers.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The headers to sign, exactly as sent (at least `content-type` and `host`).
    pub headers: &'a [(&'a str, &'a str)],
    /// The body bytes exactly as sent.
    pub payload: &'a [u8],
    /// `X-TC-Timestamp`, Unix seconds.
    pub timestamp: i64,
    /// Signing service name (`ckafka` for every CKafka host).
    pub service: &'a str,
}

/// A computed signature. `Debug` shows neither the signature nor the header value.
#[derive(Clone, PartialEq, Eq)]
pub struct Signed {
    /// The `Authorization` header value.
    pub authorization: String,
    /// The hex signature alone.
    pub signature: String,
    /// The `SignedHeaders` list.
    pub signed_headers: String,
}

impl fmt::Debug for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed")
            .field("signed_headers", &self.signed_headers)
            .finish_non_exhaustive()
    }
}

/// Runs every stage for one request.
pub fn sign(request: &Request<'_>, secret_id: &str, secret_key: &str) -> Result<Signed, SignError> {
    let headers = canonical_headers(request.headers);
    let canonical = canonical_request(request.method, &headers, request.payload);
    let date = scope_date(request.timestamp)?;
    let scope = credential_scope(&date, request.service);
    let to_sign = string_to_sign(request.timestamp, &scope, &canonical);
    let key = signing_key(secret_key, &date, request.service);
    let signature = signature(&key, &to_sign);
    Ok(Signed {
        authorization: authorization(secret_id, &scope, &headers.signed, &signature),
        signature,
        signed_headers: headers.signed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Common inputs of the published TC3 vectors (reference B3.1).
    const CVM_BODY: &str =
        r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
    const TS: i64 = 1551113065;
    const CT: &str = "application/json; charset=utf-8";
    const CVM_HOST: &str = "cvm.tencentcloudapi.com";
    const KEY_A: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
    const KEY_B: &str = "Gu5t9xGARNpq86cd98joQYCN3*******";

    fn cvm_headers() -> [(&'static str, &'static str); 2] {
        [("Content-Type", CT), ("Host", CVM_HOST)]
    }

    #[test]
    fn tc3_a_every_stage() {
        assert_eq!(
            sha256_hex(CVM_BODY.as_bytes()),
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        let headers = canonical_headers(&cvm_headers());
        assert_eq!(headers.signed, "content-type;host");
        let canonical = canonical_request("POST", &headers, CVM_BODY.as_bytes());
        assert_eq!(
            canonical,
            "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n\
             content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        let date = scope_date(TS).unwrap();
        let scope = credential_scope(&date, "cvm");
        assert_eq!(scope, "2019-02-25/cvm/tc3_request");
        let to_sign = string_to_sign(TS, &scope, &canonical);
        assert_eq!(
            to_sign,
            "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n\
             5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        let key = signing_key(KEY_A, &date, "cvm");
        assert_eq!(
            hex::encode(key),
            "ac658d5dde49e9bfdd14e04e062f66b05d9f637d44b8a8d845327d4a77f666b1"
        );
        let sig = signature(&key, &to_sign);
        assert_eq!(
            sig,
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
        assert_eq!(
            authorization(
                "AKID**********************0123456789EXAMPLE",
                &scope,
                &headers.signed,
                &sig
            ),
            "TC3-HMAC-SHA256 Credential=AKID**********************0123456789EXAMPLE/2019-02-25/cvm/tc3_request, \
             SignedHeaders=content-type;host, \
             Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
    }

    #[test]
    fn tc3_b_older_zh_doc() {
        let signed = sign(
            &Request {
                method: "POST",
                headers: &cvm_headers(),
                payload: CVM_BODY.as_bytes(),
                timestamp: TS,
                service: "cvm",
            },
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******",
            KEY_B,
        )
        .unwrap();
        assert_eq!(
            signed.signature,
            "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
        );
        assert!(signed.authorization.starts_with(
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, "
        ));
    }

    #[test]
    fn tc3_c_signs_the_lowercased_action_header() {
        let headers = [
            ("Content-Type", CT),
            ("Host", CVM_HOST),
            ("X-TC-Action", "DescribeInstances"),
        ];
        let canonical = canonical_headers(&headers);
        assert_eq!(
            canonical.canonical,
            "content-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\
             x-tc-action:describeinstances\n"
        );
        assert_eq!(canonical.signed, "content-type;host;x-tc-action");
        let request = canonical_request("POST", &canonical, CVM_BODY.as_bytes());
        assert_eq!(
            sha256_hex(request.as_bytes()),
            "7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84"
        );
        let signed = sign(
            &Request {
                method: "POST",
                headers: &headers,
                payload: CVM_BODY.as_bytes(),
                timestamp: TS,
                service: "cvm",
            },
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******",
            KEY_B,
        )
        .unwrap();
        assert_eq!(
            signed.signature,
            "be4f67d323c78ab9acb7395e43c0dbcf822a9cfac32fea2449a7bc7726b770a3"
        );
        assert_eq!(signed.signed_headers, "content-type;host;x-tc-action");
    }

    #[test]
    fn ckafka_vector_from_the_official_sdk() {
        // The Python SDK's json.dumps puts a space after ':' and ','; the hash covers bytes.
        let body = r#"{"InstanceId": "ckafka-abcd1234", "Group": "orders-consumer", "Offset": 0, "Limit": 50}"#;
        let signed = sign(
            &Request {
                method: "POST",
                headers: &[
                    ("Content-Type", "application/json"),
                    ("Host", "ckafka.tencentcloudapi.com"),
                ],
                payload: body.as_bytes(),
                timestamp: TS,
                service: "ckafka",
            },
            "AKIDEXAMPLE",
            KEY_A,
        )
        .unwrap();
        assert_eq!(
            signed.authorization,
            "TC3-HMAC-SHA256 Credential=AKIDEXAMPLE/2019-02-25/ckafka/tc3_request, \
             SignedHeaders=content-type;host, \
             Signature=e77a0286ce5fa14187885a10a20e9f42012d36578a435b64acb26b0d666c5965"
        );
    }

    #[test]
    fn scope_date_is_the_utc_date() {
        // 2019-02-26 00:44:25 in UTC+8 (China), but 2019-02-25 16:44:25 UTC.
        assert_eq!(scope_date(1551113065).unwrap(), "2019-02-25");
        assert_eq!(scope_date(1551139199).unwrap(), "2019-02-25");
        assert_eq!(scope_date(1551139200).unwrap(), "2019-02-26");
        assert_eq!(scope_date(0).unwrap(), "1970-01-01");
        assert_eq!(
            scope_date(i64::MAX),
            Err(SignError::TimestampOutOfRange(i64::MAX))
        );
    }

    #[test]
    fn header_names_and_values_are_trimmed_lowercased_and_sorted() {
        let h = canonical_headers(&[
            (" Host ", " CKafka.TencentCloudAPI.com "),
            ("content-type", "application/json"),
        ]);
        assert_eq!(
            h.canonical,
            "content-type:application/json\nhost:ckafka.tencentcloudapi.com\n"
        );
        assert_eq!(h.signed, "content-type;host");
    }

    #[test]
    fn signed_debug_hides_the_signature() {
        let signed = sign(
            &Request {
                method: "POST",
                headers: &cvm_headers(),
                payload: b"{}",
                timestamp: TS,
                service: "ckafka",
            },
            "AKIDEXAMPLE",
            KEY_A,
        )
        .unwrap();
        let dbg = format!("{signed:?}");
        assert!(!dbg.contains(&signed.signature), "{dbg}");
        assert!(!dbg.contains("Credential="), "{dbg}");
        assert!(dbg.contains("content-type;host"), "{dbg}");
    }
}
