//! The simulated Tencent Cloud STS (2018-08-13): `AssumeRoleWithWebIdentity` (sent with
//! `Authorization: SKIP`, as the SDKs' `SkipSign` does; the OIDC token verified against the
//! simulated issuer, the provider id and the role's trust) and `AssumeRole` (TC3-signed
//! for service `sts`, with the same checks as CKafka). Both issue temporary keys for the
//! requested duration that the simulated CKafka accepts until they expire.
//!
//! Errors are HTTP 200 with `Response.Error`, codes from the STS SDK's `errorcodes.py`
//! (`InvalidParameter.WebIdentityTokenError`, `ResourceNotFound.RoleNotFound`,
//! `InvalidParameter.OverTimeError`, `InvalidParameter.ParamError`, `UnauthorizedOperation`,
//! `RequestLimitExceeded`, `InternalError.SystemError`). Which code the real service
//! answers for an expired token and a mismatched provider is not documented; these are
//! the simulator's choices.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::faults::Fault;
use super::tencent::{
    Failure, check_envelope, error_response, fail, json_response, missing, throttled,
    verify_signature,
};
use super::{LoggedRequest, RawRequest, SimResponse, SimState};
use kcle_cloud::Cloud;
use kcle_cloud::tencent::sts;

/// Body fields never logged.
const HIDDEN: [&str; 1] = ["WebIdentityToken"];

/// Answers one STS request and logs it.
pub fn handle(state: &SimState, req: &RawRequest) -> SimResponse {
    let request_id = uuid::Uuid::new_v4().to_string();
    let action = req.header("x-tc-action").unwrap_or_default().to_string();
    let body = match serde_json::from_str::<Value>(&req.body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    };
    let (response, outcome) = respond(state, req, &action, body.as_ref(), &request_id);
    let params: BTreeMap<String, String> = body
        .iter()
        .flatten()
        .map(|(k, v)| {
            let shown = if HIDDEN.contains(&k.as_str()) {
                "[redacted]".to_string()
            } else {
                v.as_str().map_or_else(|| v.to_string(), str::to_string)
            };
            (k.clone(), shown)
        })
        .collect();
    state.record(LoggedRequest {
        cloud: Cloud::Tencent,
        action,
        group: None,
        params,
        outcome,
        at_ms: state.now_ms(),
        raw: state.settings.record_raw.then(|| req.clone()),
    });
    response
}

fn respond(
    state: &SimState,
    req: &RawRequest,
    action: &str,
    body: Option<&Map<String, Value>>,
    request_id: &str,
) -> (SimResponse, String) {
    let rejected = |f: Failure| (error_response(&f, request_id), f.code);
    let key = match check(state, req, action) {
        Ok(key) => key,
        Err(f) => return rejected(f),
    };
    let rate = state.rate_limit(Cloud::Tencent, action);
    if state
        .take_token(Cloud::Tencent, &key, action, rate)
        .is_err()
    {
        return rejected(throttled(rate));
    }
    if let Some(fault) = state.fault(Cloud::Tencent, action, None) {
        let outcome = format!("fault:{}", fault.name());
        let failure = match &fault {
            Fault::ServerError => Some(fail(
                "InternalError.SystemError",
                "An internal error has occurred. Retry your request.",
            )),
            Fault::Throttle => Some(throttled(rate)),
            Fault::ApiError(code) => Some(fail(code, "Injected error.")),
            Fault::HttpStatus(status) => {
                let response = SimResponse {
                    status: *status,
                    headers: vec![("content-type".into(), "text/html".into())],
                    body: format!("<html><body><h1>{status}</h1></body></html>").into_bytes(),
                    delay: None,
                    hang: false,
                };
                return (response, outcome);
            }
            _ => None,
        };
        if let Some(f) = failure {
            return (error_response(&f, request_id), outcome);
        }
        let (response, _) = operate(state, action, body, request_id);
        return (response.with_fault(&fault), outcome);
    }
    operate(state, action, body, request_id)
}

/// The request's form and authentication; returns the rate-limit key (the SecretId, or
/// the role for unsigned calls).
fn check(state: &SimState, req: &RawRequest, action: &str) -> Result<String, Failure> {
    let timestamp = check_envelope(
        state,
        req,
        action,
        "sts",
        sts::STS_API_VERSION,
        &[sts::ASSUME_ROLE, sts::ASSUME_ROLE_WITH_WEB_IDENTITY],
    )?;
    if action == sts::ASSUME_ROLE_WITH_WEB_IDENTITY {
        if req.header("authorization") != Some(sts::SKIP_SIGNATURE) {
            return Err(fail(
                "AuthFailure.InvalidAuthorization",
                "AssumeRoleWithWebIdentity is not signed: send Authorization: SKIP.",
            ));
        }
        return Ok("anonymous".into());
    }
    verify_signature(state, req, timestamp, sts::STS_SERVICE).map(|key| key.id)
}

fn text<'b>(body: &'b Map<String, Value>, name: &str) -> Result<&'b str, Failure> {
    match body.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) | None => Err(missing(name)),
        Some(_) => Err(fail(
            "InvalidParameter.ParamError",
            format!("`{name}` must be a string."),
        )),
    }
}

fn duration(body: &Map<String, Value>) -> Result<Duration, Failure> {
    let secs = match body.get("DurationSeconds") {
        None => sts::DEFAULT_SESSION_SECS,
        Some(v) => v.as_u64().ok_or_else(|| {
            fail(
                "InvalidParameter.ParamError",
                "`DurationSeconds` must be an integer.",
            )
        })?,
    };
    if !(sts::MIN_SESSION_SECS..=sts::MAX_SESSION_SECS).contains(&secs) {
        return Err(fail(
            "InvalidParameter.OverTimeError",
            format!(
                "DurationSeconds must be between {} and {}.",
                sts::MIN_SESSION_SECS,
                sts::MAX_SESSION_SECS
            ),
        ));
    }
    Ok(Duration::from_secs(secs))
}

fn operate(
    state: &SimState,
    action: &str,
    body: Option<&Map<String, Value>>,
    request_id: &str,
) -> (SimResponse, String) {
    let result = body
        .ok_or_else(|| fail("InvalidParameter", "The body is not a JSON object."))
        .and_then(|body| {
            let arn = text(body, "RoleArn")?;
            text(body, "RoleSessionName")?;
            let duration = duration(body)?;
            let role = state
                .role(Cloud::Tencent, arn)
                .ok_or_else(|| fail("ResourceNotFound.RoleNotFound", "The role does not exist."))?;
            if action == sts::ASSUME_ROLE_WITH_WEB_IDENTITY {
                let provider = text(body, "ProviderId")?;
                let token = text(body, "WebIdentityToken")?;
                if provider != state.settings.identity.tencent.oidc_provider {
                    return Err(fail(
                        "InvalidParameter.ParamError",
                        format!("Identity provider `{provider}` does not exist."),
                    ));
                }
                if state.verify_oidc_token(Cloud::Tencent, token).is_err() {
                    return Err(fail(
                        "InvalidParameter.WebIdentityTokenError",
                        "The web identity token is invalid or has expired.",
                    ));
                }
                if !role.trusts_oidc {
                    return Err(fail(
                        "UnauthorizedOperation",
                        "The role does not trust this identity provider.",
                    ));
                }
            } else {
                let sent = body
                    .get("ExternalId")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty());
                if role.external_id.as_deref() != sent {
                    return Err(fail(
                        "UnauthorizedOperation",
                        "The ExternalId does not match the role's trust policy.",
                    ));
                }
            }
            Ok(state.issue_key(Cloud::Tencent, arn, duration))
        });
    match result {
        Ok(key) => {
            let expired = key.expires_ms.div_euclid(1000);
            // The same ISO 8601 UTC form as Alibaba's timestamps.
            let expiration = kcle_cloud::alibaba::sign::timestamp(expired).unwrap_or_default();
            let answer = json!({"Response": {
                "Credentials": {
                    "Token": key.key.token,
                    "TmpSecretId": key.key.id,
                    "TmpSecretKey": key.key.secret,
                },
                "ExpiredTime": expired,
                "Expiration": expiration,
                "RequestId": request_id,
            }});
            (json_response(&answer), "ok".into())
        }
        Err(f) => (error_response(&f, request_id), f.code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimSettings;
    use crate::identity::{TENCENT_OIDC_PROVIDER, TENCENT_ROLE};
    use crate::world::World;
    use kcle_cloud::tencent::sign;

    const NOW: i64 = 1_700_000_000;

    fn state() -> SimState {
        SimState::new(
            SimSettings::default(),
            World::default(),
            kcle_clock::Clock::virtual_at_unix(NOW as u64),
        )
    }

    fn request(action: &str, body: &Value, authorization: Option<&str>) -> RawRequest {
        let mut headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("host".to_string(), "sts.tencentcloudapi.com".to_string()),
            ("x-tc-action".to_string(), action.to_string()),
            ("x-tc-version".to_string(), sts::STS_API_VERSION.to_string()),
            ("x-tc-region".to_string(), "ap-guangzhou".to_string()),
            ("x-tc-timestamp".to_string(), NOW.to_string()),
        ];
        if let Some(a) = authorization {
            headers.push(("authorization".into(), a.into()));
        }
        RawRequest {
            method: "POST".into(),
            path_and_query: "/".into(),
            headers,
            body: body.to_string(),
        }
    }

    fn code(r: &SimResponse) -> String {
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        v["Response"]["Error"]["Code"]
            .as_str()
            .unwrap_or("ok")
            .to_string()
    }

    #[test]
    fn web_identity_is_unsigned_and_checks_the_token() {
        let s = state();
        let token = s.mint_oidc_token(Cloud::Tencent, Duration::from_secs(600));
        let body = |token: &str, duration: u64| {
            json!({"ProviderId": TENCENT_OIDC_PROVIDER, "WebIdentityToken": token,
                   "RoleArn": TENCENT_ROLE, "RoleSessionName": "t", "DurationSeconds": duration})
        };
        let action = sts::ASSUME_ROLE_WITH_WEB_IDENTITY;
        let ok = handle(&s, &request(action, &body(&token, 900), Some("SKIP")));
        assert_eq!(code(&ok), "ok");
        let v: Value = serde_json::from_slice(&ok.body).unwrap();
        assert_eq!(v["Response"]["ExpiredTime"], NOW + 900);
        assert_eq!(s.requests()[0].params["WebIdentityToken"], "[redacted]");
        let cases = [
            (
                request(action, &body(&token, 900), None),
                "AuthFailure.InvalidAuthorization",
            ),
            (
                request(action, &body("forged", 900), Some("SKIP")),
                "InvalidParameter.WebIdentityTokenError",
            ),
            (
                request(action, &body(&token, 43_201), Some("SKIP")),
                "InvalidParameter.OverTimeError",
            ),
            (
                request("AssumeRoleWithSAML", &body(&token, 900), Some("SKIP")),
                "InvalidAction",
            ),
        ];
        for (req, want) in cases {
            assert_eq!(code(&handle(&s, &req)), want);
        }
    }

    #[test]
    fn assume_role_is_tc3_signed_for_sts() {
        let s = state();
        let key = SimSettings::default().tencent_keys[0].clone();
        let body = json!({"RoleArn": TENCENT_ROLE, "RoleSessionName": "t", "DurationSeconds": 900});
        let signed = |service: &str| {
            let payload = body.to_string();
            let sig = sign::sign(
                &sign::Request {
                    method: "POST",
                    headers: &[
                        ("content-type", "application/json"),
                        ("host", "sts.tencentcloudapi.com"),
                    ],
                    payload: payload.as_bytes(),
                    timestamp: NOW,
                    service,
                },
                &key.id,
                &key.secret,
            )
            .unwrap();
            request(sts::ASSUME_ROLE, &body, Some(&sig.authorization))
        };
        assert_eq!(code(&handle(&s, &signed("sts"))), "ok");
        assert_eq!(
            code(&handle(&s, &signed("ckafka"))),
            "AuthFailure.InvalidAuthorization"
        );
        assert_eq!(
            code(&handle(&s, &request(sts::ASSUME_ROLE, &body, Some("SKIP")))),
            "AuthFailure.InvalidAuthorization"
        );
    }
}
