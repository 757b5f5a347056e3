//! The JSON answers of alikafka (API 2019-09-16) as serde types, and nothing else.
//!
//! Owns the field names and the tolerance rules of the project reference `../shared/reference/cloud-apis.md` (A5.1, from the SDK model and the GetConsumerProgress docs): every list sits in
//! an XML-derived wrapper object (`"TopicList": {"TopicList": [...]}`) and may come as an
//! array, a single object, `null`, `""` or not at all; every leaf is optional; `Code` is an
//! integer in alikafka answers and a string in gateway errors; `state` is lower-case; every
//! offset and timestamp is an `i64`. The English docs once split a topic over two
//! `TopicList` entries, which [`ConsumerProgress::merged_topics`] puts back together.
//!
//! Must not leak outside `providers/alibaba/`: the provider converts these into `model`
//! types. Must not decide what an answer means (errors, running instances): only shape.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// `Code`: `200` (integer) in alikafka answers, a string such as `"Throttling.User"` in
/// gateway errors, and sometimes `"200"`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub(super) enum Code {
    Int(i64),
    Text(String),
}

impl Code {
    /// Whether this is the success code 200, in either type.
    pub(super) fn is_success(&self) -> bool {
        match self {
            Code::Int(n) => *n == 200,
            Code::Text(s) => s.trim() == "200",
        }
    }

    /// The code as text, for [`ProviderError::code`](crate::providers::ProviderError).
    pub(super) fn as_text(&self) -> String {
        match self {
            Code::Int(n) => n.to_string(),
            Code::Text(s) => s.trim().to_string(),
        }
    }

    /// The numeric business code, also when sent as a string of digits.
    pub(super) fn as_int(&self) -> Option<i64> {
        match self {
            Code::Int(n) => Some(*n),
            Code::Text(s) => s.trim().parse().ok(),
        }
    }
}

/// The fields every answer and every error body has (any of them may be missing).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Envelope {
    pub request_id: Option<String>,
    pub code: Option<Code>,
    pub message: Option<String>,
    pub success: Option<bool>,
}

impl Envelope {
    /// Whether the body reports a failure: `Success: false` (alikafka answers business
    /// failures with HTTP 200) or a `Code` other than 200.
    pub(super) fn failed(&self) -> bool {
        self.success == Some(false) || self.code.as_ref().is_some_and(|c| !c.is_success())
    }

    /// Whether the body positively reports success (`Success: true` or `Code` 200), as a
    /// write's answer must.
    pub(super) fn confirmed(&self) -> bool {
        !self.failed()
            && (self.success == Some(true) || self.code.as_ref().is_some_and(Code::is_success))
    }
}

/// Parses an answer into its envelope and its body type.
///
/// The docs' JSON samples wrap the answer in `{"<Action>Response": {...}}` (an XML
/// artefact); such a single wrapper key is removed first.
pub(super) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<(Envelope, T), serde_json::Error> {
    let value = unwrap_root(serde_json::from_slice(body)?);
    if !value.is_object() {
        return Err(serde_json::Error::custom(format!(
            "expected a JSON object, found {}",
            kind(&value)
        )));
    }
    let envelope = Envelope::deserialize(&value)?;
    let answer = T::deserialize(value)?;
    Ok((envelope, answer))
}

/// Parses just the envelope (error bodies).
pub(super) fn parse_envelope(body: &[u8]) -> Result<Envelope, serde_json::Error> {
    parse::<serde::de::IgnoredAny>(body).map(|(e, _)| e)
}

fn unwrap_root(value: Value) -> Value {
    match value {
        Value::Object(map)
            if map.len() == 1
                && map.keys().all(|k| k.ends_with("Response"))
                && map.values().all(Value::is_object) =>
        {
            let (_, inner) = map.into_iter().next().expect("one entry");
            inner
        }
        other => other,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A list in any of its observed forms: array, single object, `null` or `""`.
fn one_or_many<T: DeserializeOwned>(value: Value) -> Result<Vec<T>, serde_json::Error> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::String(s) if s.trim().is_empty() => Ok(Vec::new()),
        Value::Array(items) => items.into_iter().map(serde_json::from_value).collect(),
        obj @ Value::Object(_) => Ok(vec![serde_json::from_value(obj)?]),
        other => Err(serde_json::Error::custom(format!(
            "expected a list, found {}",
            kind(&other)
        ))),
    }
}

/// A wrapped list `{"<inner>": <list>}`; the wrapper itself may also be `null`, `""`,
/// `{}`, a bare array or a bare single item.
fn wrapped<'de, D, T>(d: D, inner: &str) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let value = Value::deserialize(d)?;
    let list = match value {
        Value::Object(mut map) => match map.remove(inner) {
            Some(list) => list,
            None if map.is_empty() => return Ok(Vec::new()),
            None => Value::Object(map),
        },
        other => other,
    };
    one_or_many(list).map_err(|e| D::Error::custom(format!("{inner}: {e}")))
}

fn topic_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<TopicEntry>, D::Error> {
    wrapped(d, "TopicList")
}

fn rebalance_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<RebalanceEntry>, D::Error> {
    wrapped(d, "RebalanceInfoList")
}

fn offset_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PartitionEntry>, D::Error> {
    wrapped(d, "OffsetList")
}

fn consumer_vo<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ConsumerVo>, D::Error> {
    wrapped(d, "ConsumerVO")
}

fn instance_vo<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<InstanceVo>, D::Error> {
    wrapped(d, "InstanceVO")
}

/// `GetConsumerProgress` answer.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct GetConsumerProgress {
    pub consumer_progress: Option<ConsumerProgress>,
}

/// `ConsumerProgress`: the group's state and its topics.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ConsumerProgress {
    /// Lower-case key in JSON (`STABLE`, `EMPTY`, ...), unlike every other field.
    #[serde(rename = "state", alias = "State")]
    pub state: Option<String>,
    #[serde(default, deserialize_with = "topic_list")]
    pub topic_list: Vec<TopicEntry>,
    /// Newer field (SDK 2.15+): the group's rebalances.
    #[serde(default, deserialize_with = "rebalance_list")]
    pub rebalance_info_list: Vec<RebalanceEntry>,
}

/// One `RebalanceInfoList` entry.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct RebalanceEntry {
    pub generation: Option<i64>,
    pub last_rebalance_timestamp: Option<i64>,
    pub rebalance_success: Option<bool>,
    pub rebalance_time_consuming: Option<i64>,
}

/// One `TopicList` entry.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct TopicEntry {
    pub topic: Option<String>,
    #[serde(default, deserialize_with = "offset_list")]
    pub offset_list: Vec<PartitionEntry>,
}

/// One `OffsetList` entry: a partition as the group sees it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct PartitionEntry {
    pub partition: Option<i32>,
    /// Log-end offset.
    pub broker_offset: Option<i64>,
    /// Committed offset; negative when the group never committed.
    pub consumer_offset: Option<i64>,
    /// Produce time (ms) of the last consumed message; -1 when unknown.
    pub last_timestamp: Option<i64>,
    pub client_id: Option<String>,
    pub member_id: Option<String>,
}

impl ConsumerProgress {
    /// Topics with their partitions, in answer order. An entry without `Topic` belongs to
    /// the topic before it (the split form of the English docs), or to the next named one
    /// when it comes first; entries naming the same topic are joined.
    /// Borrows the entries rather than copying them (each has three strings).
    pub(super) fn merged_topics(&self) -> Result<Vec<(&str, Vec<&PartitionEntry>)>, String> {
        let mut out: Vec<(&str, Vec<&PartitionEntry>)> = Vec::new();
        let mut pending: Vec<&PartitionEntry> = Vec::new();
        for entry in &self.topic_list {
            match entry.topic.as_deref().filter(|t| !t.is_empty()) {
                Some(name) => {
                    let mut parts = std::mem::take(&mut pending);
                    parts.extend(entry.offset_list.iter());
                    match out.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, existing)) => existing.extend(parts),
                        None => out.push((name, parts)),
                    }
                }
                None => match out.last_mut() {
                    Some((_, last)) => last.extend(entry.offset_list.iter()),
                    None => pending.extend(entry.offset_list.iter()),
                },
            }
        }
        if !pending.is_empty() {
            return Err(format!(
                "{} partition entries belong to no named topic",
                pending.len()
            ));
        }
        Ok(out)
    }
}

/// `GetConsumerList` answer (one page).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct GetConsumerList {
    /// Groups over all pages.
    pub total: Option<i64>,
    #[serde(default, deserialize_with = "consumer_vo")]
    pub consumer_list: Vec<ConsumerVo>,
}

/// One `ConsumerVO`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ConsumerVo {
    pub consumer_id: Option<String>,
}

/// `GetInstanceList` answer (not paged).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct GetInstanceList {
    #[serde(default, deserialize_with = "instance_vo")]
    pub instance_list: Vec<InstanceVo>,
}

/// One `InstanceVO`, the fields discovery needs.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct InstanceVo {
    pub instance_id: Option<String>,
    pub name: Option<String>,
    /// Legacy status, deprecated by the docs: 5 = in service.
    pub service_status: Option<i64>,
    /// Console status: 2 = in service.
    pub view_instance_status_code: Option<i64>,
    /// How long the instance keeps messages, hours.
    #[serde(default)]
    pub msg_retain: Option<i64>,
}

/// `UpdateConsumerOffset` answer: the envelope only.
pub(super) type UpdateConsumerOffset = serde::de::IgnoredAny;

#[cfg(test)]
mod tests {
    use super::*;

    const PROGRESS: &str =
        include_str!("../../../tests/fixtures/alibaba/get_consumer_progress.json");
    const PROGRESS_DOC_EN: &str =
        include_str!("../../../tests/fixtures/alibaba/get_consumer_progress_doc_en.json");
    const PROGRESS_SPLIT: &str =
        include_str!("../../../tests/fixtures/alibaba/get_consumer_progress_split_topics.json");
    const PROGRESS_QUIRKS: &str =
        include_str!("../../../tests/fixtures/alibaba/get_consumer_progress_quirks.json");
    const CONSUMERS: &str = include_str!("../../../tests/fixtures/alibaba/get_consumer_list.json");
    const CONSUMERS_SINGLE: &str =
        include_str!("../../../tests/fixtures/alibaba/get_consumer_list_single.json");
    const INSTANCES: &str = include_str!("../../../tests/fixtures/alibaba/get_instance_list.json");
    const UPDATE: &str =
        include_str!("../../../tests/fixtures/alibaba/update_consumer_offset.json");
    const GATEWAY_ERROR: &str = include_str!("../../../tests/fixtures/alibaba/error_gateway.json");
    const BUSINESS_ERROR: &str =
        include_str!("../../../tests/fixtures/alibaba/error_business.json");

    fn progress(body: &str) -> (Envelope, ConsumerProgress) {
        let (env, p) = parse::<GetConsumerProgress>(body.as_bytes()).unwrap();
        (env, p.consumer_progress.unwrap())
    }

    #[test]
    fn realistic_progress_with_wrappers_state_and_members() {
        let (env, p) = progress(PROGRESS);
        assert!(!env.failed());
        assert_eq!(env.code, Some(Code::Int(200)));
        assert_eq!(
            env.request_id.as_deref(),
            Some("252820E1-A2E6-45F2-B4C9-1056B8CE****")
        );
        assert_eq!(p.state.as_deref(), Some("STABLE"));
        let topics = p.merged_topics().unwrap();
        assert_eq!(topics.len(), 1);
        let (name, parts) = &topics[0];
        assert_eq!(*name, "orders");
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].partition, Some(0));
        assert_eq!(parts[0].broker_offset, Some(100_500));
        assert_eq!(parts[0].consumer_offset, Some(100_000));
        assert_eq!(parts[0].last_timestamp, Some(1_566_874_931_649));
        assert_eq!(parts[1].client_id.as_deref(), Some("orders-svc-2"));
        assert_eq!(
            parts[2].member_id.as_deref(),
            Some("orders-svc-2-5f0e7b9a-8d21-4c0a-b0a4-7e2d9c3b4a55")
        );
    }

    #[test]
    fn doc_sample_with_response_root_and_single_object_topic_list() {
        let (env, p) = progress(PROGRESS_DOC_EN);
        assert!(!env.failed());
        assert_eq!(p.state, None);
        let topics = p.merged_topics().unwrap();
        assert_eq!(topics.len(), 1);
        assert_eq!(topics[0].0, "kafka-test");
        assert_eq!(topics[0].1.len(), 12);
        assert_eq!(topics[0].1[11].partition, Some(11));
        assert_eq!(topics[0].1[11].broker_offset, Some(9));
    }

    #[test]
    fn split_topic_entries_are_merged_into_the_preceding_topic() {
        let (_, p) = progress(PROGRESS_SPLIT);
        assert_eq!(p.topic_list.len(), 4);
        let topics = p.merged_topics().unwrap();
        assert_eq!(topics.len(), 2);
        assert_eq!(topics[0].0, "kafka-test");
        assert_eq!(topics[0].1.len(), 1, "single-object OffsetList");
        assert_eq!(topics[0].1[0].consumer_offset, Some(9));
        assert_eq!(topics[1].0, "kafka-other");
        assert_eq!(topics[1].1.len(), 2);
        assert_eq!(topics[1].1[1].consumer_offset, Some(-1));
        assert_eq!(topics[1].1[0].last_timestamp, Some(-1));
    }

    #[test]
    fn an_unnamed_entry_first_belongs_to_the_next_named_one() {
        let p: ConsumerProgress = serde_json::from_str(
            r#"{"TopicList": {"TopicList": [
                {"OffsetList": {"OffsetList": [{"Partition": 3, "BrokerOffset": 1}]}},
                {"Topic": "t", "OffsetList": {"OffsetList": [{"Partition": 4, "BrokerOffset": 2}]}},
                {"Topic": "t", "OffsetList": [{"Partition": 5, "BrokerOffset": 3}]}
            ]}}"#,
        )
        .unwrap();
        let topics = p.merged_topics().unwrap();
        assert_eq!(topics.len(), 1);
        let parts: Vec<_> = topics[0].1.iter().map(|e| e.partition.unwrap()).collect();
        assert_eq!(parts, [3, 4, 5]);

        let orphan: ConsumerProgress = serde_json::from_str(
            r#"{"TopicList": {"TopicList": {"OffsetList": {"OffsetList": {"Partition": 0}}}}}"#,
        )
        .unwrap();
        assert!(orphan.merged_topics().is_err());
    }

    #[test]
    fn quirks_empty_string_null_missing_and_string_code() {
        let (env, p) = progress(PROGRESS_QUIRKS);
        assert_eq!(env.code, Some(Code::Text("200".into())));
        assert!(!env.failed(), "string \"200\" is success");
        assert_eq!(p.state.as_deref(), Some("EMPTY"));
        let topics = p.merged_topics().unwrap();
        let sizes: Vec<_> = topics.iter().map(|(n, p)| (*n, p.len())).collect();
        assert_eq!(
            sizes,
            [
                ("empty-offsets", 0),
                ("null-offsets", 0),
                ("missing-offsets", 0),
                ("one-partition", 1)
            ]
        );
        let one = &topics[3].1[0];
        assert_eq!(one.last_timestamp, Some(-1));
        assert_eq!(one.member_id.as_deref(), Some(""));
    }

    #[test]
    fn whole_topic_list_in_odd_forms() {
        for body in [
            r#"{"TopicList": ""}"#,
            r#"{"TopicList": null}"#,
            r#"{"TopicList": {}}"#,
            r#"{"TopicList": {"TopicList": ""}}"#,
            r#"{"TopicList": {"TopicList": []}}"#,
            r#"{}"#,
        ] {
            let p: ConsumerProgress = serde_json::from_str(body).unwrap();
            assert!(p.topic_list.is_empty(), "{body}");
        }
        let bare: ConsumerProgress =
            serde_json::from_str(r#"{"TopicList": [{"Topic": "a"}, {"Topic": "b"}]}"#).unwrap();
        assert_eq!(bare.topic_list.len(), 2, "a list without its wrapper");
    }

    #[test]
    fn wrong_types_are_errors_not_silently_empty() {
        for body in [
            r#"{"ConsumerProgress": {"TopicList": {"TopicList": [{"Topic": "t", "OffsetList": {"OffsetList": [{"Partition": 0, "BrokerOffset": "many"}]}}]}}}"#,
            r#"{"ConsumerProgress": {"TopicList": 42}}"#,
            r#"{"ConsumerProgress": {"TopicList": {"TopicList": "oops"}}}"#,
            r#"{"ConsumerProgress": "unavailable"}"#,
            r#"[1, 2]"#,
            r#"{"RequestId": "x", "Success": "true"}"#,
        ] {
            assert!(
                parse::<GetConsumerProgress>(body.as_bytes()).is_err(),
                "{body}"
            );
        }
    }

    #[test]
    fn consumer_list_in_array_and_single_object_forms() {
        let (env, page) = parse::<GetConsumerList>(CONSUMERS.as_bytes()).unwrap();
        assert!(!env.failed());
        assert_eq!(page.total, Some(2));
        let ids: Vec<_> = page
            .consumer_list
            .iter()
            .map(|c| c.consumer_id.as_deref().unwrap())
            .collect();
        assert_eq!(ids, ["orders-consumer", "billing-consumer"]);

        let (env, page) = parse::<GetConsumerList>(CONSUMERS_SINGLE.as_bytes()).unwrap();
        assert!(!env.failed());
        assert_eq!(page.total, Some(1));
        assert_eq!(page.consumer_list.len(), 1);

        let (_, empty) = parse::<GetConsumerList>(
            br#"{"Code": 200, "Success": true, "Total": 0, "ConsumerList": ""}"#,
        )
        .unwrap();
        assert!(empty.consumer_list.is_empty());
    }

    #[test]
    fn instance_list_keeps_both_status_fields() {
        let (_, list) = parse::<GetInstanceList>(INSTANCES.as_bytes()).unwrap();
        let rows: Vec<_> = list
            .instance_list
            .iter()
            .map(|i| {
                (
                    i.instance_id.as_deref().unwrap(),
                    i.service_status,
                    i.view_instance_status_code,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("alikafka_post-cn-abc123", Some(5), Some(2)),
                ("alikafka_post-cn-stopped1", Some(5), Some(3)),
                ("alikafka_pre-cn-legacy01", Some(5), None),
                ("alikafka_pre-cn-expired1", Some(15), None),
            ]
        );
        assert_eq!(list.instance_list[0].name.as_deref(), Some("prod-kafka"));
    }

    #[test]
    fn envelopes_of_success_gateway_error_and_business_error() {
        let (env, _) = parse::<UpdateConsumerOffset>(UPDATE.as_bytes()).unwrap();
        assert!(!env.failed());
        assert_eq!(env.success, Some(true));

        let env = parse_envelope(GATEWAY_ERROR.as_bytes()).unwrap();
        assert!(env.failed(), "a string error code is a failure");
        assert_eq!(
            env.code,
            Some(Code::Text("InvalidAccessKeyId.NotFound".into()))
        );
        assert_eq!(env.success, None);
        assert_eq!(env.code.unwrap().as_int(), None);

        let env = parse_envelope(BUSINESS_ERROR.as_bytes()).unwrap();
        assert!(env.failed(), "Success false with HTTP 200 is a failure");
        assert_eq!(env.code.as_ref().unwrap().as_int(), Some(400));
        assert_eq!(env.code.unwrap().as_text(), "400");

        let env = parse_envelope(br#"{"Success": false, "Code": 200}"#).unwrap();
        assert!(env.failed(), "Success false wins over Code 200");
        let env = parse_envelope(br#"{"Code": "500"}"#).unwrap();
        assert!(env.failed());
        assert_eq!(env.code.unwrap().as_int(), Some(500));
    }

    #[test]
    fn invalid_json_is_an_error() {
        assert!(parse_envelope(b"{\"RequestId\": \"abc").is_err());
        assert!(parse_envelope(b"<html>502 Bad Gateway</html>").is_err());
    }
}
