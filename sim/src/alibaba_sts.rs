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
