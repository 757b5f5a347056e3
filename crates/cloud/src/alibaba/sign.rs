//! Alibaba Cloud request signing: signature V2 (HMAC-SHA1 over the query, RPC style) and
//! V3 (ACS3-HMAC-SHA256 in the `Authorization` header), as pure staged functions.
//!
//! Owns the RFC 3986 encoder, the canonical forms, the strings to sign, the signatures and
//! the `yyyy-MM-ddTHH:mm:ssZ` timestamps both versions use. Every stage is a separate
//! function so that each can be compared with the vendor's published examples (the unit
//! tests below reproduce every published vector listed in `../shared/reference/cloud-apis.md`, Part D2).
//!
//! Must not do I/O, read a clock or a random source: time and nonce are arguments. The
//! simulator verifies requests with these same functions; `tools/sdk_crosscheck/alibaba.py`
//! checks both against the official SDKs.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Why a signing input could not be turned into its canonical form.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("unix time {0} s cannot be written as an alibaba timestamp")]
    TimestampOutOfRange(i64),
    #[error("timestamp {0:?} is not of the form yyyy-MM-ddTHH:mm:ssZ")]
    BadTimestamp(String),
}

/// RFC 3986 unreserved characters stay literal; everything else is `%XY`.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes per RFC 3986 with uppercase hex: space is `%20` (never `+`), `*` is
/// `%2A`, `~` stays literal, multibyte UTF-8 is encoded byte by byte.
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}

/// V2 method for RPC calls: `SignatureMethod`.
pub const V2_SIGNATURE_METHOD: &str = "HMAC-SHA1";
/// V2 `SignatureVersion`.
pub const V2_SIGNATURE_VERSION: &str = "1.0";

/// V2 stage 1: the CanonicalizedQueryString. Every name and value is encoded, the pairs
/// are sorted by encoded name (byte order, so `AccessKeyId` < `Action`) and joined with
/// `&`. `Signature` must not be among `params`. Empty values stay (`Topic=`).
pub fn canonicalized_query(params: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (percent_encode(k), percent_encode(v)))
        .collect();
    // Names are unique in practice; sorting by value too keeps the order total.
    pairs.sort();
    join_pairs(&pairs)
}

fn join_pairs(pairs: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// V2 stage 2: `METHOD&%2F&percentEncode(canonicalized query)`. The canonical string is
/// encoded a second time, so `%3A` in it becomes `%253A`.
pub fn v2_string_to_sign(method: &str, canonicalized_query: &str) -> String {
    format!(
        "{method}&{}&{}",
        percent_encode("/"),
        percent_encode(canonicalized_query)
    )
}

/// V2 stage 3: standard Base64 (with padding) of HMAC-SHA1 keyed with `secret + "&"`.
/// The trailing `&` is part of the key (it separates an unused second key).
pub fn v2_signature(secret: &str, string_to_sign: &str) -> String {
    let key = format!("{secret}&");
    let mut mac =
        Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The `yyyy-MM-ddTHH:mm:ssZ` (UTC) form of a Unix time, as `Timestamp` (V2) and
/// `x-acs-date` (V3) require.
pub fn timestamp(unix_secs: i64) -> Result<String, SignError> {
    let t = jiff::Timestamp::from_second(unix_secs)
        .map_err(|_| SignError::TimestampOutOfRange(unix_secs))?;
    Ok(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// Parses a `yyyy-MM-ddTHH:mm:ssZ` timestamp back to Unix seconds, strictly (no fractions,
/// no offsets other than `Z`), as the services do.
pub fn parse_timestamp(s: &str) -> Result<i64, SignError> {
    let bad = || SignError::BadTimestamp(s.to_string());
    let b = s.as_bytes();
    if b.len() != 20 || b[10] != b'T' || b[19] != b'Z' {
        return Err(bad());
    }
    let dt = jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M:%S", &s[..19]).map_err(|_| bad())?;
    let t = dt.to_zoned(jiff::tz::TimeZone::UTC).map_err(|_| bad())?;
    Ok(t.timestamp().as_second())
}

/// V3 algorithm name, first token of the `Authorization` header.
pub const V3_ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// SHA-256 of an empty body, the `x-acs-content-sha256` of every RPC call we send.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Lowercase hex SHA-256, for `x-acs-content-sha256` and the hashed canonical request.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// V3 CanonicalQueryString: `name=percentEncode(value)` sorted by name, joined by `&`;
/// an empty value gives `name=`. (The same text as V2's canonicalized query.)
pub fn v3_canonical_query(params: &[(String, String)]) -> String {
    canonicalized_query(params)
}

/// V3 CanonicalHeaders and SignedHeaders: every header to sign, name lower-cased, value
/// trimmed, sorted by name; repeated names are joined with `,` (values sorted), as the
/// SDK does. Returns (`"name:value\n"...`, `"name;name;..."`).
pub fn v3_canonical_headers(headers: &[(String, String)]) -> (String, String) {
    let mut grouped: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (name, value) in headers {
        grouped
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(value.trim().to_string());
    }
    let mut canonical = String::new();
    for (name, values) in &mut grouped {
        values.sort();
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(&values.join(","));
        canonical.push('\n');
    }
    let signed = grouped.keys().cloned().collect::<Vec<_>>().join(";");
    (canonical, signed)
}

/// V3 stage 1: the CanonicalRequest. `canonical_headers` already ends with `\n`, so a
/// blank line separates it from `signed_headers`.
pub fn v3_canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    canonical_headers: &str,
    signed_headers: &str,
    hashed_payload: &str,
) -> String {
    format!(
        "{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{hashed_payload}"
    )
}

/// V3 stage 2: `ACS3-HMAC-SHA256\n` + hex SHA-256 of the canonical request.
pub fn v3_string_to_sign(canonical_request: &str) -> String {
    format!(
        "{V3_ALGORITHM}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// V3 stage 3: lowercase hex HMAC-SHA256 keyed with the secret itself (no `&`).
pub fn v3_signature(secret: &str, string_to_sign: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// V3 stage 4: the `Authorization` header value. Commas without spaces, unlike Tencent.
pub fn v3_authorization(access_key_id: &str, signed_headers: &str, signature: &str) -> String {
    format!(
        "{V3_ALGORITHM} Credential={access_key_id},SignedHeaders={signed_headers},Signature={signature}"
    )
}

/// The parts of a V3 `Authorization` header, for the simulator's checks. `Debug` leaves
/// the signature out.
#[derive(Clone, PartialEq, Eq)]
pub struct V3Authorization {
    pub access_key_id: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

impl std::fmt::Debug for V3Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V3Authorization")
            .field("access_key_id", &self.access_key_id)
            .field("signed_headers", &self.signed_headers)
            .finish_non_exhaustive()
    }
}

/// Splits an `ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..` header;
/// `None` if it is not of that form.
pub fn parse_v3_authorization(value: &str) -> Option<V3Authorization> {
    let rest = value.strip_prefix(V3_ALGORITHM)?.strip_prefix(' ')?;
    let (mut id, mut headers, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => id = Some(v.to_string()),
            "SignedHeaders" => headers = Some(v.split(';').map(str::to_string).collect()),
            "Signature" => sig = Some(v.to_string()),
            _ => return None,
        }
    }
    Some(V3Authorization {
        access_key_id: id.filter(|s| !s.is_empty())?,
        signed_headers: headers?,
        signature: sig.filter(|s| !s.is_empty())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Runs the V2 stages and returns (string to sign, signature).
    fn v2(method: &str, list: &[(&str, &str)], secret: &str) -> (String, String) {
        let sts = v2_string_to_sign(method, &canonicalized_query(&params(list)));
        let sig = v2_signature(secret, &sts);
        (sts, sig)
    }

    const ECS_BASE: [(&str, &str); 6] = [
        ("AccessKeyId", "testid"),
        ("Format", "XML"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
        ("SignatureVersion", "1.0"),
        ("Version", "2014-05-26"),
    ];

    #[test]
    fn v2_a_ecs_describe_regions() {
        let mut list = ECS_BASE.to_vec();
        list.push(("Action", "DescribeRegions"));
        list.push(("Timestamp", "2016-02-23T12:46:24Z"));
        let canonical = canonicalized_query(&params(&list));
        assert_eq!(
            canonical,
            "AccessKeyId=testid&Action=DescribeRegions&Format=XML&SignatureMethod=HMAC-SHA1\
             &SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf&SignatureVersion=1.0\
             &Timestamp=2016-02-23T12%3A46%3A24Z&Version=2014-05-26"
        );
        let (sts, sig) = v2("GET", &list, "testsecret");
        assert_eq!(
            sts,
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        );
        assert_eq!(sig, "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
        assert_eq!(percent_encode(&sig), "OLeaidS1JvxuMvnyHOwuJ%2BuX5qY%3D");
    }

    #[test]
    fn v2_a_older_doc_spelling_timestamp_with_capital_s() {
        let mut list = ECS_BASE.to_vec();
        list.push(("Action", "DescribeRegions"));
        list.push(("TimeStamp", "2016-02-23T12:46:24Z"));
        let (_, sig) = v2("GET", &list, "testsecret");
        assert_eq!(sig, "CT9X0VtwR86fNWSnsc6v8YGOjuE=");
    }

    #[test]
    fn v2_b_describe_dedicated_hosts() {
        let list = [
            ("AccessKeyId", "testid"),
            ("Action", "DescribeDedicatedHosts"),
            ("Format", "JSON"),
            ("RegionId", "cn-beijing"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "edb2b34af0af9a6d14deaf7c1a5315eb"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2023-03-13T08:34:30Z"),
            ("Version", "2014-05-26"),
        ];
        let (sts, sig) = v2("GET", &list, "testsecret");
        assert_eq!(
            sts,
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeDedicatedHosts%26Format%3DJSON%26RegionId%3Dcn-beijing%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3Dedb2b34af0af9a6d14deaf7c1a5315eb%26SignatureVersion%3D1.0%26Timestamp%3D2023-03-13T08%253A34%253A30Z%26Version%3D2014-05-26"
        );
        assert_eq!(sig, "9NaGiOspFP5UPcwX8Iwt2YJXXuk=");
    }

    /// The alikafka "Request signatures" page pairs these inputs with the ECS value
    /// `OLeaidS1...`; computed correctly they give `5YSSss...`. The page is wrong (it also
    /// prints raw `&` where the string to sign has `%26`), so it is not a test vector.
    #[test]
    fn alikafka_doc_example_inputs_do_not_give_the_value_the_doc_claims() {
        let mut list = ECS_BASE.to_vec();
        list.push(("Action", "GetInstanceList"));
        list.push(("Timestamp", "2016-02-23T12:46:24Z"));
        let (sts, sig) = v2("POST", &list, "testsecret");
        assert_eq!(
            sts,
            "POST&%2F&AccessKeyId%3Dtestid%26Action%3DGetInstanceList%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        );
        assert_eq!(sig, "5YSSssLAsjKVdv1z0eV3A2a8zaY=");
        assert_ne!(sig, "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
    }

    fn alikafka_progress(
        extra: &[(&'static str, &'static str)],
    ) -> Vec<(&'static str, &'static str)> {
        let mut list = vec![
            ("Action", "GetConsumerProgress"),
            ("Version", "2019-09-16"),
            ("Format", "JSON"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", "0123456789abcdef0123456789abcdef"),
            ("Timestamp", "2024-01-01T00:00:00Z"),
            ("RegionId", "cn-hangzhou"),
            ("InstanceId", "alikafka_post-cn-abc123"),
            ("ConsumerId", "orders-consumer"),
        ];
        for (k, v) in extra {
            match list.iter_mut().find(|(n, _)| n == k) {
                Some(slot) => slot.1 = v,
                None => list.push((k, v)),
            }
        }
        list
    }

    #[test]
    fn v2_alikafka_sdk_vectors() {
        let (_, sig) = v2(
            "POST",
            &alikafka_progress(&[("AccessKeyId", "testid")]),
            "testsecret",
        );
        assert_eq!(sig, "H9DiFSLxTaXrBgh87GsnxkShtjQ=");

        let (sts, sig) = v2(
            "POST",
            &alikafka_progress(&[
                ("AccessKeyId", "STS.testid"),
                ("SecurityToken", "sts-token-example"),
            ]),
            "testsecret",
        );
        assert!(sts.contains("SecurityToken%3Dsts-token-example"), "{sts}");
        assert_eq!(sig, "urcsYeAFcChjTBY4Kl8gH0qcRzE=");

        let (_, sig) = v2(
            "POST",
            &alikafka_progress(&[("AccessKeyId", "testid"), ("Format", "json")]),
            "testsecret",
        );
        assert_eq!(sig, "Vn5tk7RbH7PHp9y3ygkLoNWg7RQ=");
    }

    #[test]
    fn v2_update_consumer_offset_with_json_offsets() {
        let list = alikafka_progress(&[
            ("AccessKeyId", "testid"),
            ("Action", "UpdateConsumerOffset"),
            ("Topic", "orders"),
            ("ResetType", "offset"),
            (
                "Offsets",
                r#"[{"Partition":0,"Offset":100},{"Partition":1,"Offset":200}]"#,
            ),
        ]);
        let canonical = canonicalized_query(&params(&list));
        assert!(
            canonical.contains(
                "Offsets=%5B%7B%22Partition%22%3A0%2C%22Offset%22%3A100%7D%2C%7B%22Partition%22%3A1%2C%22Offset%22%3A200%7D%5D"
            ),
            "{canonical}"
        );
        let (_, sig) = v2("POST", &list, "testsecret");
        assert_eq!(sig, "BA6bmFSwKJqX1SM+xSWLmL9qJiY=");
    }

    #[test]
    fn v2_encoding_edge_cases() {
        let cases = [
            ("a b", "V%3Da%2520b"),
            ("a+b", "V%3Da%252Bb"),
            ("a*b", "V%3Da%252Ab"),
            ("a~b", "V%3Da~b"),
            ("!'()", "V%3D%2521%2527%2528%2529"),
            ("a/b:c", "V%3Da%252Fb%253Ac"),
            ("中文", "V%3D%25E4%25B8%25AD%25E6%2596%2587"),
            ("", "V%3D"),
        ];
        for (value, tail) in cases {
            let (sts, _) = v2("POST", &[("Action", "X"), ("V", value)], "s");
            assert_eq!(
                sts,
                format!("POST&%2F&Action%3DX%26{tail}"),
                "value {value:?}"
            );
        }
        assert_eq!(percent_encode("a b*~"), "a%20b%2A~");
    }

    #[test]
    fn timestamps_format_and_parse_strictly() {
        assert_eq!(timestamp(1_704_067_200).unwrap(), "2024-01-01T00:00:00Z");
        assert_eq!(timestamp(1_456_231_584).unwrap(), "2016-02-23T12:46:24Z");
        assert_eq!(timestamp(0).unwrap(), "1970-01-01T00:00:00Z");
        assert!(timestamp(i64::MAX).is_err());
        assert_eq!(parse_timestamp("2024-01-01T00:00:00Z"), Ok(1_704_067_200));
        for bad in [
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00.5Z",
            "2024-01-01 00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T00:00:00+00:00",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }

    fn header_list(list: &[(&str, &str)]) -> Vec<(String, String)> {
        params(list)
    }

    /// Runs the V3 stages; returns (canonical request, string to sign, authorization).
    fn v3(
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        id: &str,
        secret: &str,
    ) -> (String, String, String) {
        let (canonical_headers, signed) = v3_canonical_headers(&header_list(headers));
        let cr = v3_canonical_request(
            "POST",
            "/",
            &v3_canonical_query(&params(query)),
            &canonical_headers,
            &signed,
            EMPTY_SHA256,
        );
        let sts = v3_string_to_sign(&cr);
        let sig = v3_signature(secret, &sts);
        (cr, sts, v3_authorization(id, &signed, &sig))
    }

    const RUN_INSTANCES_QUERY: [(&str, &str); 2] = [
        (
            "ImageId",
            "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
        ),
        ("RegionId", "cn-shanghai"),
    ];

    #[test]
    fn v3_published_run_instances_vector_stage_by_stage() {
        assert_eq!(sha256_hex(b""), EMPTY_SHA256);
        let (cr, sts, auth) = v3(
            &RUN_INSTANCES_QUERY,
            &[
                ("host", "ecs.cn-shanghai.aliyuncs.com"),
                ("x-acs-action", "RunInstances"),
                ("x-acs-version", "2014-05-26"),
                ("x-acs-date", "2023-10-26T10:22:32Z"),
                ("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"),
                ("x-acs-content-sha256", EMPTY_SHA256),
            ],
            "YourAccessKeyId",
            "YourAccessKeySecret",
        );
        assert_eq!(
            cr,
            "POST\n/\nImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\n\
             host:ecs.cn-shanghai.aliyuncs.com\n\
             x-acs-action:RunInstances\n\
             x-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
             x-acs-date:2023-10-26T10:22:32Z\n\
             x-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\n\
             x-acs-version:2014-05-26\n\n\
             host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sts,
            "ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
        );
        assert_eq!(
            auth,
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
    }

    #[test]
    fn v3_b_header_table_date_and_nonce() {
        let (_, _, auth) = v3(
            &RUN_INSTANCES_QUERY,
            &[
                ("host", "ecs.cn-shanghai.aliyuncs.com"),
                ("x-acs-action", "RunInstances"),
                ("x-acs-version", "2014-05-26"),
                ("x-acs-date", "2023-10-26T09:01:01Z"),
                ("x-acs-signature-nonce", "d410180a5abf7fe235dd9b74aca91fc0"),
                ("x-acs-content-sha256", EMPTY_SHA256),
            ],
            "YourAccessKeyId",
            "YourAccessKeySecret",
        );
        assert!(
            auth.ends_with(
                ",Signature=e521358f7776c97df52e6b2891a8bc73026794a071b50c3323388c4e0df64804"
            ),
            "{auth}"
        );
    }

    const ALIKAFKA_QUERY: [(&str, &str); 4] = [
        ("ConsumerId", "orders-consumer"),
        ("HideLastTimestamp", "true"),
        ("InstanceId", "alikafka_post-cn-abc123"),
        ("RegionId", "cn-hangzhou"),
    ];

    fn alikafka_headers() -> Vec<(&'static str, &'static str)> {
        vec![
            ("host", "alikafka.cn-hangzhou.aliyuncs.com"),
            ("x-acs-action", "GetConsumerProgress"),
            ("x-acs-version", "2019-09-16"),
            ("x-acs-date", "2024-01-01T00:00:00Z"),
            ("x-acs-signature-nonce", "0123456789abcdef0123456789abcdef"),
            ("x-acs-content-sha256", EMPTY_SHA256),
        ]
    }

    #[test]
    fn v3_alikafka_minimal_and_sts_vectors() {
        let (cr, _, auth) = v3(&ALIKAFKA_QUERY, &alikafka_headers(), "testid", "testsecret");
        assert!(cr.starts_with("POST\n/\nConsumerId=orders-consumer&HideLastTimestamp=true&InstanceId=alikafka_post-cn-abc123&RegionId=cn-hangzhou\n"));
        assert_eq!(
            auth,
            "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=a190e4afbeac0a4d529f21220089018f8dd12a84a286212557637fbd4856663b"
        );

        let mut headers = alikafka_headers();
        headers.push(("x-acs-security-token", "sts-token-example"));
        let (_, _, auth) = v3(&ALIKAFKA_QUERY, &headers, "STS.testid", "testsecret");
        assert_eq!(
            auth,
            "ACS3-HMAC-SHA256 Credential=STS.testid,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-security-token;x-acs-signature-nonce;x-acs-version,Signature=37c8ce0d897cec25f827724eae5cdf56088079e54ccd3211399ba79dd2098d66"
        );
    }

    #[test]
    fn v3_full_sdk_capture_with_nine_signed_headers() {
        let mut query = ALIKAFKA_QUERY;
        query[1].1 = "True";
        let mut headers = alikafka_headers();
        headers.extend([
            ("accept", "application/json"),
            ("user-agent", "UA"),
            ("x-acs-credentials-provider", "static_ak"),
        ]);
        let (_, _, auth) = v3(&query, &headers, "testid", "testsecret");
        assert_eq!(
            auth,
            "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=accept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=285c06163dd0443a5e1ece76421bf2e8faea01824aea696400283eb343d73fd1"
        );
        let parsed = parse_v3_authorization(&auth).unwrap();
        assert_eq!(parsed.access_key_id, "testid");
        assert_eq!(parsed.signed_headers.len(), 9);
        assert_eq!(
            parsed.signature,
            "285c06163dd0443a5e1ece76421bf2e8faea01824aea696400283eb343d73fd1"
        );
    }

    #[test]
    fn v3_headers_are_lowercased_trimmed_and_sorted() {
        let (canonical, signed) = v3_canonical_headers(&header_list(&[
            ("X-Acs-Date", " 2024-01-01T00:00:00Z "),
            ("Host", "h"),
        ]));
        assert_eq!(canonical, "host:h\nx-acs-date:2024-01-01T00:00:00Z\n");
        assert_eq!(signed, "host;x-acs-date");
    }

    #[test]
    fn v3_authorization_parsing_rejects_other_forms() {
        assert_eq!(
            parse_v3_authorization("ACS3-HMAC-SHA256 Credential=a"),
            None
        );
        assert_eq!(
            parse_v3_authorization("TC3-HMAC-SHA256 Credential=a,SignedHeaders=h,Signature=s"),
            None
        );
        assert!(
            parse_v3_authorization("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=h,Signature=s")
                .is_some()
        );
    }
}
