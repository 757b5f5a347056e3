//! The simulated clouds' identity side, shared by their STS and metadata services: an
//! OIDC issuer whose tokens STS verifies (as a cluster's service-account issuer registered
//! as the cloud's OIDC provider), the roles that may be assumed and what their trust
//! policies require, and the temporary keys STS and the metadata services issue, which
//! the simulated APIs accept until they expire.
//!
//! Tokens are JWTs (HS256 over the issuer's key): opaque to clients, checked here for
//! signature, issuer, audience and expiry, as the real STS checks them against the
//! provider's keys.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use kcle_cloud::Cloud;

use super::SimKey;

/// The issuer of the simulated OIDC tokens.
pub const OIDC_ISSUER: &str = "https://oidc.kcle-sim.invalid/cluster";
/// The subject of the simulated tokens: the exporter's service account.
pub const OIDC_SUBJECT: &str = "system:serviceaccount:monitoring:kafka-cloud-lag-exporter";
/// The key tokens are signed with (a simulator fact, not a secret anyone relies on).
const ISSUER_KEY: &[u8] = b"kcle-sim-oidc-issuer-signing-key";

/// A role that may be assumed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimRole {
    pub arn: String,
    /// Whether its trust policy lets the OIDC provider's identities assume it.
    pub trusts_oidc: bool,
    /// The external id its trust policy requires of `AssumeRole`, if any.
    pub external_id: Option<String>,
}

/// One cloud's identity settings.
#[derive(Clone, Debug)]
pub struct CloudIdentity {
    /// Alibaba: the OIDC provider's ARN; Tencent: the identity provider's id.
    pub oidc_provider: String,
    /// The audience tokens must carry (the provider's client id).
    pub audience: String,
    pub roles: Vec<SimRole>,
    /// The role attached to the simulated instance (metadata service); `None`: none.
    pub instance_role: Option<String>,
}

/// How the simulated ECS metadata service treats IMDSv2 tokens.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ImdsMode {
    /// Tokens accepted, reads without one too (ECS's default).
    Optional,
    /// Reads without a token refused (IMDSv2 enforced).
    Required,
    /// No token endpoint (an older metadata service): clients fall back to IMDSv1.
    Unsupported,
}

/// Both clouds' identity settings.
#[derive(Clone, Debug)]
pub struct IdentitySettings {
    pub alibaba: CloudIdentity,
    pub tencent: CloudIdentity,
    /// How long instance-role credentials from the metadata services last.
    pub instance_credentials_lifetime: Duration,
    pub imds: ImdsMode,
}

/// The simulated Alibaba account's OIDC provider (ACK RRSA's `ack-rrsa-<cluster>`).
pub const ALIBABA_OIDC_PROVIDER: &str = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-sim";
/// The Alibaba role the exporter's service account may assume.
pub const ALIBABA_ROLE: &str = "acs:ram::1234567890123456:role/kafka-cloud-lag-exporter";
/// An Alibaba role of another account, assumable with an external id.
pub const ALIBABA_CROSS_ACCOUNT_ROLE: &str = "acs:ram::9876543210987654:role/lag-reader";
/// The Tencent identity provider id (TKE's OIDC provider).
pub const TENCENT_OIDC_PROVIDER: &str = "tke-sim-oidc";
/// The Tencent role the exporter's service account may assume.
pub const TENCENT_ROLE: &str = "qcs::cam::uin/100000000001:roleName/kafka-cloud-lag-exporter";
/// A Tencent role of another account, assumable with an external id.
pub const TENCENT_CROSS_ACCOUNT_ROLE: &str = "qcs::cam::uin/200000000002:roleName/lag-reader";
/// The external id the cross-account roles require.
pub const CROSS_ACCOUNT_EXTERNAL_ID: &str = "kcle-sim-external-id";
/// The role attached to the simulated instances.
pub const INSTANCE_ROLE: &str = "KafkaLagExporterRole";

impl Default for IdentitySettings {
    fn default() -> Self {
        let roles = |own: &str, other: &str| {
            vec![
                SimRole {
                    arn: own.into(),
                    trusts_oidc: true,
                    external_id: None,
                },
                SimRole {
                    arn: other.into(),
                    trusts_oidc: false,
                    external_id: Some(CROSS_ACCOUNT_EXTERNAL_ID.into()),
                },
            ]
        };
        IdentitySettings {
            alibaba: CloudIdentity {
                oidc_provider: ALIBABA_OIDC_PROVIDER.into(),
                audience: kcle_cloud::alibaba::sts::OIDC_AUDIENCE.into(),
                roles: roles(ALIBABA_ROLE, ALIBABA_CROSS_ACCOUNT_ROLE),
                instance_role: Some(INSTANCE_ROLE.into()),
            },
            tencent: CloudIdentity {
                oidc_provider: TENCENT_OIDC_PROVIDER.into(),
                audience: kcle_cloud::tencent::sts::OIDC_AUDIENCE.into(),
                roles: roles(TENCENT_ROLE, TENCENT_CROSS_ACCOUNT_ROLE),
                instance_role: Some(INSTANCE_ROLE.into()),
            },
            instance_credentials_lifetime: Duration::from_secs(6 * 3600),
            imds: ImdsMode::Optional,
        }
    }
}

impl IdentitySettings {
    pub fn cloud(&self, cloud: Cloud) -> &CloudIdentity {
        match cloud {
            Cloud::Alibaba => &self.alibaba,
            Cloud::Tencent => &self.tencent,
        }
    }
}

/// Why STS refuses an OIDC token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Not a JWT, or its signature does not verify.
    Invalid,
    Expired,
    WrongAudience,
    WrongIssuer,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn mac(data: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(ISSUER_KEY).expect("any key length");
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// A token of the simulated issuer for `audience`, valid from `now` for `lifetime`.
pub fn mint_token(audience: &str, now_secs: i64, lifetime: Duration) -> String {
    let header = b64(br#"{"alg":"HS256","kid":"kcle-sim","typ":"JWT"}"#);
    let claims = json!({
        "iss": OIDC_ISSUER,
        "aud": [audience],
        "sub": OIDC_SUBJECT,
        "iat": now_secs,
        "nbf": now_secs,
        "exp": now_secs + lifetime.as_secs() as i64,
    });
    let payload = b64(claims.to_string().as_bytes());
    let signed = format!("{header}.{payload}");
    let signature = b64(&mac(&signed));
    format!("{signed}.{signature}")
}

/// Verifies a token as STS does: signature, issuer, audience, expiry (at `now_secs`).
pub fn verify_token(token: &str, audience: &str, now_secs: i64) -> Result<(), TokenError> {
    let parts: Vec<&str> = token.trim().split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err(TokenError::Invalid);
    };
    if b64(&mac(&format!("{header}.{payload}"))) != signature {
        return Err(TokenError::Invalid);
    }
    let claims: Value = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenError::Invalid)?;
    if claims["iss"] != OIDC_ISSUER {
        return Err(TokenError::WrongIssuer);
    }
    let audiences: Vec<&str> = match &claims["aud"] {
        Value::String(a) => vec![a.as_str()],
        Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&audience) {
        return Err(TokenError::WrongAudience);
    }
    match claims["exp"].as_i64() {
        Some(exp) if exp > now_secs => Ok(()),
        _ => Err(TokenError::Expired),
    }
}

/// A temporary key: what STS or a metadata service issued, and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TempKey {
    pub cloud: Cloud,
    pub key: SimKey,
    pub expires_ms: i64,
    /// The role it acts as.
    pub role: String,
}

/// The temporary keys issued so far, by id, and each cloud's current instance key.
#[derive(Debug, Default)]
pub struct Issued {
    keys: HashMap<String, TempKey>,
    instance: HashMap<Cloud, String>,
    /// IMDSv2 session tokens and their expiry.
    imds_tokens: HashMap<String, i64>,
}

/// How long an expired key is still recognised as "expired" rather than "unknown".
const FORGET_AFTER_MS: i64 = 24 * 3600 * 1000;

fn random(rng: &mut fastrand::Rng, len: usize) -> String {
    std::iter::repeat_with(|| rng.alphanumeric())
        .take(len)
        .collect()
}

impl Issued {
    /// Issues a key for `role` valid until `expires_ms`.
    pub fn issue(
        &mut self,
        rng: &mut fastrand::Rng,
        cloud: Cloud,
        role: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> TempKey {
        self.keys
            .retain(|_, k| k.expires_ms + FORGET_AFTER_MS > now_ms);
        let id = match cloud {
            Cloud::Alibaba => format!("STS.NT{}", random(rng, 24)),
            Cloud::Tencent => format!("AKID{}", random(rng, 32)),
        };
        let key = TempKey {
            cloud,
            key: SimKey {
                id: id.clone(),
                secret: random(rng, 40),
                token: Some(random(rng, 320)),
            },
            expires_ms,
            role: role.to_string(),
        };
        self.keys.insert(id, key.clone());
        key
    }

    /// Every temporary key issued and not yet forgotten.
    pub fn all(&self) -> Vec<TempKey> {
        self.keys.values().cloned().collect()
    }

    /// A temporary key by id.
    pub fn get(&self, cloud: Cloud, id: &str) -> Option<&TempKey> {
        self.keys.get(id).filter(|k| k.cloud == cloud)
    }

    /// The instance role's current key: the same until less than half its lifetime is
    /// left (as the metadata services rotate them ahead of expiry).
    pub fn instance_key(
        &mut self,
        rng: &mut fastrand::Rng,
        cloud: Cloud,
        role: &str,
        now_ms: i64,
        lifetime: Duration,
    ) -> TempKey {
        let lifetime_ms = lifetime.as_millis() as i64;
        if let Some(key) = self
            .instance
            .get(&cloud)
            .and_then(|id| self.keys.get(id))
            .filter(|k| k.role == role && k.expires_ms - now_ms > lifetime_ms / 2)
        {
            return key.clone();
        }
        let key = self.issue(rng, cloud, role, now_ms, now_ms + lifetime_ms);
        self.instance.insert(cloud, key.key.id.clone());
        key
    }

    /// A new IMDSv2 token valid for `ttl_secs`.
    pub fn imds_token(&mut self, rng: &mut fastrand::Rng, now_ms: i64, ttl_secs: i64) -> String {
        self.imds_tokens.retain(|_, exp| *exp > now_ms);
        let token = random(rng, 56);
        self.imds_tokens
            .insert(token.clone(), now_ms + ttl_secs * 1000);
        token
    }

    /// Whether an IMDSv2 token is valid at `now_ms`.
    pub fn imds_token_valid(&self, token: &str, now_ms: i64) -> bool {
        self.imds_tokens.get(token).is_some_and(|exp| *exp > now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_until_they_expire_and_only_for_their_audience() {
        let t = mint_token("sts.aliyuncs.com", 1000, Duration::from_secs(600));
        assert_eq!(verify_token(&t, "sts.aliyuncs.com", 1599), Ok(()));
        assert_eq!(
            verify_token(&t, "sts.aliyuncs.com", 1600),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify_token(&t, "sts.cloud.tencent.com", 1000),
            Err(TokenError::WrongAudience)
        );
        let mut forged = t.clone();
        forged.insert(forged.len() - 5, 'x');
        assert_eq!(
            verify_token(&forged, "sts.aliyuncs.com", 1000),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            verify_token("not-a-jwt", "sts.aliyuncs.com", 1000),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn instance_keys_rotate_after_half_their_life() {
        let mut issued = Issued::default();
        let mut rng = fastrand::Rng::with_seed(1);
        let life = Duration::from_secs(3600);
        let a = issued.instance_key(&mut rng, Cloud::Tencent, "r", 0, life);
        let b = issued.instance_key(&mut rng, Cloud::Tencent, "r", 1_700_000, life);
        assert_eq!(a, b);
        let c = issued.instance_key(&mut rng, Cloud::Tencent, "r", 1_900_000, life);
        assert_ne!(a.key.id, c.key.id);
        assert!(issued.get(Cloud::Tencent, &a.key.id).is_some());
        assert!(issued.get(Cloud::Alibaba, &a.key.id).is_none());
    }
}
