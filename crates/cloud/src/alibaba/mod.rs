//! Alibaba Cloud ApsaraMQ for Kafka ("alikafka", API 2019-09-16): request signing and the
//! actions the exporter calls.

pub mod sign;
pub mod sts;

use crate::Action;

/// The alikafka API version every request names.
pub const API_VERSION: &str = "2019-09-16";

pub const GET_CONSUMER_PROGRESS: &str = "GetConsumerProgress";
pub const GET_CONSUMER_LIST: &str = "GetConsumerList";
pub const GET_INSTANCE_LIST: &str = "GetInstanceList";
pub const UPDATE_CONSUMER_OFFSET: &str = "UpdateConsumerOffset";

/// Alibaba publishes no rate limit for any of these operations (the alikafka SDK's only
/// limits are for other operations, e.g. `CreateTopic` 1/s).
pub const ACTIONS: &[Action] = &[
    Action::read(GET_CONSUMER_PROGRESS, None),
    Action::read(GET_CONSUMER_LIST, None),
    Action::read(GET_INSTANCE_LIST, None),
    Action::write(UPDATE_CONSUMER_OFFSET, None),
];
