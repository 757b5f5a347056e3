//! The simulated Tencent Cloud CKafka API (2019-08-19), as strict as the real service.
//!
//! It owns the checks a request must pass (POST `/` with a JSON body, `X-TC-*` headers,
//! a timestamp within 5 minutes, a well-formed TC3 `Authorization` over the headers it
//! lists, a known SecretId and its session token), the per key and action rate limit,
//! fault injection, the six operations the exporter uses over the [`World`], and the
//! request log. Errors are HTTP 200 with `Response.Error`, as Tencent answers them.
//!
//! It shares only the pure signing functions with the client; answers are built as JSON
//! here, never from the client's wire types, so that a mistake in those cannot cancel
//! out. Where Tencent's behaviour is not documented, the choice is stated at the place
//! it is made.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::faults::Fault;
use super::world::{InstanceStatus, ResetTo, SimInstance, World, WorldError};
use super::{LoggedRequest, RawRequest, SimResponse, SimState};
use kcle_cloud::Cloud;
use kcle_cloud::tencent::sign;

/// The only API version served.
const VERSION: &str = "2019-08-19";
/// The signing service name every CKafka request must use.
const SERVICE: &str = "ckafka";
/// Largest accepted difference between `X-TC-Timestamp` and the server's time.
const MAX_SKEW_SECS: i64 = 300;

/// Actions served; any other is `InvalidAction`.
const ACTIONS: [&str; 8] = [
    "DescribeGroupOffsets",
    "DescribeGroup",
    "DescribeGroupInfo",
    "DescribeInstances",
    "ModifyGroupOffsets",
    "BatchModifyGroupOffsets",
    "FetchMessageListByOffset",
    "DescribeTopicAttributes",
];

/// The limit the simulator enforces for an action whose limit Tencent does not publish
/// (`BatchModifyGroupOffsets`), requests per second.
pub const UNPUBLISHED_RATE_LIMIT: f64 = 100.0;

/// The per-action limit the simulated CKafka enforces: the documented one, from the same
/// table the exporter's budgets start from.
pub fn rate_limit(action: &str) -> f64 {
    Cloud::Tencent
        .action(action)
        .and_then(|a| a.documented_limit)
        .unwrap_or(UNPUBLISHED_RATE_LIMIT)
}

/// An error answer: `Response.Error.{Code,Message}`.
#[derive(Debug, PartialEq)]
pub(crate) struct Failure {
    pub(crate) code: String,
    pub(crate) message: String,
}

pub(crate) fn fail(code: &str, message: impl Into<String>) -> Failure {
    Failure {
        code: code.to_string(),
        message: message.into(),
    }
}

pub(crate) fn missing(name: &str) -> Failure {
    fail(
        "MissingParameter",
        format!("The request is missing a required parameter `{name}`."),
    )
}

fn invalid_value(message: impl Into<String>) -> Failure {
    fail("InvalidParameterValue", message)
}

/// A successful operation: its `Result` and the log outcome (`ok`, or `ReturnCode:<n>`
/// for a write the backend refused).
struct Answer {
    result: Value,
    outcome: String,
}

impl Answer {
    fn ok(result: Value) -> Self {
        Answer {
            result,
            outcome: "ok".into(),
        }
    }
}

/// Answers one request and logs it.
pub fn handle(state: &SimState, req: &RawRequest) -> SimResponse {
    let request_id = uuid::Uuid::new_v4().to_string();
    let action = req.header("x-tc-action").unwrap_or_default().to_string();
    let body = match serde_json::from_str::<Value>(&req.body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    };
    let group = body.as_ref().and_then(|b| group_of(&action, b));
    let params = body.as_ref().map(params_of).unwrap_or_default();
    let (response, outcome) = respond(
        state,
        req,
        &action,
        body.as_ref(),
        group.as_deref(),
        &request_id,
    );
    state.record(LoggedRequest {
        cloud: Cloud::Tencent,
        action,
        group,
        params,
        outcome,
        at_ms: state.now_ms(),
        raw: state.settings.record_raw.then(|| req.clone()),
    });
    response
}

/// A JSON answer with the content type Tencent sends: exactly `application/json`. The
/// official Python SDK looks for `Response.Error` only under that content type (or
/// `text/plain`), so a `;charset=utf-8` suffix would make it take errors for successes.
pub(crate) fn json_response(value: &Value) -> SimResponse {
    let mut response = SimResponse::json(200, value);
    response
        .headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
    response.header("content-type", "application/json")
}

pub(crate) fn error_response(failure: &Failure, request_id: &str) -> SimResponse {
    json_response(&json!({"Response": {
        "Error": {"Code": failure.code, "Message": failure.message},
        "RequestId": request_id,
    }}))
}

pub(crate) fn throttled(rate: f64) -> Failure {
    fail(
        "RequestLimitExceeded",
        format!(
            "Your current request times exceeds the frequency limit `{rate}` for a second. Please reduce the frequency of calls."
        ),
    )
}

/// Checks, throttles, injects faults, runs the operation; returns the answer and outcome.
fn respond(
    state: &SimState,
    req: &RawRequest,
    action: &str,
    body: Option<&Map<String, Value>>,
    group: Option<&str>,
    request_id: &str,
) -> (SimResponse, String) {
    let rejected = |f: Failure| {
        let response = error_response(&f, request_id);
        (response, f.code)
    };
    // API 3.0 is served at "/" only; other paths reach no API.
    if req.path() != "/" {
        let response = SimResponse {
            status: 404,
            headers: vec![("content-type".into(), "text/html".into())],
            body: b"<html><body><h1>404 Not Found</h1></body></html>".to_vec(),
            delay: None,
            hang: false,
        };
        return (response, "http_404".into());
    }
    let key_id = match authenticate(state, req, action) {
        Ok(key_id) => key_id,
        Err(f) => return rejected(f),
    };
    let rate = state.rate_limit(Cloud::Tencent, action);
    if state
        .take_token(Cloud::Tencent, &key_id, action, rate)
        .is_err()
    {
        return rejected(throttled(rate));
    }
    let fault = state.fault(Cloud::Tencent, action, group);
    if let Some(f) = &fault {
        let outcome = format!("fault:{}", f.name());
        let injected = match f {
            Fault::ServerError => Some(fail(
                "InternalError",
                "An internal error has occurred. Retry your request.",
            )),
            Fault::Throttle => Some(throttled(rate)),
            Fault::ApiError(code) => Some(fail(code, "Injected error.")),
            _ => None,
        };
        if let Some(failure) = injected {
            return (error_response(&failure, request_id), outcome);
        }
        match f {
            Fault::HttpStatus(status) => {
                let text = format!("<html><body><h1>{status} gateway error</h1></body></html>");
                let response = SimResponse {
                    status: *status,
                    headers: vec![("content-type".into(), "text/html".into())],
                    body: text.into_bytes(),
                    delay: None,
                    hang: false,
                };
                return (response, outcome);
            }
            Fault::WrongShape => {
                // Valid JSON whose Result has the wrong type for every operation.
                let value = json!({"Response": {
                    "Result": {"TotalCount": "many", "TopicList": {"Topic": 1}, "GroupList": 7,
                               "InstanceList": 7, "ReturnCode": []},
                    "RequestId": request_id,
                }});
                return (json_response(&value), outcome);
            }
            _ => {}
        }
    }
    let region = req.header("x-tc-region").unwrap_or_default();
    let (response, outcome) = match operate(state, action, body, region) {
        Ok(answer) => (
            json_response(&json!({"Response": {"Result": answer.result, "RequestId": request_id}})),
            answer.outcome,
        ),
        Err(f) => rejected(f),
    };
    // Delays, hangs and truncation apply to the real answer: the operation still ran.
    match fault {
        Some(f) => (response.with_fault(&f), format!("fault:{}", f.name())),
        None => (response, outcome),
    }
}

/// The parsed `Authorization` header.
#[derive(Debug, PartialEq)]
struct Authorization<'a> {
    secret_id: &'a str,
    date: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

/// Parses `TC3-HMAC-SHA256 Credential=<id>/<date>/<service>/tc3_request,
/// SignedHeaders=<a;b>, Signature=<64 hex>` exactly (comma + space separators).
fn parse_authorization(value: &str) -> Result<Authorization<'_>, String> {
    let rest = value
        .strip_prefix(sign::ALGORITHM)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or_else(|| format!("the algorithm must be {}", sign::ALGORITHM))?;
    let parts: Vec<&str> = rest.split(", ").collect();
    let [credential, signed, signature] = parts[..] else {
        return Err("expected Credential, SignedHeaders and Signature separated by \", \"".into());
    };
    let credential = credential
        .strip_prefix("Credential=")
        .ok_or("Credential= is missing")?;
    let signed = signed
        .strip_prefix("SignedHeaders=")
        .ok_or("SignedHeaders= is missing")?;
    let signature = signature
        .strip_prefix("Signature=")
        .ok_or("Signature= is missing")?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [secret_id, date, service, terminator] = scope[..] else {
        return Err("Credential must be <SecretId>/<date>/<service>/tc3_request".into());
    };
    if secret_id.is_empty() || terminator != sign::TERMINATOR {
        return Err("Credential must be <SecretId>/<date>/<service>/tc3_request".into());
    }
    if signature.len() != 64
        || !signature
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err("Signature must be 64 lowercase hex digits".into());
    }
    let signed_headers: Vec<&str> = signed.split(';').collect();
    let well_formed = signed_headers.iter().all(|h| {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    if !well_formed || !signed_headers.windows(2).all(|w| w[0] < w[1]) {
        return Err("SignedHeaders must be lower-case names, sorted, separated by ';'".into());
    }
    if !signed_headers.contains(&"content-type") || !signed_headers.contains(&"host") {
        return Err("SignedHeaders must include content-type and host".into());
    }
    Ok(Authorization {
        secret_id,
        date,
        service,
        signed_headers,
        signature,
    })
}

/// Every check before the operation; returns the SecretId the request is signed with.
fn authenticate(state: &SimState, req: &RawRequest, action: &str) -> Result<String, Failure> {
    let timestamp = check_envelope(state, req, action, "ckafka", VERSION, &ACTIONS)?;
    verify_signature(state, req, timestamp, SERVICE).map(|key| key.id)
}

/// The checks every API 3.0 request passes before its signature: `POST /` with a JSON
/// body, a known action of `product` at `version`, a region, and a timestamp within five
/// minutes. Returns the timestamp.
pub(crate) fn check_envelope(
    state: &SimState,
    req: &RawRequest,
    action: &str,
    product: &str,
    version: &str,
    actions: &[&str],
) -> Result<i64, Failure> {
    if req.method != "POST" || req.path_and_query != "/" {
        return Err(fail(
            "UnsupportedProtocol",
            "The simulator accepts only POST / with a JSON body.",
        ));
    }
    let content_type = req
        .header("content-type")
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if content_type != "application/json" && !content_type.starts_with("application/json;") {
        return Err(fail(
            "InvalidParameter",
            format!("Content-Type `{content_type}` is not supported; send application/json."),
        ));
    }
    if action.is_empty() {
        return Err(missing("Action"));
    }
    if !actions.contains(&action) {
        return Err(fail(
            "InvalidAction",
            format!("The action `{action}` is not supported by {product} {version}."),
        ));
    }
    match req.header("x-tc-version") {
        None | Some("") => return Err(missing("Version")),
        Some(v) if v == version => {}
        Some(v) => {
            return Err(fail(
                "NoSuchVersion",
                format!("The API version `{v}` does not exist."),
            ));
        }
    }
    if req.header("x-tc-region").unwrap_or_default().is_empty() {
        return Err(missing("Region"));
    }
    let timestamp = match req.header("x-tc-timestamp") {
        None | Some("") => return Err(missing("Timestamp")),
        Some(t) => t.parse::<i64>().map_err(|_| {
            fail(
                "InvalidParameter",
                format!("X-TC-Timestamp `{t}` is not Unix seconds."),
            )
        })?,
    };
    check_timestamp(state, timestamp)?;
    Ok(timestamp)
}

/// `X-TC-Timestamp` within five minutes of the service's time.
fn check_timestamp(state: &SimState, timestamp: i64) -> Result<(), Failure> {
    let now = state.now_ms().div_euclid(1000);
    if (timestamp - now).abs() > MAX_SKEW_SECS {
        return Err(fail(
            "AuthFailure.SignatureExpire",
            format!(
                "Signature expired. Timestamp {timestamp} differs from the server time {now} by more than five minutes."
            ),
        ));
    }
    Ok(())
}

/// Checks a request's TC3 `Authorization` for `service`: well formed, dated on the
/// timestamp's UTC date, a known SecretId with its session token (not expired), and a
/// signature over the listed headers and the body that verifies. Returns the key.
pub(crate) fn verify_signature(
    state: &SimState,
    req: &RawRequest,
    timestamp: i64,
    service: &str,
) -> Result<super::SimKey, Failure> {
    let invalid_auth = |why: String| {
        fail(
            "AuthFailure.InvalidAuthorization",
            format!("Authorization header is invalid: {why}."),
        )
    };
    let auth = parse_authorization(req.header("authorization").unwrap_or_default())
        .map_err(invalid_auth)?;
    let date = sign::scope_date(timestamp).map_err(|e| invalid_auth(e.to_string()))?;
    if auth.date != date {
        return Err(invalid_auth(format!(
            "the credential date {} is not {date}, the UTC date of X-TC-Timestamp",
            auth.date
        )));
    }
    if auth.service != service {
        return Err(invalid_auth(format!(
            "the credential service {} is not {service}",
            auth.service
        )));
    }
    let Some(key) = state.key(Cloud::Tencent, auth.secret_id) else {
        return Err(fail(
            "AuthFailure.SecretIdNotFound",
            "The SecretId is not found, please ensure that your SecretId is correct.",
        ));
    };
    let sent_token = req.header("x-tc-token").filter(|t| !t.is_empty());
    if key.token.as_deref() != sent_token {
        return Err(fail(
            "AuthFailure.TokenFailure",
            "The token is missing, invalid, or does not belong to this SecretId.",
        ));
    }
    if state.key_expired(Cloud::Tencent, auth.secret_id) {
        return Err(fail(
            "AuthFailure.TokenFailure",
            "The temporary credentials have expired.",
        ));
    }
    let mut headers = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        let value = req
            .header(name)
            .ok_or_else(|| invalid_auth(format!("signed header {name} is not in the request")))?;
        headers.push((*name, value));
    }
    // The SDK's "unsigned payload" option signs this literal instead of the body.
    let payload = if req.header("x-tc-content-sha256") == Some("UNSIGNED-PAYLOAD") {
        b"UNSIGNED-PAYLOAD".as_slice()
    } else {
        req.body.as_bytes()
    };
    let expected = sign::sign(
        &sign::Request {
            method: &req.method,
            headers: &headers,
            payload,
            timestamp,
            service,
        },
        &key.id,
        &key.secret,
    )
    .map_err(|e| invalid_auth(e.to_string()))?;
    if expected.signature != auth.signature {
        return Err(fail(
            "AuthFailure.SignatureFailure",
            "The provided credentials could not be validated. Please check your signature is correct.",
        ));
    }
    Ok(key)
}

/// The consumer group a request is about, for fault rules and the log.
fn group_of(action: &str, body: &Map<String, Value>) -> Option<String> {
    let value = match action {
        "DescribeGroupOffsets" | "ModifyGroupOffsets" => body.get("Group"),
        "BatchModifyGroupOffsets" => body.get("GroupName"),
        "DescribeGroupInfo" => body.get("GroupList").and_then(|l| l.get(0)),
        _ => None,
    };
    value.and_then(Value::as_str).map(str::to_string)
}

/// The body's top-level fields as text: strings as they are, everything else as compact
/// JSON.
fn params_of(body: &Map<String, Value>) -> BTreeMap<String, String> {
    body.iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect()
}

/// Typed access to the request body, with Tencent's parameter error codes.
struct Params<'a>(&'a Map<String, Value>);

impl<'a> Params<'a> {
    /// Rejects parameters this action does not take (or the simulator does not model).
    fn only(&self, known: &[&str]) -> Result<(), Failure> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(fail(
                "UnknownParameter",
                format!("The parameter `{k}` is not recognized."),
            )),
            None => Ok(()),
        }
    }

    fn wrong_type(name: &str, what: &str) -> Failure {
        fail(
            "InvalidParameter",
            format!("The parameter `{name}` must be {what}."),
        )
    }

    fn string(&self, name: &str) -> Result<Option<&'a str>, Failure> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Self::wrong_type(name, "a string")),
        }
    }

    fn required_string(&self, name: &str) -> Result<&'a str, Failure> {
        self.string(name)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| missing(name))
    }

    fn int(&self, name: &str) -> Result<Option<i64>, Failure> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| Self::wrong_type(name, "an integer")),
        }
    }

    fn required_int(&self, name: &str) -> Result<i64, Failure> {
        self.int(name)?.ok_or_else(|| missing(name))
    }

    fn array(&self, name: &str) -> Result<Option<&'a Vec<Value>>, Failure> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(_) => Err(Self::wrong_type(name, "an array")),
        }
    }

    fn strings(&self, name: &str) -> Result<Option<Vec<String>>, Failure> {
        let Some(items) = self.array(name)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| Self::wrong_type(name, "an array of strings"))
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    fn partitions(&self, name: &str) -> Result<Option<Vec<i32>>, Failure> {
        let Some(items) = self.array(name)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|v| {
                v.as_i64()
                    .and_then(|n| i32::try_from(n).ok())
                    .ok_or_else(|| Self::wrong_type(name, "an array of partition numbers"))
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// `Offset` and `Limit` of a listing, with its default and maximum `Limit`.
    fn page(&self, default_limit: i64, max_limit: i64) -> Result<(usize, usize), Failure> {
        let offset = self.int("Offset")?.unwrap_or(0);
        let limit = self.int("Limit")?.unwrap_or(default_limit);
        if offset < 0 {
            return Err(invalid_value(
                "The parameter `Offset` must not be negative.",
            ));
        }
        if !(1..=max_limit).contains(&limit) {
            return Err(invalid_value(format!(
                "The parameter `Limit` must be between 1 and {max_limit}."
            )));
        }
        Ok((offset as usize, limit as usize))
    }
}

fn instance_not_exist(id: &str) -> Failure {
    fail(
        "InvalidParameterValue.InstanceNotExist",
        format!("The instance `{id}` does not exist."),
    )
}

/// The instance, if it exists in the request's region (a regional service knows no
/// other region's instances).
fn instance<'w>(world: &'w World, id: &str, region: &str) -> Result<&'w SimInstance, Failure> {
    world
        .instance(Cloud::Tencent, id)
        .ok()
        .filter(|i| i.region == region)
        .ok_or_else(|| instance_not_exist(id))
}

/// Tencent documents no error code for an unknown consumer group (the per-API lists of
/// the operations here name none); `ResourceNotFound` is CKafka's only not-found code
/// and the client maps it to NotFound.
fn group_not_found(group: &str) -> Failure {
    fail(
        "ResourceNotFound",
        format!("The consumer group `{group}` does not exist."),
    )
}

fn operate(
    state: &SimState,
    action: &str,
    body: Option<&Map<String, Value>>,
    region: &str,
) -> Result<Answer, Failure> {
    let body = body.ok_or_else(|| fail("InvalidParameter", "The body must be a JSON object."))?;
    let p = Params(body);
    let now = state.now_ms();
    match action {
        "DescribeGroupOffsets" => describe_group_offsets(state, &p, region, now),
        "DescribeGroup" => describe_group(state, &p, region),
        "DescribeGroupInfo" => describe_group_info(state, &p, region),
        "DescribeInstances" => describe_instances(state, &p, region),
        "ModifyGroupOffsets" => modify_group_offsets(state, &p, region, now),
        "BatchModifyGroupOffsets" => batch_modify_group_offsets(state, &p, region, now),
        "FetchMessageListByOffset" => fetch_message_list_by_offset(state, &p, region, now),
        "DescribeTopicAttributes" => describe_topic_attributes(state, &p, region),
        _ => Err(fail(
            "InvalidAction",
            format!("The action `{action}` is not supported."),
        )),
    }
}

/// Message metadata from `Offset` on, at most `SinglePartitionRecordNumber` (default and
/// maximum 20) records: position and produce time, never key or value. An offset no longer
/// retained, or not produced yet, answers an empty list.
fn fetch_message_list_by_offset(
    state: &SimState,
    p: &Params<'_>,
    region: &str,
    now: i64,
) -> Result<Answer, Failure> {
    p.only(&[
        "InstanceId",
        "Topic",
        "Partition",
        "Offset",
        "SinglePartitionRecordNumber",
    ])?;
    let id = p.required_string("InstanceId")?;
    let topic = p.required_string("Topic")?;
    let partition = p.required_int("Partition")?;
    let offset = p.required_int("Offset")?;
    let n = p.int("SinglePartitionRecordNumber")?.unwrap_or(20);
    if !(1..=20).contains(&n) {
        return Err(fail(
            "InvalidParameterValue",
            "SinglePartitionRecordNumber must be between 1 and 20.",
        ));
    }
    state.world(|w| {
        let inst = instance(w, id, region)?;
        let t = inst.topics.get(topic).ok_or_else(|| {
            fail(
                "ResourceNotFound",
                format!("The topic `{topic}` does not exist."),
            )
        })?;
        let sp = usize::try_from(partition)
            .ok()
            .and_then(|i| t.partitions.get(i))
            .ok_or_else(|| fail("InvalidParameterValue", "The partition does not exist."))?;
        let end = sp.log_end(now);
        let records: Vec<Value> = if offset < sp.earliest || offset >= end {
            Vec::new()
        } else {
            (offset..end.min(offset + n))
                .map(|o| {
                    json!({"Topic": topic, "Partition": partition, "Offset": o,
                           "Timestamp": sp.produce_time_ms(o)})
                })
                .collect()
        };
        Ok(Answer::ok(Value::Array(records)))
    })
}

/// One topic's attributes (`TopicAttributesResponse`), with the documented example's
/// shape: `Config.Retention` in milliseconds (the topic's own, else the instance's
/// default) and the fields the simulator does not model as `null`. An unknown topic is
/// `ResourceNotFound` (CKafka documents no topic-specific code here).
fn describe_topic_attributes(
    state: &SimState,
    p: &Params<'_>,
    region: &str,
) -> Result<Answer, Failure> {
    p.only(&["InstanceId", "TopicName"])?;
    let id = p.required_string("InstanceId")?;
    let name = p.required_string("TopicName")?;
    state.world(|w| {
        let inst = instance(w, id, region)?;
        let topic = inst.topics.get(name).ok_or_else(|| {
            fail(
                "ResourceNotFound",
                format!("The topic `{name}` does not exist."),
            )
        })?;
        let partitions: Vec<Value> = (0..topic.partitions.len())
            .map(|i| json!({"Partition": i, "LeaderStatus": 0, "IsrNum": 2, "ReplicaNum": 2}))
            .collect();
        Ok(Answer::ok(json!({
            "TopicId": format!("topic-{}", name.len()),
            "CreateTime": 1_600_000_000i64,
            "Note": "",
            "PartitionNum": topic.partitions.len(),
            "EnableWhiteList": 0,
            "IpWhiteList": [],
            "Config": {
                "Retention": inst.retention_ms(topic),
                "MinInsyncReplicas": 1,
                "CleanUpPolicy": "delete",
                "SegmentMs": null,
                "UncleanLeaderElectionEnable": 1,
                "SegmentBytes": null,
                "MaxMessageBytes": 8_388_608,
                "RetentionBytes": null,
                "LogMsgTimestampType": null,
            },
            "Partitions": partitions,
            "EnableAclRule": 0,
            "AclRuleList": [],
            "QuotaConfig": null,
            "ReplicaNum": 2,
        })))
    })
}

/// Pages over the group's topics (`TotalCount` counts topics); every topic carries all of
/// its partitions. A partition without a commit reports `Offset` -1 (Kafka's convention;
/// Tencent does not document it) and `Lag` up to the log end.
fn describe_group_offsets(
    state: &SimState,
    p: &Params<'_>,
    region: &str,
    now: i64,
) -> Result<Answer, Failure> {
    p.only(&[
        "InstanceId",
        "Group",
        "Topics",
        "SearchWord",
        "Offset",
        "Limit",
    ])?;
    let id = p.required_string("InstanceId")?;
    let group = p.required_string("Group")?;
    let topics = p.strings("Topics")?;
    let search = p.string("SearchWord")?.unwrap_or_default();
    let (offset, limit) = p.page(50, 50)?;
    state.world(|w| {
        instance(w, id, region)?;
        let progress = w
            .progress(Cloud::Tencent, id, group, now)
            .map_err(|e| match e {
                WorldError::GroupNotFound => group_not_found(group),
                _ => instance_not_exist(id),
            })?;
        let matching: Vec<_> = progress
            .into_iter()
            .filter(|(t, _)| topics.as_ref().is_none_or(|list| list.contains(t)))
            .filter(|(t, _)| t.contains(search))
            .collect();
        let total = matching.len();
        let list: Vec<Value> = matching
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|(topic, rows)| {
                let partitions: Vec<Value> = rows
                    .iter()
                    .map(|r| {
                        json!({
                            "Partition": r.partition,
                            "Offset": r.committed.unwrap_or(-1),
                            "Metadata": "",
                            "ErrorCode": 0,
                            "LogEndOffset": r.log_end,
                            "Lag": (r.log_end - r.committed.unwrap_or(0)).max(0),
                        })
                    })
                    .collect();
                json!({"Topic": topic, "Partitions": partitions})
            })
            .collect();
        Ok(Answer::ok(json!({"TotalCount": total, "TopicList": list})))
    })
}

/// Pages over group names. `Limit` defaults to 20; its maximum is not published, so the
/// old API's 50 is enforced.
fn describe_group(state: &SimState, p: &Params<'_>, region: &str) -> Result<Answer, Failure> {
    p.only(&["InstanceId", "SearchWord", "Offset", "Limit"])?;
    let id = p.required_string("InstanceId")?;
    let search = p.string("SearchWord")?.unwrap_or_default();
    let (offset, limit) = p.page(20, 50)?;
    state.world(|w| {
        let inst = instance(w, id, region)?;
        let names: Vec<&String> = inst.groups.keys().filter(|g| g.contains(search)).collect();
        let list: Vec<Value> = names
            .iter()
            .skip(offset)
            .take(limit)
            .map(|g| json!({"Group": g, "Protocol": "consumer"}))
            .collect();
        Ok(Answer::ok(json!({
            "TotalCount": names.len(),
            "GroupList": list,
            "GroupCountQuota": inst.groups.len().max(200),
        })))
    })
}

/// One entry per requested group. An unknown group is reported with state `Dead`, which
/// the SDK documents as "the consumer group does not exist". Members (with their
/// round-robin assignment) are listed only for `Stable` groups, as documented.
fn describe_group_info(state: &SimState, p: &Params<'_>, region: &str) -> Result<Answer, Failure> {
    p.only(&["InstanceId", "GroupList"])?;
    let id = p.required_string("InstanceId")?;
    let groups = p
        .strings("GroupList")?
        .filter(|l| !l.is_empty())
        .ok_or_else(|| missing("GroupList"))?;
    state.world(|w| {
        let inst = instance(w, id, region)?;
        let entries: Vec<Value> = groups
            .iter()
            .map(|name| match inst.groups.get(name) {
                None => json!({"ErrorCode": "0", "State": "Dead", "ProtocolType": "",
                               "Protocol": "", "Members": [], "Group": name}),
                Some(g) => {
                    let n = g.members as usize;
                    let mut assignments = vec![Vec::<Value>::new(); n];
                    // An Empty group has no members and so nothing to assign.
                    for topic in g.commits.keys().filter(|_| n > 0) {
                        let Some(t) = inst.topics.get(topic) else {
                            continue;
                        };
                        let mut per_member = vec![Vec::new(); n];
                        for p in 0..t.partitions.len() {
                            per_member[p % n].push(p);
                        }
                        for (m, parts) in per_member.into_iter().enumerate() {
                            if !parts.is_empty() {
                                assignments[m].push(json!({"Topic": topic, "Partitions": parts}));
                            }
                        }
                    }
                    let members: Vec<Value> = assignments
                        .into_iter()
                        .enumerate()
                        .map(|(m, topics)| {
                            json!({
                                "MemberId": format!("consumer-{}-{}", m + 1, uuid::Uuid::new_v4()),
                                "ClientId": format!("consumer-{}", m + 1),
                                "ClientHost": format!("/10.0.0.{}", m + 10),
                                "Assignment": {"Version": 0, "Topics": topics},
                            })
                        })
                        .collect();
                    json!({"ErrorCode": "0", "State": g.state(),
                           "ProtocolType": "consumer", "Protocol": "range",
                           "Members": members, "Group": name})
                }
            })
            .collect();
        Ok(Answer::ok(Value::Array(entries)))
    })
}

/// Instances of the request's region, paged (`Limit` default 10, maximum 100). A stopped
/// instance reports status 5 (isolating).
fn describe_instances(state: &SimState, p: &Params<'_>, region: &str) -> Result<Answer, Failure> {
    p.only(&["InstanceId", "SearchWord", "Status", "Offset", "Limit"])?;
    let only_id = p.string("InstanceId")?;
    let search = p.string("SearchWord")?.unwrap_or_default();
    let statuses = p.partitions("Status")?;
    let (offset, limit) = p.page(10, 100)?;
    state.world(|w| {
        let matching: Vec<(&SimInstance, i64)> = w
            .instances_in(Cloud::Tencent, region)
            .into_iter()
            .map(|i| (i, instance_status(i.status)))
            .filter(|(i, _)| only_id.is_none_or(|id| i.id == id))
            .filter(|(i, _)| i.name.contains(search))
            .filter(|(_, s)| {
                statuses
                    .as_ref()
                    .is_none_or(|list| list.contains(&(*s as i32)))
            })
            .collect();
        let list: Vec<Value> = matching
            .iter()
            .skip(offset)
            .take(limit)
            .map(|(i, status)| {
                json!({"InstanceId": i.id, "InstanceName": i.name, "Status": status,
                       "IfCommunity": false})
            })
            .collect();
        Ok(Answer::ok(
            json!({"TotalCount": matching.len(), "InstanceList": list}),
        ))
    })
}

/// The answer to a reset attempt.
///
/// A group with members is refused with `FailedOperation` (documented for
/// `ModifyGroupOffsets`; Kafka itself only resets inactive groups). Offsets the backend
/// cannot apply (unknown topic or partition, offset out of range) come back as a
/// `JgwOperateResponse` with a non-"0" `ReturnCode`, which is how that type reports
/// failures. Nothing changes when a reset is refused.
fn reset_answer(result: Result<(), WorldError>, id: &str, group: &str) -> Result<Answer, Failure> {
    let refused = |message: String| Answer {
        result: json!({"ReturnCode": "1", "ReturnMessage": message, "Data": null}),
        outcome: "ReturnCode:1".into(),
    };
    match result {
        Ok(()) => Ok(Answer::ok(
            json!({"ReturnCode": "0", "ReturnMessage": "ok", "Data": null}),
        )),
        Err(WorldError::InstanceNotFound) => Err(instance_not_exist(id)),
        Err(WorldError::GroupNotFound) => Err(group_not_found(group)),
        Err(WorldError::GroupActive) => Err(fail(
            "FailedOperation",
            format!(
                "The consumer group `{group}` has active members; stop its consumers before resetting offsets."
            ),
        )),
        Err(WorldError::TopicNotFound(t)) => Ok(refused(format!("topic {t} does not exist"))),
        Err(WorldError::PartitionNotFound(t, p)) => Ok(refused(format!(
            "partition {p} of topic {t} does not exist"
        ))),
        Err(WorldError::OffsetOutOfRange {
            partition,
            offset,
            earliest,
            log_end,
        }) => Ok(refused(format!(
            "offset {offset} of partition {partition} is outside [{earliest}, {log_end}]"
        ))),
    }
}

/// Strategy 0 shifts by `Shift`, 1 moves to `ShiftTimestamp` (ms; -2 earliest, -1
/// latest), 2 sets `Offset`; `Partitions` restricts the partitions of the topics.
/// `Topics` is required, as the current documentation says.
fn modify_group_offsets(
    state: &SimState,
    p: &Params<'_>,
    region: &str,
    now: i64,
) -> Result<Answer, Failure> {
    p.only(&[
        "InstanceId",
        "Group",
        "Strategy",
        "Topics",
        "Shift",
        "ShiftTimestamp",
        "Offset",
        "Partitions",
    ])?;
    let id = p.required_string("InstanceId")?;
    let group = p.required_string("Group")?;
    let strategy = p.required_int("Strategy")?;
    let topics = p
        .strings("Topics")?
        .filter(|t| !t.is_empty())
        .ok_or_else(|| missing("Topics"))?;
    let partitions = p.partitions("Partitions")?.unwrap_or_default();
    let to = match strategy {
        0 => ResetTo::Shift(p.required_int("Shift")?),
        1 => match p.required_int("ShiftTimestamp")? {
            -2 => ResetTo::Earliest,
            -1 => ResetTo::Latest,
            ms if ms >= 0 => ResetTo::Timestamp(ms),
            ms => {
                return Err(invalid_value(format!(
                    "ShiftTimestamp {ms} is neither -2, -1 nor a time in milliseconds."
                )));
            }
        },
        2 => ResetTo::Offset(p.required_int("Offset")?),
        s => {
            return Err(invalid_value(format!(
                "Strategy {s} is not supported; use 0, 1 or 2."
            )));
        }
    };
    state.world(|w| {
        instance(w, id, region)?;
        let result = w.reset(Cloud::Tencent, id, group, &topics, &partitions, &to, now);
        reset_answer(result, id, group)
    })
}

/// Explicit `{Partition, Offset}` pairs for the topics in `TopicName` (all the group's
/// topics when absent).
fn batch_modify_group_offsets(
    state: &SimState,
    p: &Params<'_>,
    region: &str,
    now: i64,
) -> Result<Answer, Failure> {
    p.only(&["GroupName", "InstanceId", "Partitions", "TopicName"])?;
    let group = p.required_string("GroupName")?;
    let id = p.required_string("InstanceId")?;
    let items = p
        .array("Partitions")?
        .filter(|l| !l.is_empty())
        .ok_or_else(|| missing("Partitions"))?;
    let offsets = items
        .iter()
        .map(|item| {
            let entry = item.as_object().ok_or_else(|| {
                Params::wrong_type("Partitions", "an array of {Partition, Offset}")
            })?;
            let q = Params(entry);
            q.only(&["Partition", "Offset"])?;
            let partition = i32::try_from(q.required_int("Partition")?)
                .map_err(|_| invalid_value("Partition is out of range."))?;
            Ok((partition, q.required_int("Offset")?))
        })
        .collect::<Result<Vec<(i32, i64)>, Failure>>()?;
    let topics = p.strings("TopicName")?.unwrap_or_default();
    state.world(|w| {
        instance(w, id, region)?;
        let result = w.reset(
            Cloud::Tencent,
            id,
            group,
            &topics,
            &[],
            &ResetTo::Offsets(offsets),
            now,
        );
        reset_answer(result, id, group)
    })
}

/// CKafka `Instance.Status` of a status (SDK model: -1 create failed, 0 creating,
/// 1 running, 2 deleting, 3 deleted, 4 delete failed, 5 isolating, 7 upgrading). CKafka
/// has no separate code for migrating, scaling (a spec change is an upgrade) or an
/// approaching expiry, nor for expired (isolated) and released (deleted) instances.
fn instance_status(status: InstanceStatus) -> i64 {
    match status {
        InstanceStatus::Running | InstanceStatus::Migrating | InstanceStatus::Expiring => 1,
        InstanceStatus::Upgrading | InstanceStatus::Scaling => 7,
        InstanceStatus::Creating => 0,
        InstanceStatus::CreateFailed => -1,
        InstanceStatus::Stopped | InstanceStatus::Expired => 5,
        InstanceStatus::Released => 3,
        InstanceStatus::Deleting => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimSettings;
    use crate::world::{WorldSpec, group_name, instance_id};

    const NOW_S: i64 = 1_700_000_000;
    const HOST: &str = "127.0.0.1:9";

    fn state() -> SimState {
        let clock = kcle_clock::Clock::virtual_at_unix(NOW_S as u64);
        let world = World::generate(&WorldSpec::default(), NOW_S * 1000);
        SimState::new(SimSettings::default(), world, clock)
    }

    /// A request signed the way the client signs, with overridable pieces.
    fn signed(action: &str, body: &str, ts: i64, secret: &str) -> RawRequest {
        let s = sign::sign(
            &sign::Request {
                method: "POST",
                headers: &[("content-type", "application/json"), ("host", HOST)],
                payload: body.as_bytes(),
                timestamp: ts,
                service: SERVICE,
            },
            "AKIDSimulatorSecretId",
            secret,
        )
        .unwrap();
        RawRequest {
            method: "POST".into(),
            path_and_query: "/".into(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("host".into(), HOST.into()),
                ("x-tc-action".into(), action.into()),
                ("x-tc-version".into(), VERSION.into()),
                ("x-tc-region".into(), "ap-guangzhou".into()),
                ("x-tc-timestamp".into(), ts.to_string()),
                ("authorization".into(), s.authorization),
            ],
            body: body.into(),
        }
    }

    fn good(action: &str, body: &str) -> RawRequest {
        signed(action, body, NOW_S, "sim-tencent-secret")
    }

    fn answer(state: &SimState, req: &RawRequest) -> Value {
        let r = handle(state, req);
        assert_eq!(r.status, 200);
        serde_json::from_slice(&r.body).unwrap()
    }

    fn code(v: &Value) -> &str {
        v["Response"]["Error"]["Code"].as_str().unwrap_or("")
    }

    fn set_header(req: &mut RawRequest, name: &str, value: &str) {
        req.headers.retain(|(n, _)| n != name);
        req.headers.push((name.into(), value.into()));
    }

    #[test]
    fn a_correct_request_is_answered_and_logged() {
        let s = state();
        let body = format!(
            r#"{{"InstanceId":"{}","Group":"{}","Offset":0,"Limit":50}}"#,
            instance_id(Cloud::Tencent, 1),
            group_name(1)
        );
        let v = answer(&s, &good("DescribeGroupOffsets", &body));
        assert_eq!(v["Response"]["Result"]["TotalCount"], 2, "{v}");
        let id = v["Response"]["RequestId"].as_str().unwrap();
        // Exactly `application/json`, for answers and errors alike (the SDK relies on it).
        for secret in ["sim-tencent-secret", "wrong"] {
            let r = handle(&s, &signed("DescribeGroupOffsets", &body, NOW_S, secret));
            let content_types: Vec<&str> = r
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.as_str())
                .collect();
            assert_eq!(content_types, ["application/json"]);
        }
        assert_eq!(uuid::Uuid::parse_str(id).unwrap().to_string(), id);
        let log = s.requests();
        assert_eq!(log[0].outcome, "ok");
        assert_eq!(log[0].group.as_deref(), Some("group-0001"));
        assert_eq!(log[0].params["Limit"], "50");
        assert_eq!(log[0].params["Group"], "group-0001");
        assert!(log[0].raw.is_none());
    }

    #[test]
    fn authentication_failures_have_tencent_codes() {
        let s = state();
        let body = r#"{"InstanceId":"ckafka-sim0001","Offset":0,"Limit":20}"#;
        let cases: Vec<(RawRequest, &str)> = vec![
            (
                signed("DescribeGroup", body, NOW_S, "wrong"),
                "AuthFailure.SignatureFailure",
            ),
            (
                signed("DescribeGroup", body, NOW_S - 301, "sim-tencent-secret"),
                "AuthFailure.SignatureExpire",
            ),
            (
                signed("DescribeGroup", body, NOW_S + 301, "sim-tencent-secret"),
                "AuthFailure.SignatureExpire",
            ),
            (
                {
                    let mut r = good("DescribeGroup", body);
                    r.body = body.replace("20", "21");
                    r
                },
                "AuthFailure.SignatureFailure",
            ),
            (
                {
                    let mut r = good("DescribeGroup", body);
                    let a = r.header("authorization").unwrap().replace(", ", ",");
                    set_header(&mut r, "authorization", &a);
                    r
                },
                "AuthFailure.InvalidAuthorization",
            ),
            (
                {
                    let mut r = good("DescribeGroup", body);
                    let a = r
                        .header("authorization")
                        .unwrap()
                        .replace("AKIDSimulatorSecretId", "AKIDnope");
                    set_header(&mut r, "authorization", &a);
                    r
                },
                "AuthFailure.SecretIdNotFound",
            ),
            (
                {
                    let mut r = good("DescribeGroup", body);
                    set_header(&mut r, "x-tc-token", "unexpected");
                    r
                },
                "AuthFailure.TokenFailure",
            ),
            (
                {
                    let mut r = good("DescribeGroup", body);
                    set_header(&mut r, "x-tc-version", "2017-03-12");
                    r
                },
                "NoSuchVersion",
            ),
            (
                {
                    let mut r = good("DescribeGroup", body);
                    set_header(&mut r, "x-tc-action", "DeleteInstance");
                    r
                },
                "InvalidAction",
            ),
            (
                {
                    let mut r = good("DescribeGroup", body);
                    r.headers.retain(|(n, _)| n != "x-tc-region");
                    r
                },
                "MissingParameter",
            ),
            (
                {
                    let mut r = good("DescribeGroup", body);
                    set_header(&mut r, "content-type", "text/plain");
                    r
                },
                "InvalidParameter",
            ),
        ];
        for (req, expected) in cases {
            let v = answer(&s, &req);
            assert_eq!(code(&v), expected, "{v}");
            let text = v.to_string();
            assert!(!text.contains("sim-tencent-secret"));
        }
        assert_eq!(s.count(Cloud::Tencent, "DescribeGroup", Some("ok")), 0);
    }

    #[test]
    fn the_scope_date_must_be_the_utc_date_of_the_timestamp() {
        let s = state();
        let body = r#"{"InstanceId":"ckafka-sim0001"}"#;
        let mut r = good("DescribeGroup", body);
        let date = sign::scope_date(NOW_S).unwrap();
        let a = r
            .header("authorization")
            .unwrap()
            .replace(&date, "2000-01-01");
        set_header(&mut r, "authorization", &a);
        let v = answer(&s, &r);
        assert_eq!(code(&v), "AuthFailure.InvalidAuthorization");
        assert!(v.to_string().contains("UTC date"), "{v}");
    }

    #[test]
    fn authorization_is_parsed_strictly() {
        let sig = "a".repeat(64);
        let ok = format!(
            "TC3-HMAC-SHA256 Credential=AKID/2019-02-25/ckafka/tc3_request, SignedHeaders=content-type;host;x-tc-action, Signature={sig}"
        );
        let a = parse_authorization(&ok).unwrap();
        assert_eq!(
            a,
            Authorization {
                secret_id: "AKID",
                date: "2019-02-25",
                service: "ckafka",
                signed_headers: vec!["content-type", "host", "x-tc-action"],
                signature: &sig,
            }
        );
        for bad in [
            ok.replace("TC3-HMAC-SHA256", "TC3-HMAC-SHA1"),
            ok.replace(", ", ","),
            ok.replace("tc3_request", "tc2_request"),
            ok.replace("content-type;host;x-tc-action", "host;content-type"),
            ok.replace("content-type;host;x-tc-action", "content-type"),
            ok.replace("content-type;host;", "Content-Type;host;"),
            ok.replace(&sig, &"A".repeat(64)),
            ok.replace(&sig, "abc"),
            ok.replace("Credential=AKID/", "Credential=/"),
            format!("{ok}, Extra=1"),
        ] {
            assert!(parse_authorization(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn extra_signed_headers_are_verified_too() {
        let s = state();
        let body = r#"{"InstanceId":"ckafka-sim0001"}"#;
        let headers = [
            ("content-type", "application/json"),
            ("host", HOST),
            ("x-tc-action", "DescribeGroup"),
        ];
        let signed = sign::sign(
            &sign::Request {
                method: "POST",
                headers: &headers,
                payload: body.as_bytes(),
                timestamp: NOW_S,
                service: SERVICE,
            },
            "AKIDSimulatorSecretId",
            "sim-tencent-secret",
        )
        .unwrap();
        let mut r = good("DescribeGroup", body);
        set_header(&mut r, "authorization", &signed.authorization);
        assert_eq!(
            code(&answer(&s, &r)),
            "",
            "accepted with x-tc-action signed"
        );
        // Signed as DescribeGroup, sent as DescribeInstances: the signature no longer fits.
        set_header(&mut r, "x-tc-action", "DescribeInstances");
        assert_eq!(code(&answer(&s, &r)), "AuthFailure.SignatureFailure");
    }

    #[test]
    fn parameters_are_checked() {
        let s = state();
        let cases = [
            (
                "DescribeGroupOffsets",
                r#"{"InstanceId":"ckafka-sim0001","Group":"group-0001","Limit":51}"#,
                "InvalidParameterValue",
            ),
            (
                "DescribeGroupOffsets",
                r#"{"InstanceId":"ckafka-sim0001","Limit":5}"#,
                "MissingParameter",
            ),
            (
                "DescribeGroupOffsets",
                r#"{"InstanceId":"ckafka-sim0001","Group":"group-0001","Offset":"0"}"#,
                "InvalidParameter",
            ),
            (
                "DescribeGroupOffsets",
                r#"{"InstanceId":"ckafka-sim0001","Group":"group-0001","Bogus":1}"#,
                "UnknownParameter",
            ),
            (
                "DescribeGroupOffsets",
                r#"{"InstanceId":"ckafka-nope","Group":"group-0001"}"#,
                "InvalidParameterValue.InstanceNotExist",
            ),
            (
                "DescribeGroupOffsets",
                r#"{"InstanceId":"ckafka-sim0001","Group":"nope"}"#,
                "ResourceNotFound",
            ),
            (
                "DescribeInstances",
                r#"{"Limit":101}"#,
                "InvalidParameterValue",
            ),
            (
                "DescribeGroup",
                r#"{"InstanceId":"ckafka-sim0001","Limit":51}"#,
                "InvalidParameterValue",
            ),
            (
                "ModifyGroupOffsets",
                r#"{"InstanceId":"ckafka-sim0001","Group":"group-0003","Strategy":1,"ShiftTimestamp":-1}"#,
                "MissingParameter",
            ),
            (
                "ModifyGroupOffsets",
                r#"{"InstanceId":"ckafka-sim0001","Group":"group-0003","Strategy":3,"Topics":["topic-0005"]}"#,
                "InvalidParameterValue",
            ),
            (
                "ModifyGroupOffsets",
                r#"{"InstanceId":"ckafka-sim0001","Group":"group-0003","Strategy":0,"Topics":["topic-0005"]}"#,
                "MissingParameter",
            ),
            (
                "ModifyGroupOffsets",
                r#"{"InstanceId":"ckafka-sim0001","Group":"group-0001","Strategy":1,"ShiftTimestamp":-1,"Topics":["topic-0001"]}"#,
                "FailedOperation",
            ),
            ("DescribeGroup", r#"[1,2]"#, "InvalidParameter"),
        ];
        for (action, body, expected) in cases {
            let v = answer(&s, &good(action, body));
            assert_eq!(code(&v), expected, "{action} {body}: {v}");
        }
    }

    #[test]
    fn another_regions_instance_does_not_exist() {
        let s = state();
        let mut r = good("DescribeGroup", r#"{"InstanceId":"ckafka-sim0001"}"#);
        set_header(&mut r, "x-tc-region", "ap-shanghai");
        // The region header is not signed (only content-type;host), so only the lookup fails.
        assert_eq!(
            code(&answer(&s, &r)),
            "InvalidParameterValue.InstanceNotExist"
        );
    }

    #[test]
    fn topic_attributes_give_the_retention_in_force() {
        let s = state();
        let ask = |body: &str| answer(&s, &good("DescribeTopicAttributes", body));
        let v = ask(r#"{"InstanceId":"ckafka-sim0001","TopicName":"topic-0001"}"#);
        let result = &v["Response"]["Result"];
        assert_eq!(result["Config"]["Retention"], 72 * 3_600_000, "{v}");
        assert_eq!(result["PartitionNum"], 3);
        assert!(result["Config"]["RetentionBytes"].is_null());
        // A topic's own retention wins over the instance's.
        s.world(|w| {
            let inst = w.instance_mut(Cloud::Tencent, "ckafka-sim0001").unwrap();
            inst.topics.get_mut("topic-0001").unwrap().retention_ms = Some(3_600_000);
        });
        let v = ask(r#"{"InstanceId":"ckafka-sim0001","TopicName":"topic-0001"}"#);
        assert_eq!(v["Response"]["Result"]["Config"]["Retention"], 3_600_000);
        let v = ask(r#"{"InstanceId":"ckafka-sim0001","TopicName":"nope"}"#);
        assert_eq!(code(&v), "ResourceNotFound");
        let v = ask(r#"{"InstanceId":"ckafka-sim0001"}"#);
        assert_eq!(code(&v), "MissingParameter");
        let v = ask(r#"{"InstanceId":"ckafka-sim0001","TopicName":"t","Topic":"t"}"#);
        assert_eq!(code(&v), "UnknownParameter");
    }

    #[test]
    fn unknown_groups_are_dead_in_group_info() {
        let s = state();
        let v = answer(
            &s,
            &good(
                "DescribeGroupInfo",
                r#"{"InstanceId":"ckafka-sim0001","GroupList":["nope","group-0001"]}"#,
            ),
        );
        let result = &v["Response"]["Result"];
        assert_eq!(result[0]["State"], "Dead");
        assert_eq!(result[1]["State"], "Stable");
        assert_eq!(result[1]["Members"].as_array().unwrap().len(), 2);
        assert_eq!(
            result[1]["Members"][0]["Assignment"]["Topics"][0]["Partitions"],
            json!([0, 2])
        );
    }

    #[test]
    fn out_of_range_offsets_are_a_non_zero_return_code() {
        let s = state();
        let v = answer(
            &s,
            &good(
                "BatchModifyGroupOffsets",
                r#"{"GroupName":"group-0003","InstanceId":"ckafka-sim0001","Partitions":[{"Partition":0,"Offset":999999999999}],"TopicName":["topic-0005"]}"#,
            ),
        );
        assert_eq!(v["Response"]["Result"]["ReturnCode"], "1", "{v}");
        assert_eq!(s.requests()[0].outcome, "ReturnCode:1");
    }

    #[test]
    fn params_are_logged_as_text() {
        let body: Map<String, Value> =
            serde_json::from_str(r#"{"A":"x","B":1,"C":[1,"y"],"D":{"E":null},"F":true,"G":null}"#)
                .unwrap();
        let p = params_of(&body);
        let p: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            p,
            [
                ("A", "x"),
                ("B", "1"),
                ("C", r#"[1,"y"]"#),
                ("D", r#"{"E":null}"#),
                ("F", "true"),
                ("G", "null")
            ]
        );
    }
}
