//! What kafka-cloud-lag-exporter and its simulator both need to know about the two clouds'
//! management APIs, as pure facts and functions: the [`Cloud`] enum, each cloud's request
//! signing (staged, tested against the vendors' published vectors) and its table of API
//! actions with their documented rate limits.
//!
//! Nothing here does I/O, reads a clock or a random source. The exporter's
//! `providers/<cloud>/` builds on it and is the only part of the exporter that uses it; the
//! simulator verifies and throttles with the same tables, so the two cannot disagree.

pub mod alibaba;
pub mod tencent;

use std::fmt;

use serde::{Deserialize, Serialize};

/// The managed-Kafka clouds we support.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    /// Alibaba Cloud ApsaraMQ for Kafka ("alikafka").
    Alibaba,
    /// Tencent Cloud CKafka.
    Tencent,
}

impl Cloud {
    /// Both clouds, in label order.
    pub const ALL: [Cloud; 2] = [Cloud::Alibaba, Cloud::Tencent];

    /// The value of the `cloud` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Alibaba => "alibaba",
            Cloud::Tencent => "tencent",
        }
    }

    /// The cloud's API actions.
    pub fn actions(self) -> &'static [Action] {
        match self {
            Cloud::Alibaba => alibaba::ACTIONS,
            Cloud::Tencent => tencent::ACTIONS,
        }
    }

    /// One of the cloud's API actions by name.
    pub fn action(self, name: &str) -> Option<&'static Action> {
        self.actions().iter().find(|a| a.name == name)
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One API action the exporter calls.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Action {
    pub name: &'static str,
    /// The cloud's documented limit in requests per second per account ("默认接口请求频率限制"
    /// of each Tencent API page); `None` where the cloud publishes none.
    pub documented_limit: Option<f64>,
    /// Whether the action changes state (only `reset-offsets` sends these).
    pub writes: bool,
}

impl Action {
    pub(crate) const fn read(name: &'static str, documented_limit: Option<f64>) -> Action {
        Action {
            name,
            documented_limit,
            writes: false,
        }
    }

    pub(crate) const fn write(name: &'static str, documented_limit: Option<f64>) -> Action {
        Action {
            name,
            documented_limit,
            writes: true,
        }
    }
}
