//! The simulated alikafka API (2019-09-16): `GetConsumerProgress`, `GetConsumerList`,
//! `GetInstanceList` and `UpdateConsumerOffset` over the simulated [`World`].
//!
//! As strict as the real service and in its order: common parameters (V2 query) or headers
//! (V3), `Version`, the action, the timestamp window (15 minutes), nonce reuse, the access
//! key, the STS token, the signature, `Format`; then the per key and action rate limit,
//! injected faults, and the operation. Errors use Alibaba's codes and both body shapes:
//! gateway errors `{RequestId, HostId, Code, Message, Recommend}` with a 4xx/5xx status, and
//! business failures with HTTP 200 `{RequestId, Code: <int>, Message, Success: false}`.
//!
//! Shares only the pure signing functions with the client. Answers JSON only: a request
//! asking for XML gets an error saying so. Every request is logged with its operation
//! parameters (not the signing ones) and outcome.
//!
//! [`World`]: super::world::World

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::faults::Fault;
use super::world::{InstanceStatus, ResetTo, SimInstance, WorldError};
use super::{LoggedRequest, RawRequest, SimKey, SimResponse, SimState};
use kcle_cloud::Cloud;
use kcle_cloud::alibaba::sign;

/// The only API version served. Spelled out here rather than taken from the client, so
/// that a client sending the wrong version is caught.
const API_VERSION: &str = "2019-09-16";

/// How far a request's timestamp may be from the service clock (the V3 doc's 15 minutes).
const TIMESTAMP_WINDOW_MS: i64 = 15 * 60 * 1000;

/// Default of [`SimSettings::alibaba_max_page_size`](super::SimSettings): the largest
/// `GetConsumerList` `PageSize` accepted (the real maximum is not published; 100 is the
/// common Alibaba limit). Larger values are refused, not capped.
pub const DEFAULT_MAX_PAGE_SIZE: usize = 100;

/// `PageSize` when none is given (the value of Alibaba's examples).
const DEFAULT_PAGE_SIZE: usize = 10;

/// The `x-acs-retry-after` (ms) of an injected throttling fault.
const FAULT_RETRY_AFTER_MS: u64 = 100;

/// Business failures (HTTP 200, `Success: false`) carry this numeric `Code`.
const BUSINESS_ERROR_CODE: i64 = 400;

/// Parameters of the V2 protocol itself, left out of the logged operation parameters.
const COMMON_PARAMS: [&str; 11] = [
    "Action",
    "Version",
    "Format",
    "AccessKeyId",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "SignatureType",
    "Timestamp",
    "SecurityToken",
    "Signature",
];

const ACTIONS: [&str; 4] = [
    "GetConsumerProgress",
    "GetConsumerList",
    "GetInstanceList",
    "UpdateConsumerOffset",
];

/// An RPC API served with the same checks: alikafka here, STS in `alibaba_sts`.
pub(crate) struct Api {
    /// The product name in error recommendations.
    pub(crate) product: &'static str,
    pub(crate) version: &'static str,
    pub(crate) actions: &'static [&'static str],
    /// Actions called without a signature (STS `AssumeRoleWithOIDC`).
    pub(crate) anonymous: &'static [&'static str],
    /// Parameters logged as `[redacted]` (tokens).
    pub(crate) hidden: &'static [&'static str],
    /// Runs an action that passed every check.
    pub(crate) operate: fn(&Call<'_>) -> Result<Done, Done>,
}

const ALIKAFKA: Api = Api {
    product: "alikafka",
    version: API_VERSION,
    actions: &ACTIONS,
    anonymous: &[],
    hidden: &[],
    operate: Call::operate,
};

/// Answers one request.
pub fn handle(state: &SimState, req: &RawRequest) -> SimResponse {
    handle_api(&ALIKAFKA, state, req)
}

/// Answers one request to `api` and logs it.
pub(crate) fn handle_api(api: &'static Api, state: &SimState, req: &RawRequest) -> SimResponse {
    let mut call = Call {
        api,
        state,
        req,
        request_id: uuid::Uuid::new_v4().hyphenated().to_string().to_uppercase(),
        action: String::new(),
        params: BTreeMap::new(),
    };
    let (response, outcome) = match call.run() {
        Ok(done) | Err(done) => done,
    };
    let mut params = call.params.clone();
    for name in api.hidden {
        if let Some(v) = params.get_mut(*name) {
            *v = "[redacted]".into();
        }
    }
    state.record(LoggedRequest {
        cloud: Cloud::Alibaba,
        action: call.action.clone(),
        group: call.params.get("ConsumerId").cloned(),
        params,
        outcome,
        at_ms: state.now_ms(),
        raw: state.settings.record_raw.then(|| req.clone()),
    });
    response
}

/// An answer and the outcome logged for it.
pub(crate) type Done = (SimResponse, String);

/// The signing-related facts of a request, from the V2 query or the V3 headers.
struct Auth {
    action: Option<String>,
    version: Option<String>,
    key_id: String,
    nonce: String,
    timestamp: String,
    token: Option<String>,
    wants_xml: bool,
    style: Style,
}

enum Style {
    V2 {
        signature: String,
    },
    V3 {
        signed_headers: Vec<String>,
        signature: String,
        content_sha256: String,
    },
}

pub(crate) struct Call<'a> {
    api: &'static Api,
    pub(crate) state: &'a SimState,
    pub(crate) req: &'a RawRequest,
    pub(crate) request_id: String,
    pub(crate) action: String,
    /// Operation parameters (what is logged).
    pub(crate) params: BTreeMap<String, String>,
}

impl Call<'_> {
    fn run(&mut self) -> Result<Done, Done> {
        // The RPC API is served at "/" only; other paths reach no API.
        if self.req.path() != "/" {
            return Err((bare_status(404), "http_404".into()));
        }
        if self.req.method != "GET" && self.req.method != "POST" {
            return Err(self.gateway(
                400,
                "UnsupportedHTTPMethod",
                &format!(
                    "Specified http method {} is not supported.",
                    self.req.method
                ),
            ));
        }
        let Some(mut all) = self.req.query_pairs() else {
            return Err(self.gateway(
                400,
                "InvalidParameter",
                "The query string is not valid UTF-8.",
            ));
        };
        if let Some(form) = self.form_params() {
            all.extend(form);
        }
        let anonymous = all
            .iter()
            .find(|(k, _)| k == "Action")
            .is_some_and(|(_, a)| self.api.anonymous.contains(&a.as_str()));
        if anonymous {
            return self.run_anonymous(&all);
        }
        let auth = self.read_auth(&all)?;
        let common: &[&str] = match auth.style {
            Style::V2 { .. } => &COMMON_PARAMS,
            Style::V3 { .. } => &[],
        };
        self.params = all
            .iter()
            .filter(|(k, _)| !common.contains(&k.as_str()))
            .cloned()
            .collect();
        self.action = auth.action.clone().unwrap_or_default();
        self.check(&auth, &all)?;
        let op = self.action.clone();
        if let Err(wait) = self.state.take_token(
            Cloud::Alibaba,
            &auth.key_id,
            &op,
            self.state.rate_limit(Cloud::Alibaba, &op),
        ) {
            return Err(self.throttled(wait));
        }
        self.faults_then_operate(&op)
    }

    /// An unsigned call (STS `AssumeRoleWithOIDC`): version, format and timestamp are
    /// checked, the rest is the operation's business.
    fn run_anonymous(&mut self, all: &[(String, String)]) -> Result<Done, Done> {
        let param = |name: &str| all.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        self.action = param("Action").unwrap_or_default();
        self.params = all
            .iter()
            .filter(|(k, _)| !COMMON_PARAMS.contains(&k.as_str()))
            .cloned()
            .collect();
        let version = param("Version").ok_or_else(|| self.missing("Version"))?;
        if version != self.api.version {
            return Err(self.gateway(
                400,
                "InvalidVersion",
                &format!("Specified parameter Version {version} is not valid."),
            ));
        }
        if !param("Format").is_some_and(|f| f.eq_ignore_ascii_case("json")) {
            return Err(self.gateway(
                400,
                "InvalidParameter.Format",
                "The Format format is invalid: the simulator answers JSON only, send Format=JSON (XML answers are not simulated).",
            ));
        }
        let timestamp = param("Timestamp").ok_or_else(|| self.missing("Timestamp"))?;
        self.check_timestamp(&timestamp)?;
        let op = self.action.clone();
        if let Err(wait) = self.state.take_token(
            Cloud::Alibaba,
            "anonymous",
            &op,
            self.state.rate_limit(Cloud::Alibaba, &op),
        ) {
            return Err(self.throttled(wait));
        }
        self.faults_then_operate(&op)
    }

    /// Injected faults, else the operation.
    fn faults_then_operate(&self, op: &str) -> Result<Done, Done> {
        let group = self.params.get("ConsumerId").cloned();
        let fault = self.state.fault(Cloud::Alibaba, op, group.as_deref());
        if let Some(fault) = fault {
            let name = fault.name();
            let response = match &fault {
                Fault::ServerError => self.gateway(
                    500,
                    "InternalError",
                    "The request processing has failed due to some unknown error, exception or failure.",
                ).0,
                Fault::HttpStatus(n) => bare_status(*n),
                Fault::Throttle => self.throttled(Duration::from_millis(FAULT_RETRY_AFTER_MS)).0,
                Fault::ApiError(code) => self.injected_error(code).0,
                Fault::WrongShape => SimResponse::json(200, &self.wrong_shape()),
                Fault::Truncated | Fault::Delay(_) | Fault::Hang | Fault::Unconfirmed => {
                    let (response, _) = match (self.api.operate)(self) {
                        Ok(done) | Err(done) => done,
                    };
                    response.with_fault(&fault)
                }
            };
            return Ok((response, format!("fault:{name}")));
        }
        (self.api.operate)(self)
    }

    /// Parameters in a form-encoded body (the legacy SDKs may send them there; they are
    /// signed like query parameters).
    fn form_params(&self) -> Option<Vec<(String, String)>> {
        let form = self
            .req
            .header("content-type")?
            .starts_with("application/x-www-form-urlencoded");
        if !form || self.req.body.is_empty() {
            return None;
        }
        self.req
            .body
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                let decode = |s: &str| {
                    percent_encoding::percent_decode_str(&s.replace('+', " "))
                        .decode_utf8()
                        .ok()
                        .map(|c| c.into_owned())
                };
                Some((decode(k)?, decode(v)?))
            })
            .collect()
    }

    fn read_auth(&self, all: &[(String, String)]) -> Result<Auth, Done> {
        let param = |name: &str| all.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        if let Some(header) = self.req.header("authorization")
            && header.starts_with("ACS3-")
        {
            return self.read_v3_auth(header);
        }
        let missing = |name: &str| self.missing(name);
        let incomplete = |what: &str| self.incomplete(what);
        let action = param("Action").ok_or_else(|| missing("Action"))?;
        let version = param("Version").ok_or_else(|| missing("Version"))?;
        let key_id = param("AccessKeyId").ok_or_else(|| missing("AccessKeyId"))?;
        let timestamp = param("Timestamp").ok_or_else(|| missing("Timestamp"))?;
        let nonce = param("SignatureNonce").ok_or_else(|| missing("SignatureNonce"))?;
        let signature = param("Signature").ok_or_else(|| incomplete("Signature is missing."))?;
        match param("SignatureMethod").as_deref() {
            Some(sign::V2_SIGNATURE_METHOD) => {}
            Some(other) => {
                return Err(incomplete(&format!(
                    "SignatureMethod {other} is not supported, use HMAC-SHA1."
                )));
            }
            None => return Err(incomplete("SignatureMethod is missing.")),
        }
        match param("SignatureVersion").as_deref() {
            Some(sign::V2_SIGNATURE_VERSION) => {}
            Some(other) => {
                return Err(incomplete(&format!(
                    "SignatureVersion {other} is not supported, use 1.0."
                )));
            }
            None => return Err(incomplete("SignatureVersion is missing.")),
        }
        // Without Format the real service answers XML.
        let wants_xml = !param("Format").is_some_and(|f| f.eq_ignore_ascii_case("json"));
        Ok(Auth {
            action: Some(action),
            version: Some(version),
            key_id,
            nonce,
            timestamp,
            token: param("SecurityToken"),
            wants_xml,
            style: Style::V2 { signature },
        })
    }

    fn read_v3_auth(&self, header: &str) -> Result<Auth, Done> {
        let incomplete = |what: &str| self.incomplete(what);
        let parsed = sign::parse_v3_authorization(header).ok_or_else(|| {
            incomplete("Authorization must be ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..")
        })?;
        let header = |name: &str| self.req.header(name).map(str::to_string);
        let required = |name: &str| {
            header(name).ok_or_else(|| incomplete(&format!("Header {name} is missing.")))
        };
        let timestamp = required("x-acs-date")?;
        let nonce = required("x-acs-signature-nonce")?;
        let content_sha256 = required("x-acs-content-sha256")?;
        // Every x-acs-* header sent, and host, must be signed.
        let mut must_sign: Vec<String> = self
            .req
            .headers
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| n.starts_with("x-acs-"))
            .collect();
        must_sign.push("host".into());
        if let Some(unsigned) = must_sign
            .iter()
            .find(|n| !parsed.signed_headers.contains(n))
        {
            return Err(incomplete(&format!(
                "Header {unsigned} is sent but not signed."
            )));
        }
        if content_sha256 != sign::sha256_hex(self.req.body.as_bytes()) {
            return Err(incomplete("x-acs-content-sha256 does not match the body."));
        }
        let wants_xml = header("accept").is_some_and(|a| {
            let a = a.to_ascii_lowercase();
            a.contains("xml") && !a.contains("json")
        });
        Ok(Auth {
            action: header("x-acs-action"),
            version: header("x-acs-version"),
            key_id: parsed.access_key_id,
            nonce,
            timestamp,
            token: header("x-acs-security-token"),
            wants_xml,
            style: Style::V3 {
                signed_headers: parsed.signed_headers,
                signature: parsed.signature,
                content_sha256,
            },
        })
    }

    /// The timestamp is well formed and within the window.
    fn check_timestamp(&self, timestamp: &str) -> Result<(), Done> {
        let Ok(secs) = sign::parse_timestamp(timestamp) else {
            return Err(self.gateway(
                400,
                "InvalidTimeStamp.Format",
                "Specified time stamp or date value is not well formatted.",
            ));
        };
        if (secs.saturating_mul(1000) - self.state.now_ms()).abs() > TIMESTAMP_WINDOW_MS {
            return Err(self.gateway(
                400,
                "InvalidTimeStamp.Expired",
                "Specified time stamp or date value is expired.",
            ));
        }
        Ok(())
    }

    /// The checks after the parameters are read, in the real service's order.
    fn check(&self, auth: &Auth, all: &[(String, String)]) -> Result<(), Done> {
        let missing = |name: &str| self.missing(name);
        let action = auth
            .action
            .as_deref()
            .ok_or_else(|| missing("x-acs-action"))?;
        let version = auth
            .version
            .as_deref()
            .ok_or_else(|| missing("x-acs-version"))?;
        if version != self.api.version {
            return Err(self.gateway(
                400,
                "InvalidVersion",
                &format!("Specified parameter Version {version} is not valid."),
            ));
        }
        if !self.api.actions.contains(&action) {
            return Err(self.gateway(
                404,
                "InvalidAction.NotFound",
                "Specified api is not found, please check your url and method.",
            ));
        }
        self.check_timestamp(&auth.timestamp)?;
        if !self.state.use_nonce(&auth.nonce) {
            return Err(self.gateway(
                400,
                "SignatureNonceUsed",
                "Specified signature nonce was used already.",
            ));
        }
        let Some(key) = self.state.key(Cloud::Alibaba, &auth.key_id) else {
            return Err(self.gateway(
                404,
                "InvalidAccessKeyId.NotFound",
                "Specified access key is not found.",
            ));
        };
        match (&key.token, &auth.token) {
            (Some(_), None) => {
                return Err(self.gateway(
                    400,
                    "MissingSecurityToken",
                    "SecurityToken is mandatory for this action.",
                ));
            }
            (expected, Some(sent)) if expected.as_ref() != Some(sent) => {
                return Err(self.gateway(
                    400,
                    "InvalidSecurityToken.MismatchWithAccessKey",
                    "Specified SecurityToken mismatch with the AccessKey.",
                ));
            }
            _ => {}
        }
        if self.state.key_expired(Cloud::Alibaba, &auth.key_id) {
            return Err(self.gateway(
                400,
                "InvalidSecurityToken.Expired",
                "Specified SecurityToken is expired.",
            ));
        }
        let (expected, server_string) = self.expected_signature(auth, &key, all);
        let sent = match &auth.style {
            Style::V2 { signature } | Style::V3 { signature, .. } => signature,
        };
        if *sent != expected {
            return Err(self.gateway(
                400,
                "SignatureDoesNotMatch",
                &format!(
                    "Specified signature is not matched with our calculation. server string to sign is:{server_string}"
                ),
            ));
        }
        if auth.wants_xml {
            return Err(self.gateway(
                400,
                "InvalidParameter.Format",
                "The Format format is invalid: the simulator answers JSON only, send Format=JSON (XML answers are not simulated).",
            ));
        }
        Ok(())
    }

    /// The signature the request should carry, and the string it signs.
    fn expected_signature(
        &self,
        auth: &Auth,
        key: &SimKey,
        all: &[(String, String)],
    ) -> (String, String) {
        match &auth.style {
            Style::V2 { .. } => {
                let signed: Vec<(String, String)> = all
                    .iter()
                    .filter(|(k, _)| k != "Signature")
                    .cloned()
                    .collect();
                let sts =
                    sign::v2_string_to_sign(&self.req.method, &sign::canonicalized_query(&signed));
                (sign::v2_signature(&key.secret, &sts), sts)
            }
            Style::V3 {
                signed_headers,
                content_sha256,
                ..
            } => {
                let query = self.req.query_pairs().unwrap_or_default();
                let headers: Vec<(String, String)> = signed_headers
                    .iter()
                    .map(|n| {
                        (
                            n.clone(),
                            self.req.header(n).unwrap_or_default().to_string(),
                        )
                    })
                    .collect();
                let (canonical_headers, names) = sign::v3_canonical_headers(&headers);
                let cr = sign::v3_canonical_request(
                    &self.req.method,
                    self.req.path(),
                    &sign::v3_canonical_query(&query),
                    &canonical_headers,
                    &names,
                    content_sha256,
                );
                let sts = sign::v3_string_to_sign(&cr);
                (sign::v3_signature(&key.secret, &sts), sts)
            }
        }
    }

    fn operate(call: &Call<'_>) -> Result<Done, Done> {
        call.operate_alikafka()
    }

    fn operate_alikafka(&self) -> Result<Done, Done> {
        match self.action.as_str() {
            "GetConsumerProgress" => self.get_consumer_progress(),
            "GetConsumerList" => self.get_consumer_list(),
            "GetInstanceList" => self.get_instance_list(),
            "UpdateConsumerOffset" => self.update_consumer_offset(),
            _ => unreachable!("actions are checked before"),
        }
    }

    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    pub(crate) fn required(&self, name: &str) -> Result<&str, Done> {
        self.param(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| self.missing(name))
    }

    fn incomplete(&self, what: &str) -> Done {
        self.gateway(
            400,
            "IncompleteSignature",
            &format!("The request signature does not conform to Aliyun standards. {what}"),
        )
    }

    fn missing(&self, name: &str) -> Done {
        self.gateway(
            400,
            "MissingParameter",
            &format!(
                "The input parameter \"{name}\" that is mandatory for processing this request is not supplied."
            ),
        )
    }

    /// The instance named by `InstanceId`, if it is in the requested region.
    fn instance<'w>(
        &self,
        world: &'w super::world::World,
        region: &str,
        id: &str,
    ) -> Result<&'w SimInstance, Done> {
        world
            .instance(Cloud::Alibaba, id)
            .ok()
            .filter(|i| i.region == region)
            .ok_or_else(|| self.world_error(&WorldError::InstanceNotFound))
    }

    fn get_consumer_progress(&self) -> Result<Done, Done> {
        let region = self.required("RegionId")?;
        let instance_id = self.required("InstanceId")?;
        let group = self.required("ConsumerId")?;
        let hide = self
            .param("HideLastTimestamp")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let now = self.state.now_ms();
        let legacy = self.state.settings.alibaba_legacy_answers;
        let body = self.state.world(|w| {
            let inst = self.instance(w, region, instance_id)?;
            let rows = w
                .progress(Cloud::Alibaba, instance_id, group, now)
                .map_err(|e| self.world_error(&e))?;
            let members = inst.groups.get(group).map_or(0, |g| g.members);
            let mut slot = 0usize;
            let mut group_diff = 0i64;
            let mut group_last = -1i64;
            let mut topics = Vec::new();
            for (topic, partitions) in &rows {
                let mut topic_diff = 0i64;
                let mut topic_last = -1i64;
                let mut entries = Vec::new();
                for row in partitions {
                    let lag = row.committed.map(|c| (row.log_end - c).max(0));
                    topic_diff += lag.unwrap_or(0);
                    let last = if hide {
                        -1
                    } else {
                        row.last_consumed_ms.unwrap_or(-1)
                    };
                    topic_last = topic_last.max(last);
                    let (client_id, client_ip, member_id) = if members > 0 {
                        member(group, (slot % members as usize) as u32)
                    } else {
                        Default::default()
                    };
                    slot += 1;
                    let mut entry = json!({
                        "Partition": row.partition,
                        "BrokerOffset": row.log_end,
                        "ConsumerOffset": row.committed.unwrap_or(-1),
                        "LastTimestamp": last,
                    });
                    if !legacy {
                        entry["Accumulate"] = json!(lag.unwrap_or(0));
                        entry["ClientId"] = json!(client_id);
                        entry["ClientIp"] = json!(client_ip);
                        entry["MemberId"] = json!(member_id);
                    }
                    entries.push(entry);
                }
                group_diff += topic_diff;
                group_last = group_last.max(topic_last);
                topics.push(json!({
                    "Topic": topic,
                    "TotalDiff": topic_diff,
                    "LastTimestamp": topic_last,
                    "OffsetList": { "OffsetList": self.list(entries) },
                }));
            }
            let rebalances = if members > 0 {
                vec![json!({
                    "GroupId": group,
                    "Generation": members,
                    "LastRebalanceTimestamp": now - 60_000,
                    "Reason": "member joined",
                    "RebalanceSuccess": true,
                    "RebalanceTimeConsuming": 3_000,
                })]
            } else {
                Vec::new()
            };
            let mut progress = json!({
                "TotalDiff": group_diff,
                "LastTimestamp": group_last,
                "TopicList": { "TopicList": self.list(topics) },
            });
            if !legacy {
                progress["state"] = json!(if members > 0 { "STABLE" } else { "EMPTY" });
                progress["RebalanceInfoList"] =
                    json!({ "RebalanceInfoList": self.list(rebalances) });
            }
            Ok::<_, Done>(json!({ "ConsumerProgress": progress }))
        })?;
        Ok(self.ok(body))
    }

    fn get_consumer_list(&self) -> Result<Done, Done> {
        let region = self.required("RegionId")?;
        let instance_id = self.required("InstanceId")?;
        let legacy = self.state.settings.alibaba_legacy_answers;
        let mut page = self.positive("CurrentPage", 1)?;
        let mut size = self.positive("PageSize", DEFAULT_PAGE_SIZE)?;
        let max = self.state.settings.alibaba_max_page_size;
        if size > max && !legacy {
            return Err(self.gateway(
                400,
                "InvalidParameter",
                &format!("The PageSize parameter is invalid. It must be between 1 and {max}."),
            ));
        }
        if legacy {
            // The older API had no paging: every answer lists every group.
            page = 1;
            size = usize::MAX;
        }
        let filter = self.param("ConsumerId").filter(|s| !s.is_empty());
        let body = self.state.world(|w| {
            let inst = self.instance(w, region, instance_id)?;
            let names: Vec<&String> = inst
                .groups
                .keys()
                .filter(|g| filter.is_none_or(|f| f == g.as_str()))
                .collect();
            let vos: Vec<Value> = names
                .iter()
                .skip((page - 1).saturating_mul(size))
                .take(size)
                .map(|g| {
                    json!({
                        "ConsumerId": g,
                        "InstanceId": inst.id,
                        "RegionId": inst.region,
                        "Remark": "",
                        "CreateTime": 1_600_000_000_000i64,
                        "AutomaticallyCreatedGroup": false,
                        "Tags": { "TagVO": self.list(Vec::new()) },
                    })
                })
                .collect();
            if legacy {
                return Ok::<_, Done>(json!({ "ConsumerList": { "ConsumerVO": self.list(vos) } }));
            }
            Ok::<_, Done>(json!({
                "Total": names.len(),
                "CurrentPage": page,
                "PageSize": size,
                "ConsumerList": { "ConsumerVO": self.list(vos) },
            }))
        })?;
        Ok(self.ok(body))
    }

    /// A positive integer parameter, or `default` when absent.
    fn positive(&self, name: &str, default: usize) -> Result<usize, Done> {
        match self.param(name) {
            None | Some("") => Ok(default),
            Some(v) => v.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                self.gateway(
                    400,
                    "InvalidParameter",
                    &format!("The {name} parameter is invalid."),
                )
            }),
        }
    }

    fn get_instance_list(&self) -> Result<Done, Done> {
        let region = self.required("RegionId")?;
        let wanted: Vec<&str> = self
            .params
            .iter()
            .filter(|(k, _)| k.starts_with("InstanceId."))
            .map(|(_, v)| v.as_str())
            .collect();
        let vos: Vec<Value> = self.state.world(|w| {
            w.instances_in(Cloud::Alibaba, region)
                .into_iter()
                .filter(|i| wanted.is_empty() || wanted.contains(&i.id.as_str()))
                .map(|i| {
                    let partitions: usize = i.topics.values().map(|t| t.partitions.len()).sum();
                    let mut vo = json!({
                        "InstanceId": i.id,
                        "Name": i.name,
                        "RegionId": i.region,
                        "ZoneId": format!("{}-a", i.region),
                        "ServiceStatus": service_status(i.status),
                        "ViewInstanceStatusCode": view_status(i.status),
                        "Series": "v2",
                        "SpecType": "normal",
                        "PaidType": 1,
                        "DeployType": 5,
                        "DomainEndpoint": format!("{}-1-vpc.alikafka.aliyuncs.com:9092", i.id.replace('_', "-")),
                        "CreateTime": 1_600_000_000_000i64,
                        "UsedGroupCount": i.groups.len(),
                        "UsedTopicCount": i.topics.len(),
                        "UsedPartitionCount": partitions,
                        "Tags": { "TagVO": self.list(Vec::new()) },
                    });
                    // `MsgRetain` (hours) is left out where the world does not know it, as
                    // answers of some editions do.
                    if let (Some(h), Some(vo)) = (i.retention_hours, vo.as_object_mut()) {
                        vo.insert("MsgRetain".into(), json!(h));
                    }
                    vo
                })
                .collect()
        });
        Ok(self.ok(json!({ "InstanceList": { "InstanceVO": self.list(vos) } })))
    }

    fn update_consumer_offset(&self) -> Result<Done, Done> {
        let region = self.required("RegionId")?;
        let instance_id = self.required("InstanceId")?;
        let group = self.required("ConsumerId")?;
        // Topic is required but may be empty: empty means every subscribed topic.
        let Some(topic) = self.param("Topic") else {
            return Err(self.missing("Topic"));
        };
        let reset_type = self.param("ResetType").unwrap_or("timestamp");
        let to = if reset_type.eq_ignore_ascii_case("timestamp") {
            let time = self.required("Time")?;
            match time.trim().parse::<i64>() {
                Ok(-2) => ResetTo::Earliest,
                Ok(t) if t < 0 => ResetTo::Latest,
                Ok(t) => ResetTo::Timestamp(t),
                Err(_) => {
                    return Err(self.gateway(
                        400,
                        "InvalidParameter",
                        "The Time parameter is invalid.",
                    ));
                }
            }
        } else if reset_type.eq_ignore_ascii_case("offset") {
            if topic.is_empty() {
                return Err(self.business(
                    "Offsets can be reset for a single topic only: Topic must not be empty.",
                ));
            }
            let offsets = self.required("Offsets")?;
            match parse_offsets(offsets) {
                Some(list) => ResetTo::Offsets(list),
                None => {
                    return Err(self.gateway(
                        400,
                        "InvalidParameter",
                        "The Offsets parameter is invalid.",
                    ));
                }
            }
        } else {
            return Err(self.gateway(
                400,
                "InvalidParameter",
                "The ResetType parameter is invalid.",
            ));
        };
        let topics: Vec<String> = if topic.is_empty() {
            Vec::new()
        } else {
            vec![topic.to_string()]
        };
        let now = self.state.now_ms();
        self.state.world(|w| {
            self.instance(w, region, instance_id)?;
            w.reset(Cloud::Alibaba, instance_id, group, &topics, &[], &to, now)
                .map_err(|e| self.world_error(&e))
        })?;
        Ok(self.ok(json!({})))
    }

    fn world_error(&self, e: &WorldError) -> Done {
        match e {
            WorldError::InstanceNotFound => self.gateway(
                400,
                "BIZ_INSTANCE_NOT_FOUND",
                "The instance does not exist. Please check and try again later.",
            ),
            WorldError::GroupNotFound => self.gateway(
                400,
                "BIZ_SUBSCRIPTION_NOT_FOUND",
                "The consumer group does not exist. Please check and try again later.",
            ),
            WorldError::GroupActive => {
                self.business("Group is active and cannot perform this operation.")
            }
            WorldError::TopicNotFound(t) => self.business(&format!(
                "The topic {t} does not exist. Please check and try again later."
            )),
            WorldError::PartitionNotFound(t, p) => self.business(&format!(
                "Partition {p} of topic {t} does not exist. Please check and try again later."
            )),
            WorldError::OffsetOutOfRange {
                partition,
                offset,
                earliest,
                log_end,
            } => self.business(&format!(
                "Offset {offset} of partition {partition} is out of range [{earliest}, {log_end}]."
            )),
        }
    }

    /// A list in the configured form: with quirks, one element is a bare object and none
    /// is `""`.
    fn list(&self, mut items: Vec<Value>) -> Value {
        if !self.state.settings.alibaba_quirks {
            return Value::Array(items);
        }
        match items.len() {
            0 => Value::String(String::new()),
            1 => items.pop().expect("one item"),
            _ => Value::Array(items),
        }
    }

    fn code(&self, code: i64) -> Value {
        if self.state.settings.alibaba_quirks {
            Value::String(code.to_string())
        } else {
            json!(code)
        }
    }

    fn ok(&self, body: Value) -> Done {
        let mut map = match body {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        map.insert("RequestId".into(), json!(self.request_id));
        map.insert("Code".into(), self.code(200));
        map.insert("Message".into(), json!("operation success."));
        map.insert("Success".into(), json!(true));
        (SimResponse::json(200, &Value::Object(map)), "ok".into())
    }

    /// A gateway-level error: non-2xx status, string `Code`.
    pub(crate) fn gateway(&self, status: u16, code: &str, message: &str) -> Done {
        let host = self.req.header("host").unwrap_or("alikafka.aliyuncs.com");
        let body = json!({
            "RequestId": self.request_id,
            "HostId": host,
            "Code": code,
            "Message": message,
            "Recommend": format!(
                "https://api.aliyun.com/troubleshoot?q={code}&product={}&requestId={}",
                self.api.product, self.request_id
            ),
        });
        (SimResponse::json(status, &body), code.to_string())
    }

    /// A business failure: HTTP 200, `Success: false`, numeric `Code`.
    fn business(&self, message: &str) -> Done {
        self.business_with(BUSINESS_ERROR_CODE, message)
    }

    fn business_with(&self, code: i64, message: &str) -> Done {
        let body = json!({
            "RequestId": self.request_id,
            "Code": self.code(code),
            "Message": message,
            "Success": false,
        });
        (SimResponse::json(200, &body), code.to_string())
    }

    fn throttled(&self, wait: Duration) -> Done {
        let (response, outcome) = self.gateway(
            400,
            "Throttling.User",
            "Request was denied due to user flow control.",
        );
        let ms = wait.as_millis().max(1).to_string();
        (response.header("x-acs-retry-after", &ms), outcome)
    }

    /// An injected `Fault::ApiError`: the code with the status and message it has in
    /// Alibaba's tables; a numeric code is a business failure.
    fn injected_error(&self, code: &str) -> Done {
        if let Ok(n) = code.parse::<i64>() {
            return self.business_with(n, "The request failed (injected by the simulator).");
        }
        if code.starts_with("Throttling") || code == "ONS_SYSTEM_FLOW_CONTROL" {
            let (response, outcome) =
                self.gateway(400, code, "Request was denied due to user flow control.");
            return (
                response.header("x-acs-retry-after", &FAULT_RETRY_AFTER_MS.to_string()),
                outcome,
            );
        }
        let (status, message) = match code {
            "InternalError" => (
                500,
                "The request processing has failed due to some unknown error, exception or failure.",
            ),
            "ServiceUnavailable" => (
                503,
                "The request has failed due to a temporary failure of the server.",
            ),
            "InvalidAccessKeyId.NotFound" => (404, "Specified access key is not found."),
            c if c.starts_with("Forbidden") => (
                403,
                "User not authorized to operate on the specified resource.",
            ),
            _ => (
                400,
                "The request failed (injected by the simulator). Please check and try again later.",
            ),
        };
        self.gateway(status, code, message)
    }

    /// Valid JSON with the wrong types in every field a client reads.
    fn wrong_shape(&self) -> Value {
        json!({
            "RequestId": self.request_id,
            "Code": 200,
            "Message": ["operation success."],
            "Success": "true",
            "ConsumerProgress": "unavailable",
            "Total": "many",
            "ConsumerList": 42,
            "InstanceList": true,
        })
    }
}

/// `ViewInstanceStatusCode` of a status (GetInstanceList model: 0 pending, 1 deploying,
/// 2 running, 3 stopped, 4 expiring, 5 expired, 6 released, 7 upgrading, 8 migrating,
/// 21 stopping, 22 starting, 23 releasing, 30 auto scaling, 101 deploy failed).
fn view_status(status: InstanceStatus) -> i64 {
    match status {
        InstanceStatus::Running => 2,
        InstanceStatus::Upgrading => 7,
        InstanceStatus::Migrating => 8,
        InstanceStatus::Scaling => 30,
        InstanceStatus::Expiring => 4,
        InstanceStatus::Creating => 1,
        InstanceStatus::CreateFailed => 101,
        InstanceStatus::Stopped => 3,
        InstanceStatus::Expired => 5,
        InstanceStatus::Released => 6,
        InstanceStatus::Deleting => 23,
    }
}

/// The legacy `ServiceStatus` of a status (0 pending, 1 preparing hardware, 2 initializing,
/// 3 starting, 5 running, 6 migrating, 7 ready for upgrade, 8 upgrading, 10 released,
/// 15 expired, 30 scaling).
fn service_status(status: InstanceStatus) -> i64 {
    match status {
        InstanceStatus::Running | InstanceStatus::Expiring => 5,
        InstanceStatus::Upgrading => 8,
        InstanceStatus::Migrating => 6,
        InstanceStatus::Scaling => 30,
        InstanceStatus::Creating | InstanceStatus::CreateFailed => 2,
        InstanceStatus::Stopped => 0,
        InstanceStatus::Expired => 15,
        InstanceStatus::Released | InstanceStatus::Deleting => 10,
    }
}

/// A bare status from a load balancer: HTML, not JSON.
fn bare_status(status: u16) -> SimResponse {
    let reason = hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    SimResponse {
        status,
        headers: vec![("content-type".into(), "text/html".into())],
        body: format!("<html><body><h1>{status} {reason}</h1></body></html>").into_bytes(),
        delay: None,
        hang: false,
    }
}

/// The `Offsets` JSON string: `[{"Partition":0,"Offset":1},...]`; the docs' sample uses
/// lower-case keys, which the service accepts too.
fn parse_offsets(text: &str) -> Option<Vec<(i32, i64)>> {
    let Value::Array(items) = serde_json::from_str::<Value>(text).ok()? else {
        return None;
    };
    items
        .iter()
        .map(|item| {
            let field =
                |upper: &str, lower: &str| item.get(upper).or_else(|| item.get(lower))?.as_i64();
            let partition = i32::try_from(field("Partition", "partition")?).ok()?;
            Some((partition, field("Offset", "offset")?))
        })
        .collect::<Option<Vec<_>>>()
        .filter(|list| !list.is_empty())
}

/// The simulated consumer owning partitions as member `n` of `group`: client id, IP and a
/// member id that stays the same across calls.
fn member(group: &str, n: u32) -> (String, String, String) {
    let client_id = format!("consumer-{group}-{}", n + 1);
    let seed = group.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }) ^ u64::from(n);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes);
    let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
    let member_id = format!("{client_id}-{}", uuid.hyphenated());
    let ip = format!("10.0.{}.{}", n / 200, n % 200 + 10);
    (client_id, ip, member_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimSettings;
    use crate::world::{World, WorldSpec, group_name, instance_id};

    const NOW_SECS: u64 = 1_700_000_000;

    fn state(settings: SimSettings) -> SimState {
        let world = World::generate(&WorldSpec::default(), NOW_SECS as i64 * 1000);
        SimState::new(
            settings,
            world,
            kcle_clock::Clock::virtual_at_unix(NOW_SECS),
        )
    }

    fn key() -> SimKey {
        SimSettings::default().alibaba_keys[0].clone()
    }

    /// A V2-signed POST with these operation parameters (plus overrides of common ones).
    fn v2(
        action: &str,
        op: &[(&str, &str)],
        nonce: &str,
        tweak: &[(&str, Option<&str>)],
    ) -> RawRequest {
        let k = key();
        let ts = sign::timestamp(NOW_SECS as i64).unwrap();
        let mut params: Vec<(String, String)> = [
            ("Action", action),
            ("Version", API_VERSION),
            ("Format", "JSON"),
            ("AccessKeyId", k.id.as_str()),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", nonce),
            ("Timestamp", ts.as_str()),
        ]
        .iter()
        .chain(op.iter())
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        for (name, value) in tweak {
            params.retain(|(k, _)| k != name);
            if let Some(v) = value {
                params.push((name.to_string(), v.to_string()));
            }
        }
        let canonical = sign::canonicalized_query(&params);
        let sig = sign::v2_signature(&k.secret, &sign::v2_string_to_sign("POST", &canonical));
        RawRequest {
            method: "POST".into(),
            path_and_query: format!("/?{canonical}&Signature={}", sign::percent_encode(&sig)),
            headers: vec![("host".into(), "127.0.0.1:1".into())],
            body: String::new(),
        }
    }

    fn body(r: &SimResponse) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    fn progress_params() -> Vec<(&'static str, String)> {
        vec![
            ("RegionId", "cn-hangzhou".into()),
            ("InstanceId", instance_id(Cloud::Alibaba, 1)),
            ("ConsumerId", group_name(1)),
        ]
    }

    fn refs<'a>(p: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
        p.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    #[test]
    fn a_signed_v2_request_is_answered_and_logged_without_signing_params() {
        let s = state(SimSettings::default());
        let p = progress_params();
        let r = handle(&s, &v2("GetConsumerProgress", &refs(&p), "n1", &[]));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let b = body(&r);
        assert_eq!(b["Success"], json!(true));
        assert_eq!(b["ConsumerProgress"]["state"], json!("STABLE"));
        let log = s.requests();
        assert_eq!(log[0].outcome, "ok");
        assert_eq!(log[0].group.as_deref(), Some("group-0001"));
        assert_eq!(
            log[0].params.keys().collect::<Vec<_>>(),
            ["ConsumerId", "InstanceId", "RegionId"]
        );
        assert_eq!(log[0].raw, None);
    }

    #[test]
    fn missing_and_invalid_common_parameters() {
        let s = state(SimSettings::default());
        let p = progress_params();
        type Tweak<'a> = &'a [(&'a str, Option<&'a str>)];
        let cases: Vec<(Tweak, u16, &str)> = vec![
            (&[("Action", None)], 400, "MissingParameter"),
            (&[("Timestamp", None)], 400, "MissingParameter"),
            (
                &[("SignatureMethod", Some("HMAC-SHA256"))],
                400,
                "IncompleteSignature",
            ),
            (&[("Version", Some("2018-01-01"))], 400, "InvalidVersion"),
            (
                &[("Action", Some("DeleteInstance"))],
                404,
                "InvalidAction.NotFound",
            ),
            (
                &[("Timestamp", Some("2023-11-14 22:13:20"))],
                400,
                "InvalidTimeStamp.Format",
            ),
            (
                &[("Timestamp", Some("2023-11-14T21:50:00Z"))],
                400,
                "InvalidTimeStamp.Expired",
            ),
            (
                &[("AccessKeyId", Some("LTAInobody"))],
                404,
                "InvalidAccessKeyId.NotFound",
            ),
            (&[("Format", None)], 400, "InvalidParameter.Format"),
            (&[("Format", Some("XML"))], 400, "InvalidParameter.Format"),
        ];
        for (i, (tweak, status, code)) in cases.into_iter().enumerate() {
            let r = handle(
                &s,
                &v2("GetConsumerProgress", &refs(&p), &format!("m{i}"), tweak),
            );
            assert_eq!(r.status, status, "{tweak:?}");
            let b = body(&r);
            assert_eq!(b["Code"], json!(code), "{tweak:?}");
            assert!(b["RequestId"].as_str().unwrap().len() == 36);
            assert!(b["HostId"].is_string() && b["Recommend"].is_string());
        }
        let r = handle(
            &s,
            &v2(
                "GetConsumerProgress",
                &refs(&p),
                "fmt",
                &[("Format", Some("XML"))],
            ),
        );
        assert!(body(&r)["Message"].as_str().unwrap().contains("JSON only"));
    }

    #[test]
    fn reused_nonce_and_bad_signature_are_refused() {
        let s = state(SimSettings::default());
        let p = progress_params();
        let req = v2("GetConsumerProgress", &refs(&p), "same", &[]);
        assert_eq!(handle(&s, &req).status, 200);
        let again = handle(&s, &req);
        assert_eq!(body(&again)["Code"], json!("SignatureNonceUsed"));

        let mut tampered = v2("GetConsumerProgress", &refs(&p), "other", &[]);
        tampered.path_and_query = tampered.path_and_query.replace("group-0001", "group-0002");
        let r = handle(&s, &tampered);
        assert_eq!(r.status, 400);
        let msg = body(&r)["Message"].as_str().unwrap().to_string();
        assert!(msg.starts_with("Specified signature is not matched with our calculation. server string to sign is:POST&%2F&"), "{msg}");
        assert!(msg.contains("group-0002"));
    }

    #[test]
    fn get_requests_and_lowercase_offsets_are_accepted() {
        let s = state(SimSettings::default());
        let k = key();
        let ts = sign::timestamp(NOW_SECS as i64).unwrap();
        let inst = instance_id(Cloud::Alibaba, 1);
        let group = group_name(3);
        let (topic, target) = s.world(|w| {
            let rows = w
                .progress(Cloud::Alibaba, &inst, &group, NOW_SECS as i64 * 1000)
                .unwrap();
            (rows[0].0.clone(), rows[0].1[1].log_end - 1)
        });
        let offsets = format!(r#"[{{"partition":1,"offset":{target}}}]"#);
        let params: Vec<(String, String)> = [
            ("Action", "UpdateConsumerOffset"),
            ("Version", API_VERSION),
            ("Format", "json"),
            ("AccessKeyId", &k.id),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", "g1"),
            ("Timestamp", &ts),
            ("RegionId", "cn-hangzhou"),
            ("InstanceId", &inst),
            ("ConsumerId", &group),
            ("Topic", &topic),
            ("ResetType", "offset"),
            ("Offsets", &offsets),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let canonical = sign::canonicalized_query(&params);
        let sig = sign::v2_signature(&k.secret, &sign::v2_string_to_sign("GET", &canonical));
        let req = RawRequest {
            method: "GET".into(),
            path_and_query: format!("/?{canonical}&Signature={}", sign::percent_encode(&sig)),
            headers: vec![],
            body: String::new(),
        };
        let r = handle(&s, &req);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(body(&r)["Success"], json!(true));
        let after = s.world(|w| {
            w.progress(Cloud::Alibaba, &inst, &group, NOW_SECS as i64 * 1000)
                .unwrap()
        });
        assert_eq!(after[0].1[1].committed, Some(target));
    }

    fn v3(headers: &[(&str, &str)], signed: &[&str], body: &str) -> RawRequest {
        let k = key();
        let query =
            "ConsumerId=group-0001&InstanceId=alikafka_post-cn-sim0001&RegionId=cn-hangzhou";
        let mut hs: Vec<(String, String)> = headers
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let signed_list: Vec<(String, String)> = hs
            .iter()
            .filter(|(n, _)| signed.contains(&n.as_str()))
            .cloned()
            .collect();
        let (ch, names) = sign::v3_canonical_headers(&signed_list);
        let sha = hs
            .iter()
            .find(|(n, _)| n == "x-acs-content-sha256")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let cr = sign::v3_canonical_request("POST", "/", query, &ch, &names, &sha);
        let sig = sign::v3_signature(&k.secret, &sign::v3_string_to_sign(&cr));
        hs.push((
            "authorization".into(),
            sign::v3_authorization(&k.id, &names, &sig),
        ));
        RawRequest {
            method: "POST".into(),
            path_and_query: format!("/?{query}"),
            headers: hs,
            body: body.into(),
        }
    }

    fn v3_headers(nonce: &'static str) -> Vec<(&'static str, &'static str)> {
        vec![
            ("host", "127.0.0.1:1"),
            ("x-acs-action", "GetConsumerProgress"),
            ("x-acs-version", API_VERSION),
            ("x-acs-date", "2023-11-14T22:13:20Z"),
            ("x-acs-signature-nonce", nonce),
            ("x-acs-content-sha256", sign::EMPTY_SHA256),
        ]
    }

    const ALL_SIGNED: [&str; 6] = [
        "host",
        "x-acs-action",
        "x-acs-version",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
    ];

    #[test]
    fn v3_requests_must_sign_every_acs_header_and_hash_the_body() {
        let s = state(SimSettings::default());
        let ok = handle(&s, &v3(&v3_headers("a"), &ALL_SIGNED, ""));
        assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));

        let r = handle(&s, &v3(&v3_headers("b"), &ALL_SIGNED[..5], ""));
        assert_eq!(body(&r)["Code"], json!("IncompleteSignature"));
        assert!(
            body(&r)["Message"]
                .as_str()
                .unwrap()
                .contains("x-acs-content-sha256 is sent but not signed")
        );

        let r = handle(&s, &v3(&v3_headers("c"), &ALL_SIGNED, "x=1"));
        assert!(
            body(&r)["Message"]
                .as_str()
                .unwrap()
                .contains("does not match the body")
        );

        let mut xml = v3_headers("d");
        xml.push(("accept", "application/xml"));
        let r = handle(&s, &v3(&xml, &ALL_SIGNED, ""));
        assert_eq!(body(&r)["Code"], json!("InvalidParameter.Format"));
    }

    #[test]
    fn quirks_use_single_objects_empty_strings_and_string_codes() {
        let s = state(SimSettings {
            alibaba_quirks: true,
            ..SimSettings::default()
        });
        let r = handle(
            &s,
            &v2("GetInstanceList", &[("RegionId", "cn-hangzhou")], "q1", &[]),
        );
        let b = body(&r);
        assert_eq!(b["Code"], json!("200"));
        assert!(b["InstanceList"]["InstanceVO"].is_object(), "{b}");
        assert_eq!(b["InstanceList"]["InstanceVO"]["Tags"]["TagVO"], json!(""));
        let r = handle(
            &s,
            &v2(
                "GetInstanceList",
                &[("RegionId", "eu-central-1")],
                "q2",
                &[],
            ),
        );
        assert_eq!(body(&r)["InstanceList"]["InstanceVO"], json!(""));
    }

    #[test]
    fn instance_list_has_the_retention_in_hours_where_known() {
        let s = state(SimSettings::default());
        let id = instance_id(Cloud::Alibaba, 1);
        let list = |nonce: &str| {
            let params = [("RegionId", "cn-hangzhou"), ("InstanceId.1", id.as_str())];
            body(&handle(&s, &v2("GetInstanceList", &params, nonce, &[])))
        };
        let b = list("r1");
        assert_eq!(
            b["InstanceList"]["InstanceVO"][0]["MsgRetain"],
            json!(72),
            "{b}"
        );
        s.world(|w| w.instance_mut(Cloud::Alibaba, &id).unwrap().retention_hours = None);
        let b = list("r2");
        assert!(
            b["InstanceList"]["InstanceVO"][0]
                .get("MsgRetain")
                .is_none(),
            "{b}"
        );
    }

    #[test]
    fn page_sizes_above_the_limit_are_refused_not_capped() {
        let s = state(SimSettings {
            alibaba_max_page_size: 20,
            ..SimSettings::default()
        });
        let list = |size: &str| {
            let params: Vec<(&'static str, String)> = vec![
                ("RegionId", "cn-hangzhou".into()),
                ("InstanceId", instance_id(Cloud::Alibaba, 1)),
                ("PageSize", size.into()),
            ];
            let nonce = format!("nonce-page-{size}");
            handle(&s, &v2("GetConsumerList", &refs(&params), &nonce, &[]))
        };
        let r = list("21");
        assert_eq!(r.status, 400);
        assert_eq!(body(&r)["Code"], json!("InvalidParameter"));
        assert_eq!(list("20").status, 200);
    }

    #[test]
    fn offsets_json_parsing() {
        assert_eq!(
            parse_offsets(r#"[{"Partition":0,"Offset":100},{"partition":1,"offset":2}]"#),
            Some(vec![(0, 100), (1, 2)])
        );
        assert_eq!(parse_offsets("[]"), None);
        assert_eq!(parse_offsets(r#"[{"Partition":0}]"#), None);
        assert_eq!(parse_offsets(r#"{"Partition":0,"Offset":1}"#), None);
        assert_eq!(parse_offsets("nope"), None);
    }

    #[test]
    fn members_are_stable_and_distinct() {
        assert_eq!(member("g", 0), member("g", 0));
        assert_ne!(member("g", 0).2, member("g", 1).2);
        assert_ne!(member("g", 0).2, member("h", 0).2);
        assert!(member("g", 0).2.starts_with("consumer-g-1-"));
    }
}
