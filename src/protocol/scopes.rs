//! Operator scopes: what a grant covers, and the error a missing scope
//! answers with. Which scope a method needs is declared in its entry of
//! the method table.

use serde_json::json;

use super::{clip, ErrorShape};

pub const SCOPE_READ: &str = "operator.read";
pub const SCOPE_WRITE: &str = "operator.write";
pub const SCOPE_ADMIN: &str = "operator.admin";
pub const SCOPE_PAIRING: &str = "operator.pairing";

/// Admin covers everything; write covers read.
pub fn has_scope(granted: &[String], required: &str) -> bool {
    granted
        .iter()
        .any(|g| g == required || g == SCOPE_ADMIN || (required == SCOPE_READ && g == SCOPE_WRITE))
}

pub fn missing_scope(required: &str, protocol: u64) -> ErrorShape {
    let code = if protocol >= 4 {
        "FORBIDDEN"
    } else {
        "INVALID_REQUEST"
    };
    ErrorShape::new(code, format!("missing scope: {required}")).with_details(json!({
        "code": "MISSING_SCOPE",
        "missingScope": required,
        "requiredScopes": [required],
    }))
}

pub fn unknown_method(method: &str) -> ErrorShape {
    ErrorShape::invalid(format!("unknown method: {}", clip(method, 128)))
}
