//! Simulated Alibaba API (placeholder).

use super::{RawRequest, SimResponse, SimState};

/// Answers one request.
pub fn handle(_state: &SimState, _req: &RawRequest) -> SimResponse {
    SimResponse::json(501, &serde_json::json!({"error": "not implemented"}))
}
