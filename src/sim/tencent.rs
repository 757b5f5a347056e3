//! Simulated Tencent API (placeholder).

use super::{RawRequest, SimResponse, SimState};

/// Answers one request.
pub fn handle(_state: &SimState, _req: &RawRequest) -> SimResponse {
    SimResponse::json(501, &serde_json::json!({"error": "not implemented"}))
}

/// Tencent's documented per-action limits, requests per second.
pub fn documented_rate_limit(action: &str) -> f64 {
    match action {
        "DescribeInstances" | "DescribeInstancesDetail" => 20.0,
        _ => 100.0,
    }
}
