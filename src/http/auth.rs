//! Bearer credentials on plain HTTP (`/v1/*`, the Control UI's bootstrap
//! config): the gateway's token or password, or for UI reads a paired
//! device's operator token. Failures count against the same failed-auth
//! limiter as WebSocket connects, with the same loopback rule: a local
//! client without a browser `Origin` is slowed, never locked out.

use std::time::Instant;

use serde_json::json;

use super::gate::Client;
use super::head::Head;
use super::response::Reply;
use crate::auth::ct_eq;
use crate::config::AuthMode;
use crate::state::{Live, Shared};
use crate::store::devices::token_hash;

/// What a bearer credential may stand for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// The gateway's shared secret only.
    Secret,
    /// The secret, or a paired device's unrevoked operator token.
    SecretOrDevice,
}

/// The bearer token of a request, if any.
pub fn bearer(h: &Head) -> Option<&str> {
    let v = h.header("authorization")?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

/// `Ok` when the request carries an accepted credential; otherwise the
/// 401 (or 429 while locked out) to answer, in the OpenAI error shape.
pub fn check(
    shared: &Shared,
    live: &Live,
    h: &Head,
    client: &Client,
    accept: Accept,
) -> Result<(), Reply> {
    let exempt = client.local && h.header("origin").is_none();
    let now = Instant::now();
    if let Err(ms) = shared.auth_lockout(client.ip, exempt, now) {
        return Err(rate_limited(ms.div_ceil(1000)));
    }
    let given = bearer(h);
    if given.is_some_and(|g| accepted(shared, live, g, accept)) {
        return Ok(());
    }
    if live.secret.mode == AuthMode::None && given.is_none() {
        return Ok(());
    }
    let wait = shared.auth_failure(client.ip, exempt, now);
    if !wait.is_zero() {
        std::thread::sleep(wait);
    }
    Err(unauthorized())
}

fn accepted(shared: &Shared, live: &Live, given: &str, accept: Accept) -> bool {
    let want = match live.secret.mode {
        AuthMode::Token => live.secret.token.as_deref(),
        AuthMode::Password => live.secret.password.as_deref(),
        AuthMode::None => None,
    };
    if want.is_some_and(|w| !w.is_empty() && ct_eq(given.as_bytes(), w.as_bytes())) {
        return true;
    }
    if accept != Accept::SecretOrDevice {
        return false;
    }
    let hash = token_hash(given);
    shared.devices().read(|d| {
        d.paired.values().any(|dev| {
            dev.tokens.get("operator").is_some_and(|t| {
                t.revoked_at_ms.is_none() && ct_eq(t.token_sha256.as_bytes(), hash.as_bytes())
            })
        })
    })
}

pub fn unauthorized() -> Reply {
    Reply::json(
        401,
        json!({"error": {"message": "Unauthorized", "type": "unauthorized"}}),
    )
}

pub fn rate_limited(retry_after_secs: u64) -> Reply {
    Reply {
        retry_after: Some(retry_after_secs.clamp(1, u64::from(u32::MAX)) as u32),
        ..Reply::json(
            429,
            json!({"error": {"message": "Too many failed authentication attempts. Please try again later.",
                             "type": "rate_limited"}}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_in_any_scheme_case() {
        let head = |v: &str| Head {
            headers: vec![("authorization".into(), v.into())],
            ..Head::default()
        };
        assert_eq!(bearer(&head("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&head("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&head("Basic abc")), None);
        assert_eq!(bearer(&head("Bearer ")), None);
    }
}
