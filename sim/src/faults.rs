//! Faults the simulator injects: scripted (the next N matching requests) for tests, or
//! random with a seeded probability for the demo and soak runs.

use std::time::Duration;

use kcle_cloud::Cloud;

/// What goes wrong with a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// An HTTP 5xx answer with the cloud's internal-error body (Tencent: HTTP 200 with
    /// `InternalError`, as the real service answers).
    ServerError,
    /// A bare HTTP status with a non-JSON body, as a load balancer or gateway answers.
    HttpStatus(u16),
    /// The cloud's throttling answer (Alibaba `Throttling.User` HTTP 400 with
    /// `x-acs-retry-after`; Tencent `RequestLimitExceeded` HTTP 200).
    Throttle,
    /// A cloud error with this code; the handler picks the status and message.
    ApiError(String),
    /// The first part of a valid JSON answer, cut short.
    Truncated,
    /// An answer that is valid JSON of the wrong shape.
    WrongShape,
    /// Answer normally after this delay.
    Delay(Duration),
    /// Never answer; the client has to time out.
    Hang,
    /// Process the request normally, then answer HTTP 200 with nothing but the RequestId:
    /// a body that shows no failure but confirms nothing either.
    Unconfirmed,
}

impl Fault {
    /// The fault's name in the request log's outcome (`fault:<name>`).
    pub fn name(&self) -> &'static str {
        match self {
            Fault::ServerError => "server_error",
            Fault::HttpStatus(_) => "http_status",
            Fault::Throttle => "throttle",
            Fault::ApiError(_) => "api_error",
            Fault::Truncated => "truncated",
            Fault::WrongShape => "wrong_shape",
            Fault::Delay(_) => "delay",
            Fault::Hang => "hang",
            Fault::Unconfirmed => "unconfirmed",
        }
    }
}

/// When a fault applies.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRule {
    pub cloud: Option<Cloud>,
    /// API action, e.g. `GetConsumerProgress`; `None` matches every action.
    pub action: Option<String>,
    /// Consumer group; `None` matches every group (and requests without one).
    pub group: Option<String>,
    pub fault: Fault,
    /// How many more requests this rule applies to; `None` forever.
    pub remaining: Option<u32>,
    /// How many matching requests pass untouched before the rule applies (e.g. 1: the
    /// second write fails, the first does not).
    pub skip: u32,
    /// Chance that a matching request gets the fault (1.0 always).
    pub probability: f64,
}

impl FaultRule {
    /// A rule that applies to the next `times` matching requests.
    pub fn times(fault: Fault, times: u32) -> Self {
        FaultRule {
            cloud: None,
            action: None,
            group: None,
            fault,
            remaining: Some(times),
            skip: 0,
            probability: 1.0,
        }
    }

    /// A rule that applies forever with `probability`.
    pub fn random(fault: Fault, probability: f64) -> Self {
        FaultRule {
            cloud: None,
            action: None,
            group: None,
            fault,
            remaining: None,
            skip: 0,
            probability,
        }
    }

    pub fn cloud(mut self, cloud: Cloud) -> Self {
        self.cloud = Some(cloud);
        self
    }

    pub fn action(mut self, action: &str) -> Self {
        self.action = Some(action.to_string());
        self
    }

    pub fn group(mut self, group: &str) -> Self {
        self.group = Some(group.to_string());
        self
    }

    /// Lets the first `n` matching requests through untouched.
    pub fn after(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }

    fn matches(&self, cloud: Cloud, action: &str, group: Option<&str>) -> bool {
        self.cloud.is_none_or(|c| c == cloud)
            && self.action.as_deref().is_none_or(|a| a == action)
            && self.group.as_deref().is_none_or(|g| Some(g) == group)
            && self.remaining != Some(0)
    }
}

/// The active fault rules, checked in order; the first that matches and fires wins.
#[derive(Debug)]
pub struct Faults {
    rules: Vec<FaultRule>,
    rng: fastrand::Rng,
}

impl Faults {
    pub fn new(seed: u64) -> Self {
        Faults {
            rules: Vec::new(),
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    pub fn push(&mut self, rule: FaultRule) {
        self.rules.push(rule);
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// The fault for this request, if any; consumes one use of a counted rule.
    pub fn pick(&mut self, cloud: Cloud, action: &str, group: Option<&str>) -> Option<Fault> {
        for rule in &mut self.rules {
            if !rule.matches(cloud, action, group) {
                continue;
            }
            if rule.skip > 0 {
                rule.skip -= 1;
                continue;
            }
            if rule.probability < 1.0 && self.rng.f64() >= rule.probability {
                continue;
            }
            if let Some(n) = rule.remaining.as_mut() {
                *n -= 1;
            }
            return Some(rule.fault.clone());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_rules_run_out_and_filters_apply() {
        let mut f = Faults::new(1);
        f.push(
            FaultRule::times(Fault::Throttle, 2)
                .cloud(Cloud::Tencent)
                .action("DescribeGroupOffsets")
                .group("g1"),
        );
        assert_eq!(
            f.pick(Cloud::Alibaba, "DescribeGroupOffsets", Some("g1")),
            None
        );
        assert_eq!(
            f.pick(Cloud::Tencent, "DescribeGroupOffsets", Some("g2")),
            None
        );
        assert_eq!(
            f.pick(Cloud::Tencent, "DescribeGroupOffsets", Some("g1")),
            Some(Fault::Throttle)
        );
        assert_eq!(
            f.pick(Cloud::Tencent, "DescribeGroupOffsets", Some("g1")),
            Some(Fault::Throttle)
        );
        assert_eq!(
            f.pick(Cloud::Tencent, "DescribeGroupOffsets", Some("g1")),
            None
        );
    }

    #[test]
    fn a_rule_can_let_the_first_matches_through() {
        let mut f = Faults::new(1);
        f.push(
            FaultRule::times(Fault::ServerError, 1)
                .action("UpdateConsumerOffset")
                .after(1),
        );
        let mut pick = |action| f.pick(Cloud::Alibaba, action, Some("g"));
        assert_eq!(pick("GetConsumerProgress"), None, "not counted");
        assert_eq!(pick("UpdateConsumerOffset"), None, "the first passes");
        assert_eq!(pick("UpdateConsumerOffset"), Some(Fault::ServerError));
        assert_eq!(pick("UpdateConsumerOffset"), None, "used up");
    }

    #[test]
    fn random_rules_fire_at_about_their_rate() {
        let mut f = Faults::new(7);
        f.push(FaultRule::random(Fault::ServerError, 0.3));
        let hits = (0..10_000)
            .filter(|_| {
                f.pick(Cloud::Alibaba, "GetConsumerProgress", None)
                    .is_some()
            })
            .count();
        assert!((2_700..3_300).contains(&hits), "{hits}");
    }
}
