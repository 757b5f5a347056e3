//! Tencent Cloud CKafka (API 2019-08-19): request signing and the actions the exporter
//! calls, with their documented rate limits.

pub mod sign;
pub mod sts;

use crate::Action;

/// `X-TC-Version` of every CKafka call.
pub const API_VERSION: &str = "2019-08-19";
/// The signing service name, whichever host (regional, intl, VPC) is used.
pub const SERVICE: &str = "ckafka";

pub const DESCRIBE_GROUP_OFFSETS: &str = "DescribeGroupOffsets";
pub const DESCRIBE_GROUP: &str = "DescribeGroup";
pub const DESCRIBE_GROUP_INFO: &str = "DescribeGroupInfo";
pub const DESCRIBE_INSTANCES: &str = "DescribeInstances";
pub const MODIFY_GROUP_OFFSETS: &str = "ModifyGroupOffsets";
pub const BATCH_MODIFY_GROUP_OFFSETS: &str = "BatchModifyGroupOffsets";
pub const FETCH_MESSAGE_LIST_BY_OFFSET: &str = "FetchMessageListByOffset";
pub const DESCRIBE_TOPIC_ATTRIBUTES: &str = "DescribeTopicAttributes";

/// The limits are the "默认接口请求频率限制" of each API's documentation page;
/// `BatchModifyGroupOffsets` has none published.
pub const ACTIONS: &[Action] = &[
    Action::read(DESCRIBE_GROUP_OFFSETS, Some(100.0)),
    Action::read(DESCRIBE_GROUP, Some(100.0)),
    Action::read(DESCRIBE_GROUP_INFO, Some(100.0)),
    Action::read(DESCRIBE_INSTANCES, Some(20.0)),
    // Returns message metadata (with `SinglePartitionRecordNumber` 1, the message at an
    // offset) without key or value, unlike `FetchMessageByOffset`.
    Action::read(FETCH_MESSAGE_LIST_BY_OFFSET, Some(1.0)),
    // A topic's configuration, its retention (`Config.Retention`, ms) among it.
    Action::read(DESCRIBE_TOPIC_ATTRIBUTES, Some(100.0)),
    Action::write(MODIFY_GROUP_OFFSETS, Some(100.0)),
    Action::write(BATCH_MODIFY_GROUP_OFFSETS, None),
];
