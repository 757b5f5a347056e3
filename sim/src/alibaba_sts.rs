//! The simulated Alibaba Cloud STS (2015-04-01): `AssumeRoleWithOIDC` (unsigned; the OIDC
//! token verified against the simulated issuer, the provider and the role's trust) and
//! `AssumeRole` (signed like any RPC call, with the same checks as alikafka: timestamp,
//! nonce, key, token, signature V2 or V3). Both issue temporary keys for the requested
//! duration that the simulated alikafka accepts until they expire.
//!
//! Requests come as the SDKs send them: the Python library puts everything in a `GET`
//! query, the Go library `POST`s the operation's parameters as a form; both are served.
//! Error codes are the ones ACK's RRSA documentation and the STS API reference list
//! (`AuthenticationFail.OIDCToken.*`, `EntityNotExist.Role`, `AuthenticationFail.NoPermission`,
//! `InvalidParameter.*`, `Throttling.User`); their HTTP statuses are not documented and
//! are this simulator's choice (400 for bad input, 403 for trust, 404 for a missing role).

use std::time::Duration;

use serde_json::json;

use super::alibaba::{Api, Call, Done, handle_api};
use super::identity::TokenError;
use super::{RawRequest, SimResponse, SimState};
use kcle_cloud::Cloud;
use kcle_cloud::alibaba::{sign, sts};

const STS: Api = Api {
    product: "Sts",
    version: sts::STS_API_VERSION,
    actions: &[sts::ASSUME_ROLE, sts::ASSUME_ROLE_WITH_OIDC],
    anonymous: &[sts::ASSUME_ROLE_WITH_OIDC],
    hidden: &["OIDCToken"],
    operate,
};

/// Answers one STS request.
pub fn handle(state: &SimState, req: &RawRequest) -> SimResponse {
    handle_api(&STS, state, req)
}

fn operate(call: &Call<'_>) -> Result<Done, Done> {
    match call.action.as_str() {
        sts::ASSUME_ROLE_WITH_OIDC => assume_role_with_oidc(call),
        _ => assume_role(call),
    }
}

fn duration(call: &Call<'_>) -> Result<Duration, Done> {
    let secs = match call.param("DurationSeconds") {
        None | Some("") => sts::DEFAULT_SESSION_SECS,
        Some(v) => v.parse::<u64>().map_err(|_| {
            call.gateway(
                400,
                "InvalidParameter.DurationSeconds",
                "The parameter DurationSeconds is not a number.",
            )
        })?,
    };
    if !(sts::MIN_SESSION_SECS..=sts::MAX_SESSION_SECS).contains(&secs) {
        return Err(call.gateway(
            400,
            "InvalidParameter.DurationSeconds",
            &format!(
                "The Min/Max value of DurationSeconds is {}s/{}s.",
                sts::MIN_SESSION_SECS,
                sts::MAX_SESSION_SECS
            ),
        ));
    }
    Ok(Duration::from_secs(secs))
}

fn session_name<'c>(call: &'c Call<'_>) -> Result<&'c str, Done> {
    let name = call.required("RoleSessionName")?;
    let ok = (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".@-_".contains(c));
    if !ok {
        return Err(call.gateway(
            400,
            "InvalidParameter.RoleSessionName",
            "The parameter RoleSessionName is wrongly formed.",
        ));
    }
    Ok(name)
}

fn role(call: &Call<'_>) -> Result<super::identity::SimRole, Done> {
    let arn = call.required("RoleArn")?;
    call.state.role(Cloud::Alibaba, arn).ok_or_else(|| {
        call.gateway(
            404,
            "EntityNotExist.Role",
            &format!("The role not exists: {arn}."),
        )
    })
}

fn assume_role_with_oidc(call: &Call<'_>) -> Result<Done, Done> {
    let provider = call.required("OIDCProviderArn")?;
    let token = call.required("OIDCToken")?;
    let role = role(call)?;
    let session = session_name(call)?;
    let duration = duration(call)?;
    if provider != call.state.settings.identity.alibaba.oidc_provider {
        return Err(call.gateway(
            403,
            "AuthenticationFail.NoPermission",
            "No such OIDC Provider registered.",
        ));
    }
    match call.state.verify_oidc_token(Cloud::Alibaba, token) {
        Ok(()) => {}
        Err(TokenError::Expired) => {
            return Err(call.gateway(
                400,
                "AuthenticationFail.OIDCToken.Expired",
                "This JsonWebToken is expired.",
            ));
        }
        Err(TokenError::WrongAudience) => {
            return Err(call.gateway(
                400,
                "AuthenticationFail.OIDCToken.AudienceNotMatch",
                "Invalid audience.",
            ));
        }
        Err(TokenError::WrongIssuer) => {
            return Err(call.gateway(
                400,
                "AuthenticationFail.OIDCToken.IssuerNotMatch",
                "The issuer in the OIDC Token doesn't match the OIDC Provider registered.",
            ));
        }
        Err(TokenError::Invalid) => {
            return Err(call.gateway(
                400,
                "AuthenticationFail.OIDCToken.Invalid",
                "The OIDC token is invalid.",
            ));
        }
    }
    if !role.trusts_oidc {
        return Err(call.gateway(
            403,
            "AuthenticationFail.NoPermission",
            "There is no permission",
        ));
    }
    Ok(credentials(call, &role.arn, session, duration))
}

fn assume_role(call: &Call<'_>) -> Result<Done, Done> {
    let role = role(call)?;
    let session = session_name(call)?;
    let duration = duration(call)?;
    if role.external_id.as_deref() != call.param("ExternalId").filter(|v| !v.is_empty()) {
        return Err(call.gateway(
            403,
            "NoPermission",
            "You are not authorized to assume this role: the ExternalId does not match its trust policy.",
        ));
    }
    Ok(credentials(call, &role.arn, session, duration))
}

/// A temporary key for `role`, answered as STS does (no `Code`/`Success` fields).
fn credentials(call: &Call<'_>, role: &str, session: &str, duration: Duration) -> Done {
    let key = call.state.issue_key(Cloud::Alibaba, role, duration);
    let expiration = sign::timestamp(key.expires_ms.div_euclid(1000)).unwrap_or_default();
    let body = json!({
        "RequestId": call.request_id,
        "AssumedRoleUser": {
            "Arn": format!("{}/{session}", role.replace(":role/", ":assumed-role/")),
            "AssumedRoleId": format!("300000000000000000:{session}"),
        },
        "Credentials": {
            "AccessKeyId": key.key.id,
            "AccessKeySecret": key.key.secret,
            "SecurityToken": key.key.token,
            "Expiration": expiration,
        },
    });
    (SimResponse::json(200, &body), "ok".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimSettings;
    use crate::identity::{
        ALIBABA_CROSS_ACCOUNT_ROLE, ALIBABA_OIDC_PROVIDER, ALIBABA_ROLE, CROSS_ACCOUNT_EXTERNAL_ID,
    };
    use crate::world::World;
    use serde_json::Value;

    const NOW: u64 = 1_700_000_000;

    fn state() -> SimState {
        SimState::new(
            SimSettings::default(),
            World::default(),
            kcle_clock::Clock::virtual_at_unix(NOW),
        )
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// `credentials-go`'s form: protocol parameters in the query, the rest in a form body.
    fn oidc(token: &str, tweak: &[(&str, &str)]) -> RawRequest {
        let ts = sign::timestamp(NOW as i64).unwrap();
        let query = pairs(&[
            ("Action", sts::ASSUME_ROLE_WITH_OIDC),
            ("Format", "JSON"),
            ("Version", sts::STS_API_VERSION),
            ("Timestamp", &ts),
        ]);
        let mut form = vec![
            ("RoleArn", ALIBABA_ROLE),
            ("OIDCProviderArn", ALIBABA_OIDC_PROVIDER),
            ("OIDCToken", token),
            ("RoleSessionName", "test"),
            ("DurationSeconds", "900"),
        ];
        for (k, v) in tweak {
            form.retain(|(n, _)| n != k);
            if !v.is_empty() {
                form.push((k, v));
            }
        }
        RawRequest {
            method: "POST".into(),
            path_and_query: format!("/?{}", sign::canonicalized_query(&query)),
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body: sign::canonicalized_query(&pairs(&form)),
        }
    }

    fn answer(r: &SimResponse) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    fn code(r: &SimResponse) -> (u16, String) {
        (
            r.status,
            answer(r)["Code"].as_str().unwrap_or("").to_string(),
        )
    }

    #[test]
    fn oidc_tokens_are_exchanged_for_keys_that_expire_with_the_session() {
        let s = state();
        let token = s.mint_oidc_token(Cloud::Alibaba, Duration::from_secs(3600));
        let r = handle(&s, &oidc(&token, &[]));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let c = &answer(&r)["Credentials"];
        let id = c["AccessKeyId"].as_str().unwrap();
        assert!(id.starts_with("STS."));
        assert_eq!(c["Expiration"], "2023-11-14T22:28:20Z");
        assert!(s.key(Cloud::Alibaba, id).is_some() && !s.key_expired(Cloud::Alibaba, id));
        // The token is never logged.
        let logged = &s.requests()[0];
        assert_eq!(logged.params["OIDCToken"], "[redacted]");
        assert_eq!(logged.outcome, "ok");
    }

    #[test]
    fn oidc_refusals_use_the_documented_codes() {
        let s = state();
        let good = s.mint_oidc_token(Cloud::Alibaba, Duration::from_secs(600));
        let tencent = s.mint_oidc_token(Cloud::Tencent, Duration::from_secs(600));
        let expired = crate::identity::mint_token(
            kcle_cloud::alibaba::sts::OIDC_AUDIENCE,
            NOW as i64 - 7200,
            Duration::from_secs(600),
        );
        let cases: Vec<(RawRequest, (u16, &str))> = vec![
            (
                oidc(&expired, &[]),
                (400, "AuthenticationFail.OIDCToken.Expired"),
            ),
            (
                oidc("not.a.jwt", &[]),
                (400, "AuthenticationFail.OIDCToken.Invalid"),
            ),
            (
                oidc(&tencent, &[]),
                (400, "AuthenticationFail.OIDCToken.AudienceNotMatch"),
            ),
            (
                oidc(
                    &good,
                    &[("OIDCProviderArn", "acs:ram::1:oidc-provider/other")],
                ),
                (403, "AuthenticationFail.NoPermission"),
            ),
            (
                oidc(&good, &[("RoleArn", "acs:ram::1:role/missing")]),
                (404, "EntityNotExist.Role"),
            ),
            (
                oidc(&good, &[("RoleArn", ALIBABA_CROSS_ACCOUNT_ROLE)]),
                (403, "AuthenticationFail.NoPermission"),
            ),
            (
                oidc(&good, &[("DurationSeconds", "600")]),
                (400, "InvalidParameter.DurationSeconds"),
            ),
            (
                oidc(&good, &[("RoleSessionName", "a b")]),
                (400, "InvalidParameter.RoleSessionName"),
            ),
            (oidc(&good, &[("OIDCToken", "")]), (400, "MissingParameter")),
        ];
        for (i, (req, want)) in cases.iter().enumerate() {
            let r = handle(&s, req);
            assert_eq!(code(&r), (want.0, want.1.to_string()), "case {i}");
        }
    }

    /// `alibabacloud-credentials`' form: a `GET` with everything in the query.
    #[test]
    fn the_python_librarys_get_form_is_served_too() {
        let s = state();
        let token = s.mint_oidc_token(Cloud::Alibaba, Duration::from_secs(600));
        let mut req = oidc(&token, &[]);
        let mut all = req.query_pairs().unwrap();
        all.extend(pairs(&[
            ("RoleArn", ALIBABA_ROLE),
            ("OIDCProviderArn", ALIBABA_OIDC_PROVIDER),
            ("OIDCToken", &token),
            ("RoleSessionName", "py"),
        ]));
        req.method = "GET".into();
        req.path_and_query = format!("/?{}", sign::canonicalized_query(&all));
        req.body.clear();
        req.headers.clear();
        assert_eq!(handle(&s, &req).status, 200);
    }

    /// `AssumeRole` goes through the same signature checks as alikafka; an unsigned one is
    /// refused, a signed one with the role's external id answered.
    #[test]
    fn assume_role_is_signed_and_checks_the_external_id() {
        let s = state();
        let key = SimSettings::default().alibaba_keys[0].clone();
        let signed = |external: &str, nonce: &str| {
            let ts = sign::timestamp(NOW as i64).unwrap();
            let query = pairs(&[
                ("Action", sts::ASSUME_ROLE),
                ("Format", "JSON"),
                ("Version", sts::STS_API_VERSION),
                ("Timestamp", &ts),
                ("SignatureMethod", sign::V2_SIGNATURE_METHOD),
                ("SignatureVersion", sign::V2_SIGNATURE_VERSION),
                ("SignatureNonce", nonce),
                ("AccessKeyId", &key.id),
            ]);
            let form = pairs(&[
                ("RoleArn", ALIBABA_CROSS_ACCOUNT_ROLE),
                ("RoleSessionName", "x-account"),
                ("ExternalId", external),
            ]);
            let all: Vec<_> = query.iter().chain(&form).cloned().collect();
            let sig = sign::v2_signature(
                &key.secret,
                &sign::v2_string_to_sign("POST", &sign::canonicalized_query(&all)),
            );
            RawRequest {
                method: "POST".into(),
                path_and_query: format!(
                    "/?{}&Signature={}",
                    sign::canonicalized_query(&query),
                    sign::percent_encode(&sig)
                ),
                headers: vec![(
                    "content-type".into(),
                    "application/x-www-form-urlencoded".into(),
                )],
                body: sign::canonicalized_query(&form),
            }
        };
        let r = handle(&s, &signed(CROSS_ACCOUNT_EXTERNAL_ID, "n1"));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(
            code(&handle(&s, &signed("wrong", "n2"))),
            (403, "NoPermission".into())
        );
        let mut unsigned = signed(CROSS_ACCOUNT_EXTERNAL_ID, "n3");
        unsigned.path_and_query = unsigned
            .path_and_query
            .split("&Signature=")
            .next()
            .unwrap()
            .into();
        assert_eq!(code(&handle(&s, &unsigned)).1, "IncompleteSignature");
        let mut tampered = signed(CROSS_ACCOUNT_EXTERNAL_ID, "n4");
        tampered.body = tampered.body.replace("x-account", "y-account");
        assert_eq!(code(&handle(&s, &tampered)).1, "SignatureDoesNotMatch");
    }
}
