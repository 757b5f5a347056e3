//! CKafka (API 2019-08-19) JSON as it travels: request bodies and answers, with Tencent's
//! field names. Only `providers::tencent` sees these types; it converts them into `model`
//! types at its edge.
//!
//! Answers are parsed leniently where the SDK documents that a field "may return null"
//! (lists become empty) and strictly where the exporter needs the value (offsets,
//! counts). Integers are i64 because offsets exceed 32 bits. Nothing here does I/O.

use serde::{Deserialize, Deserializer, Serialize};

/// `{"Response": {...}}`, the envelope of every answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Envelope {
    pub response: Body,
}

/// The inside of the envelope: either `Error` or the operation's `Result`, and always a
/// `RequestId`. `Result` stays raw here so that an error or a missing `Result` can be told
/// apart from a `Result` of the wrong shape, with the RequestId kept in both cases.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Body {
    #[serde(default)]
    pub error: Option<ApiError>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub result: Option<serde_json::Value>,
}

/// `Response.Error`: API errors arrive with HTTP 200.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApiError {
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// `null` as the default value: the SDK marks many lists "may return null".
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A code the SDK types as a string; a number is accepted too so that a server-side type
/// change does not fail a whole answer.
fn code_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Code {
        Text(String),
        Number(i64),
    }
    Ok(match Code::deserialize(d)? {
        Code::Text(s) => s,
        Code::Number(n) => n.to_string(),
    })
}

// ---- DescribeGroupOffsets -------------------------------------------------------------

/// Request of `DescribeGroupOffsets`; pages run over topics.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeGroupOffsetsRequest<'a> {
    pub instance_id: &'a str,
    pub group: &'a str,
    pub offset: i64,
    pub limit: i64,
}

/// `Result` of `DescribeGroupOffsets` (`GroupOffsetResponse`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupOffsetResponse {
    /// Number of topics (not partitions) matching the request.
    pub total_count: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub topic_list: Vec<GroupOffsetTopic>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupOffsetTopic {
    pub topic: String,
    /// Every partition of the topic: there is no partition paging.
    #[serde(default, deserialize_with = "nullable")]
    pub partitions: Vec<GroupOffsetPartition>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupOffsetPartition {
    pub partition: i32,
    /// The committed offset; -1 when the group never committed here.
    pub offset: i64,
    /// Commit metadata, usually empty; parsed to keep the documented shape.
    #[serde(default)]
    #[allow(dead_code)]
    pub metadata: Option<String>,
    /// A Kafka error code for this partition; 0 means the offsets are valid.
    #[serde(default)]
    pub error_code: i64,
    pub log_end_offset: i64,
    /// Tencent's own lag; unused because lag is recomputed from the two offsets.
    #[serde(default)]
    #[allow(dead_code)]
    pub lag: Option<i64>,
}

// ---- DescribeGroup --------------------------------------------------------------------

/// Request of `DescribeGroup`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeGroupRequest<'a> {
    pub instance_id: &'a str,
    pub offset: i64,
    pub limit: i64,
}

/// `Result` of `DescribeGroup` (`GroupResponse`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupResponse {
    pub total_count: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub group_list: Vec<GroupEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupEntry {
    pub group: String,
}

// ---- DescribeGroupInfo ----------------------------------------------------------------

/// Request of `DescribeGroupInfo`, for one group.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeGroupInfoRequest<'a> {
    pub instance_id: &'a str,
    pub group_list: &'a [&'a str],
}

/// `FetchMessageListByOffset`: message metadata from an offset on; with
/// `SinglePartitionRecordNumber` 1, the message at the offset.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FetchMessageListByOffsetRequest<'a> {
    pub instance_id: &'a str,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub single_partition_record_number: i64,
}

/// `Result` of `FetchMessageListByOffset`: an array of records. Only the position and
/// the timestamp are read; no content field is even parsed.
pub type MessageListResult = Option<Vec<MessageRecord>>;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageRecord {
    pub partition: i32,
    pub offset: i64,
    /// Produce time, Unix milliseconds.
    #[serde(default)]
    pub timestamp: Option<i64>,
}

// ---- DescribeTopicAttributes ----------------------------------------------------------

/// Request of `DescribeTopicAttributes`: one topic of one instance.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeTopicAttributesRequest<'a> {
    pub instance_id: &'a str,
    pub topic_name: &'a str,
}

/// `Result` of `DescribeTopicAttributes` (`TopicAttributesResponse`): only the
/// configuration is read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TopicAttributesResponse {
    #[serde(default)]
    pub config: Option<TopicConfig>,
}

/// `Config` of a topic. `Retention` is the topic's `retention.ms` (the SDK model: "消息保留
/// 时间，单位ms"); the other fields may be `null` and are not read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TopicConfig {
    #[serde(default)]
    pub retention: Option<i64>,
}

/// `Result` of `DescribeGroupInfo`: an array, documented as possibly `null`.
pub type GroupInfoResult = Option<Vec<GroupInfoResponse>>;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupInfoResponse {
    /// "0" when the group could be described (a string here, unlike in
    /// `DescribeGroupOffsets`).
    #[serde(deserialize_with = "code_string")]
    pub error_code: String,
    /// `Dead` (the SDK: "the consumer group does not exist"), `Empty`, `Stable`, ...
    pub state: String,
    pub group: String,
    /// Only listed when the state is `Stable` and the protocol type `consumer`.
    #[serde(default, deserialize_with = "nullable")]
    pub members: Vec<GroupInfoMember>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupInfoMember {
    #[allow(dead_code)]
    pub member_id: String,
}

// ---- DescribeInstances ----------------------------------------------------------------

/// Request of `DescribeInstances`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeInstancesRequest {
    pub offset: i64,
    pub limit: i64,
}

/// `Result` of `DescribeInstances` (`InstanceResponse`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceResponse {
    pub total_count: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub instance_list: Vec<Instance>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Instance {
    pub instance_id: String,
    #[serde(default)]
    pub instance_name: String,
    /// The lifecycle code; what each value means is the provider's business.
    #[serde(default)]
    pub status: Option<i64>,
}

// ---- ModifyGroupOffsets / BatchModifyGroupOffsets -------------------------------------

/// `ModifyGroupOffsets.Strategy`: move every selected partition by `Shift` messages.
pub const STRATEGY_SHIFT: i64 = 0;
/// `ModifyGroupOffsets.Strategy`: move to the offset at `ShiftTimestamp` (ms; -2 is
/// earliest, -1 latest).
pub const STRATEGY_TIMESTAMP: i64 = 1;
/// `ShiftTimestamp` value meaning the earliest retained offset.
pub const SHIFT_TIMESTAMP_EARLIEST: i64 = -2;
/// `ShiftTimestamp` value meaning the log end.
pub const SHIFT_TIMESTAMP_LATEST: i64 = -1;

/// Request of `ModifyGroupOffsets`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModifyGroupOffsetsRequest<'a> {
    pub instance_id: &'a str,
    pub group: &'a str,
    pub strategy: i64,
    /// Required by the current documentation (older SDK text: "omit = all topics").
    pub topics: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shift: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shift_timestamp: Option<i64>,
    /// Narrows the reset to these partitions of every listed topic; absent: all of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<&'a [i32]>,
}

/// Request of `BatchModifyGroupOffsets`: explicit offsets for partitions of one topic.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchModifyGroupOffsetsRequest<'a> {
    pub group_name: &'a str,
    pub instance_id: &'a str,
    pub partitions: Vec<PartitionOffset>,
    pub topic_name: [&'a str; 1],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PartitionOffset {
    pub partition: i32,
    pub offset: i64,
}

/// `Result` of both reset operations: a business failure is a non-"0" `ReturnCode` in an
/// answer that is otherwise a success.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JgwOperateResponse {
    #[serde(deserialize_with = "code_string")]
    pub return_code: String,
    #[serde(default)]
    pub return_message: Option<String>,
    /// `{FlowId, RouteDTO}` or null; not needed.
    #[serde(default)]
    #[allow(dead_code)]
    pub data: Option<serde_json::Value>,
}

/// `ReturnCode` of a successful operation.
pub const RETURN_OK: &str = "0";

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> Body {
        serde_json::from_str::<Envelope>(json).unwrap().response
    }

    fn result<T: serde::de::DeserializeOwned>(json: &str) -> T {
        let b = body(json);
        assert!(b.error.is_none());
        serde_json::from_value(b.result.unwrap_or(serde_json::Value::Null)).unwrap()
    }

    #[test]
    fn group_offsets_reference_example() {
        let json = include_str!("../../../tests/fixtures/tencent/describe_group_offsets.json");
        assert_eq!(
            body(json).request_id.as_deref(),
            Some("9d1cf3ae-8cb3-4b4b-b5d5-2c6a0e3b9d10")
        );
        let r: GroupOffsetResponse = result(json);
        assert_eq!(r.total_count, 2);
        assert_eq!(r.topic_list.len(), 2);
        let p = &r.topic_list[0].partitions[0];
        assert_eq!(r.topic_list[0].topic, "orders");
        assert_eq!(
            (p.partition, p.offset, p.log_end_offset, p.lag, p.error_code),
            (0, 22689638, 207927929, Some(185238291), 0)
        );
        assert_eq!(r.topic_list[1].partitions[0].offset, 1200);
    }

    #[test]
    fn group_offsets_official_doc_example() {
        let json =
            include_str!("../../../tests/fixtures/tencent/describe_group_offsets_doc_example.json");
        let r: GroupOffsetResponse = result(json);
        assert_eq!(r.total_count, 1);
        assert_eq!(r.topic_list[0].topic, "topic-test");
        assert_eq!(r.topic_list[0].partitions[0].log_end_offset, 207927929);
    }

    #[test]
    fn group_offsets_uncommitted_and_failed_partitions_parse() {
        let json =
            include_str!("../../../tests/fixtures/tencent/describe_group_offsets_uncommitted.json");
        let r: GroupOffsetResponse = result(json);
        let parts = &r.topic_list[0].partitions;
        assert_eq!(parts[1].offset, -1);
        assert_eq!(parts[2].error_code, 3);
    }

    #[test]
    fn null_lists_are_empty() {
        let r: GroupOffsetResponse =
            result(r#"{"Response":{"Result":{"TotalCount":0,"TopicList":null},"RequestId":"x"}}"#);
        assert!(r.topic_list.is_empty());
        let r: GroupResponse = result(
            r#"{"Response":{"Result":{"TotalCount":0,"GroupList":null,"GroupCountQuota":50},"RequestId":"x"}}"#,
        );
        assert!(r.group_list.is_empty());
    }

    #[test]
    fn offsets_beyond_32_bits_parse() {
        let r: GroupOffsetResponse = result(
            r#"{"Response":{"Result":{"TotalCount":1,"TopicList":[{"Topic":"t","Partitions":[
            {"Partition":0,"Offset":9000000000,"Metadata":"","ErrorCode":0,"LogEndOffset":9000000005,"Lag":5}]}]},"RequestId":"x"}}"#,
        );
        assert_eq!(r.topic_list[0].partitions[0].offset, 9_000_000_000);
    }

    #[test]
    fn describe_group_reference_example() {
        let r: GroupResponse = result(include_str!(
            "../../../tests/fixtures/tencent/describe_group.json"
        ));
        assert_eq!(r.total_count, 1);
        assert_eq!(r.group_list[0].group, "test-group");
    }

    #[test]
    fn describe_group_info_examples() {
        let r: GroupInfoResult = result(include_str!(
            "../../../tests/fixtures/tencent/describe_group_info.json"
        ));
        let g = &r.unwrap()[0];
        assert_eq!((g.error_code.as_str(), g.state.as_str()), ("0", "Stable"));
        assert_eq!(g.group, "orders-consumer");
        assert_eq!(g.members.len(), 2);

        let r: GroupInfoResult = result(include_str!(
            "../../../tests/fixtures/tencent/describe_group_info_null.json"
        ));
        assert!(r.is_none());

        let r: GroupInfoResult = result(include_str!(
            "../../../tests/fixtures/tencent/describe_group_info_dead.json"
        ));
        assert_eq!(r.unwrap()[0].state, "Dead");

        // A numeric ErrorCode is taken as its text.
        let r: GroupInfoResult = result(
            r#"{"Response":{"Result":[{"ErrorCode":0,"State":"Empty","Group":"g","Members":null}],"RequestId":"x"}}"#,
        );
        assert_eq!(r.unwrap()[0].error_code, "0");
    }

    #[test]
    fn describe_instances_reference_example() {
        let r: InstanceResponse = result(include_str!(
            "../../../tests/fixtures/tencent/describe_instances.json"
        ));
        assert_eq!(r.total_count, 1);
        let i = &r.instance_list[0];
        assert_eq!(
            (i.instance_id.as_str(), i.instance_name.as_str(), i.status),
            ("instance-will-s", "treTest", Some(1))
        );
    }

    #[test]
    fn operate_responses() {
        let r: JgwOperateResponse = result(include_str!(
            "../../../tests/fixtures/tencent/modify_group_offsets.json"
        ));
        assert_eq!(r.return_code, RETURN_OK);
        let r: JgwOperateResponse = result(include_str!(
            "../../../tests/fixtures/tencent/modify_group_offsets_failed.json"
        ));
        assert_eq!(r.return_code, "1");
        assert!(r.return_message.unwrap().contains("out of range"));
    }

    #[test]
    fn error_envelopes() {
        let b = body(include_str!(
            "../../../tests/fixtures/tencent/error_signature_failure.json"
        ));
        let e = b.error.unwrap();
        assert_eq!(e.code, "AuthFailure.SignatureFailure");
        assert!(e.message.starts_with("The provided credentials"));
        assert_eq!(
            b.request_id.as_deref(),
            Some("ed93f3cb-f35e-473f-b9f3-0d451b8b79c6")
        );
        assert!(b.result.is_none());
        let b = body(include_str!(
            "../../../tests/fixtures/tencent/error_request_limit.json"
        ));
        assert_eq!(b.error.unwrap().code, "RequestLimitExceeded");
    }

    #[test]
    fn wrong_shapes_fail() {
        let b =
            body(r#"{"Response":{"Result":{"TotalCount":"2","TopicList":"x"},"RequestId":"x"}}"#);
        assert!(serde_json::from_value::<GroupOffsetResponse>(b.result.unwrap()).is_err());
        assert!(serde_json::from_str::<Envelope>(r#"{"Result":{}}"#).is_err());
        let b = body(r#"{"Response":{"Result":{"ReturnMessage":"ok"},"RequestId":"x"}}"#);
        assert!(serde_json::from_value::<JgwOperateResponse>(b.result.unwrap()).is_err());
    }

    #[test]
    fn requests_serialize_compactly_in_field_order() {
        let r = DescribeGroupOffsetsRequest {
            instance_id: "ckafka-abcd1234",
            group: "orders-consumer",
            offset: 0,
            limit: 50,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"InstanceId":"ckafka-abcd1234","Group":"orders-consumer","Offset":0,"Limit":50}"#
        );
        let topics = vec!["orders".to_string()];
        let r = ModifyGroupOffsetsRequest {
            instance_id: "ckafka-abcd1234",
            group: "orders-consumer",
            strategy: STRATEGY_TIMESTAMP,
            topics: &topics,
            shift: None,
            shift_timestamp: Some(SHIFT_TIMESTAMP_LATEST),
            partitions: None,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"InstanceId":"ckafka-abcd1234","Group":"orders-consumer","Strategy":1,"Topics":["orders"],"ShiftTimestamp":-1}"#
        );
        let r = BatchModifyGroupOffsetsRequest {
            group_name: "g",
            instance_id: "i",
            partitions: vec![PartitionOffset {
                partition: 2,
                offset: 77,
            }],
            topic_name: ["t"],
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"GroupName":"g","InstanceId":"i","Partitions":[{"Partition":2,"Offset":77}],"TopicName":["t"]}"#
        );
        let r = DescribeGroupInfoRequest {
            instance_id: "i",
            group_list: &["g"],
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"InstanceId":"i","GroupList":["g"]}"#
        );
    }
}
