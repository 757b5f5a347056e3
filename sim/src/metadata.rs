//! The simulated instance metadata services: Alibaba ECS (`PUT /latest/api/token` for an
//! IMDSv2 session token, then `GET /latest/meta-data/ram/security-credentials/[<role>]`,
//! in one of the [`ImdsMode`]s) and Tencent CVM
//! (`GET /latest/meta-data/cam/security-credentials/[<role>]`), answering the attached
//! role's temporary keys, which the simulated APIs accept until they expire. The Alibaba
//! listener also serves [`CREDENTIALS_URI_PATH`], an `ALIBABA_CLOUD_CREDENTIALS_URI`
//! endpoint answering the same keys.
//!
//! Faults apply under the action name [`ACTION`] (per cloud): a hang or delay is how a
//! host without a metadata service looks to a client.

use std::collections::BTreeMap;

use serde_json::json;

use super::faults::Fault;
use super::identity::ImdsMode;
use super::{LoggedRequest, RawRequest, SimResponse, SimState};
use kcle_cloud::Cloud;
use kcle_cloud::{alibaba, tencent};

/// The action name of metadata requests in the log and in fault rules.
pub const ACTION: &str = "InstanceMetadata";
/// Where the Alibaba listener serves an `ALIBABA_CLOUD_CREDENTIALS_URI` endpoint.
pub const CREDENTIALS_URI_PATH: &str = "/kcle-sim/credentials";

fn text(status: u16, body: &str) -> SimResponse {
    SimResponse {
        status,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: body.as_bytes().to_vec(),
        delay: None,
        hang: false,
    }
}

fn record(state: &SimState, cloud: Cloud, req: &RawRequest, outcome: &str) {
    state.record(LoggedRequest {
        cloud,
        action: ACTION.into(),
        group: None,
        params: BTreeMap::from([
            ("method".to_string(), req.method.clone()),
            ("path".to_string(), req.path().to_string()),
        ]),
        outcome: outcome.to_string(),
        at_ms: state.now_ms(),
        raw: None,
    });
}

/// An injected fault: its answer (a timing fault applies to the real one).
fn faulted(
    state: &SimState,
    cloud: Cloud,
    answer: impl FnOnce() -> SimResponse,
) -> (SimResponse, String) {
    match state.fault(cloud, ACTION, None) {
        None => {
            let response = answer();
            let outcome = if response.status == 200 {
                "ok".to_string()
            } else {
                format!("http_{}", response.status)
            };
            (response, outcome)
        }
        Some(fault) => {
            let outcome = format!("fault:{}", fault.name());
            let response = match &fault {
                Fault::ServerError => text(500, "internal error"),
                Fault::HttpStatus(n) => text(*n, "error"),
                Fault::Throttle => text(429, "too many requests"),
                _ => answer().with_fault(&fault),
            };
            (response, outcome)
        }
    }
}

/// The ECS metadata service.
pub fn alibaba(state: &SimState, req: &RawRequest) -> SimResponse {
    let (response, outcome) = faulted(state, Cloud::Alibaba, || ecs(state, req));
    record(state, Cloud::Alibaba, req, &outcome);
    response
}

fn ecs(state: &SimState, req: &RawRequest) -> SimResponse {
    use alibaba::sts::{
        METADATA_TOKEN_HEADER, METADATA_TOKEN_PATH, METADATA_TOKEN_TTL_HEADER,
        METADATA_TOKEN_TTL_SECS, ROLE_CREDENTIALS_PATH,
    };
    let mode = state.settings.identity.imds;
    let path = req.path();
    if path == CREDENTIALS_URI_PATH && req.method == "GET" {
        return ecs_credentials(state);
    }
    if path == METADATA_TOKEN_PATH {
        if mode == ImdsMode::Unsupported {
            return text(404, "not found");
        }
        if req.method != "PUT" {
            return text(405, "method not allowed");
        }
        let ttl = req
            .header(METADATA_TOKEN_TTL_HEADER)
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|t| (1..=METADATA_TOKEN_TTL_SECS as i64).contains(t));
        return match ttl {
            Some(ttl) => text(200, &state.imds_token(ttl)),
            None => text(400, "invalid token ttl"),
        };
    }
    let Some(rest) = path.strip_prefix(ROLE_CREDENTIALS_PATH.trim_end_matches('/')) else {
        return text(404, "not found");
    };
    if req.method != "GET" {
        return text(405, "method not allowed");
    }
    match req.header(METADATA_TOKEN_HEADER) {
        Some(token) if mode != ImdsMode::Unsupported && !state.imds_token_valid(token) => {
            return text(401, "invalid metadata token");
        }
        Some(_) if mode != ImdsMode::Unsupported => {}
        _ if mode == ImdsMode::Required => return text(403, "IMDSv2 token required"),
        _ => {}
    }
    let role = state.settings.identity.alibaba.instance_role.clone();
    match (rest.trim_start_matches('/'), role) {
        ("", Some(role)) => text(200, &role),
        ("", None) => text(404, "not found"),
        (asked, Some(role)) if asked == role => ecs_credentials(state),
        _ => text(404, "not found"),
    }
}

fn ecs_credentials(state: &SimState) -> SimResponse {
    let Some(key) = state.instance_key(Cloud::Alibaba) else {
        return text(404, "not found");
    };
    let at = |ms: i64| alibaba::sign::timestamp(ms.div_euclid(1000)).unwrap_or_default();
    SimResponse::json(
        200,
        &json!({
            "Code": alibaba::sts::METADATA_SUCCESS,
            "AccessKeyId": key.key.id,
            "AccessKeySecret": key.key.secret,
            "SecurityToken": key.key.token,
            "Expiration": at(key.expires_ms),
            "LastUpdated": at(state.now_ms()),
        }),
    )
}

/// The CVM metadata service.
pub fn tencent(state: &SimState, req: &RawRequest) -> SimResponse {
    let (response, outcome) = faulted(state, Cloud::Tencent, || cvm(state, req));
    record(state, Cloud::Tencent, req, &outcome);
    response
}

fn cvm(state: &SimState, req: &RawRequest) -> SimResponse {
    let Some(rest) = req
        .path()
        .strip_prefix(tencent::sts::ROLE_CREDENTIALS_PATH.trim_end_matches('/'))
    else {
        return text(404, "not found");
    };
    if req.method != "GET" {
        return text(405, "method not allowed");
    }
    let role = state.settings.identity.tencent.instance_role.clone();
    match (rest.trim_start_matches('/'), role) {
        ("", Some(role)) => text(200, &role),
        (asked, Some(role)) if !asked.is_empty() && asked == role => {
            let Some(key) = state.instance_key(Cloud::Tencent) else {
                return text(404, "not found");
            };
            let expired = key.expires_ms.div_euclid(1000);
            SimResponse::json(
                200,
                &json!({
                    "Code": tencent::sts::METADATA_SUCCESS,
                    "TmpSecretId": key.key.id,
                    "TmpSecretKey": key.key.secret,
                    "Token": key.key.token,
                    "ExpiredTime": expired,
                    "Expiration": alibaba::sign::timestamp(expired).unwrap_or_default(),
                }),
            )
        }
        _ => text(404, "not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimSettings;
    use crate::identity::INSTANCE_ROLE;
    use crate::world::World;

    fn state(mode: ImdsMode) -> SimState {
        let mut settings = SimSettings::default();
        settings.identity.imds = mode;
        SimState::new(
            settings,
            World::default(),
            kcle_clock::Clock::virtual_at_unix(1_700_000_000),
        )
    }

    fn req(method: &str, path: &str, headers: &[(&str, &str)]) -> RawRequest {
        RawRequest {
            method: method.into(),
            path_and_query: path.into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: String::new(),
        }
    }

    const ROLES: &str = "/latest/meta-data/ram/security-credentials/";

    #[test]
    fn ecs_imdsv2_tokens_in_every_mode() {
        let s = state(ImdsMode::Required);
        let put = |ttl: &str| {
            alibaba(
                &s,
                &req(
                    "PUT",
                    "/latest/api/token",
                    &[("x-aliyun-ecs-metadata-token-ttl-seconds", ttl)],
                ),
            )
        };
        assert_eq!(put("0").status, 400);
        assert_eq!(put("21601").status, 400);
        let token = String::from_utf8(put("21600").body).unwrap();
        fn with(t: &str) -> [(&'static str, &str); 1] {
            [("x-aliyun-ecs-metadata-token", t)]
        }
        assert_eq!(
            alibaba(&s, &req("GET", ROLES, &[])).status,
            403,
            "token required"
        );
        assert_eq!(alibaba(&s, &req("GET", ROLES, &with("forged"))).status, 401);
        let role = alibaba(&s, &req("GET", ROLES, &with(&token)));
        assert_eq!(String::from_utf8(role.body).unwrap(), INSTANCE_ROLE);
        let creds = alibaba(
            &s,
            &req("GET", &format!("{ROLES}{INSTANCE_ROLE}"), &with(&token)),
        );
        let v: serde_json::Value = serde_json::from_slice(&creds.body).unwrap();
        assert_eq!(v["Code"], "Success");
        assert!(v["AccessKeyId"].as_str().unwrap().starts_with("STS."));
        assert_eq!(
            alibaba(&s, &req("GET", &format!("{ROLES}OtherRole"), &with(&token))).status,
            404
        );
        let s = state(ImdsMode::Unsupported);
        assert_eq!(
            alibaba(&s, &req("PUT", "/latest/api/token", &[])).status,
            404
        );
        assert_eq!(alibaba(&s, &req("GET", ROLES, &[])).status, 200, "IMDSv1");
    }

    #[test]
    fn cvm_roles_and_credentials() {
        let s = state(ImdsMode::Optional);
        let path = "/latest/meta-data/cam/security-credentials/";
        assert_eq!(
            String::from_utf8(tencent(&s, &req("GET", path, &[])).body).unwrap(),
            INSTANCE_ROLE
        );
        let r = tencent(&s, &req("GET", &format!("{path}{INSTANCE_ROLE}"), &[]));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["Code"], "Success");
        assert_eq!(v["ExpiredTime"], 1_700_000_000 + 6 * 3600);
        assert!(v["Token"].as_str().is_some_and(|t| !t.is_empty()));
        let mut settings = SimSettings::default();
        settings.identity.tencent.instance_role = None;
        let s = SimState::new(
            settings,
            World::default(),
            kcle_clock::Clock::virtual_at_unix(1_700_000_000),
        );
        assert_eq!(
            tencent(&s, &req("GET", path, &[])).status,
            404,
            "no role bound"
        );
    }
}
