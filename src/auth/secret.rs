//! The shared secret: what the gateway holds, how a `connect` is checked
//! against it (in constant time), and the errors a failure answers with.
//! Secrets are never logged.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::config::{check_stored_token, AuthMode, Settings, TOKEN_FILE};
use crate::error::Error;
use crate::protocol::{ConnectAuth, ErrorShape};
use crate::sys;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub mode: AuthMode,
    pub token: Option<String>,
    pub password: Option<String>,
}

impl Secret {
    /// The secret clients must present. A token mode without a configured
    /// token uses the generated one in the state dir, created on first use;
    /// the second value says where it is and whether it was just created.
    pub fn load(s: &Settings) -> Result<(Secret, Option<(PathBuf, bool)>), Error> {
        let mut token = s.token.clone();
        let mut generated = None;
        if s.auth_mode == AuthMode::Token && token.is_none() {
            let path = s.state_dir.join(TOKEN_FILE);
            let (t, created) = load_or_create_token(&path)?;
            token = Some(t);
            generated = Some((path, created));
        }
        let secret = Secret {
            mode: s.auth_mode,
            token,
            password: s.password.clone(),
        };
        // A hook token is handed to other systems; were it the gateway's
        // secret, every webhook sender would hold the keys to the gateway.
        if let Some(h) = s.http.hooks.token.as_deref() {
            let same = |g: &Option<String>| {
                g.as_deref()
                    .is_some_and(|g| ct_eq(g.as_bytes(), h.as_bytes()))
            };
            if same(&secret.token) || same(&secret.password) {
                return Err(Error::config(format!(
                    "{}: 'hooks.token' must differ from the gateway's token and password",
                    s.config_path.display()
                )));
            }
        }
        Ok((secret, generated))
    }
}

/// Reads the generated token, or creates one: 32 random bytes as hex,
/// written to a temporary file (0600), synced, then renamed into place so a
/// crash never leaves a half-written token. A blank file is replaced; a
/// weak token (short, a placeholder) is refused rather than replaced, as
/// someone wrote it there on purpose and clients may be using it.
fn load_or_create_token(path: &Path) -> Result<(String, bool), Error> {
    match fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => {
            let token = t.trim();
            check_stored_token(path, token)?;
            return Ok((token.to_string(), false));
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("reading '{}'", path.display()), e)),
    }
    let token = sys::random_hex(32).map_err(|e| Error::io("generating a token", e))?;
    crate::store::write_atomic(path, format!("{token}\n").as_bytes(), 0o600)
        .map_err(|e| Error::io(format!("writing '{}'", path.display()), e))?;
    Ok((token, true))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    TokenMissing,
    TokenMismatch,
    PasswordMissing,
    PasswordMismatch,
}

impl Failure {
    /// A missing credential is a misconfigured client, not a guess: it does
    /// not count toward the limiter.
    pub fn counts(self) -> bool {
        matches!(self, Failure::TokenMismatch | Failure::PasswordMismatch)
    }

    pub fn to_error(self) -> ErrorShape {
        let (code, reason, message, step) = match self {
            Failure::TokenMissing => (
                "AUTH_TOKEN_MISSING",
                "token_missing",
                "unauthorized: gateway token missing (provide the gateway token)",
                "update_auth_configuration",
            ),
            Failure::TokenMismatch => (
                "AUTH_TOKEN_MISMATCH",
                "token_mismatch",
                "unauthorized: gateway token mismatch (use the gateway's current token)",
                "update_auth_credentials",
            ),
            Failure::PasswordMissing => (
                "AUTH_PASSWORD_MISSING",
                "password_missing",
                "unauthorized: gateway password missing (provide the gateway password)",
                "update_auth_configuration",
            ),
            Failure::PasswordMismatch => (
                "AUTH_PASSWORD_MISMATCH",
                "password_mismatch",
                "unauthorized: gateway password mismatch (use the gateway's current password)",
                "update_auth_credentials",
            ),
        };
        ErrorShape::invalid(message).with_details(json!({
            "code": code,
            "authReason": reason,
            "canRetryWithDeviceToken": false,
            "recommendedNextStep": step,
        }))
    }
}

pub fn check(secret: &Secret, given: &ConnectAuth) -> Result<(), Failure> {
    let (want, given, missing, mismatch) = match secret.mode {
        AuthMode::None => return Ok(()),
        AuthMode::Token => (
            &secret.token,
            &given.token,
            Failure::TokenMissing,
            Failure::TokenMismatch,
        ),
        AuthMode::Password => (
            &secret.password,
            &given.password,
            Failure::PasswordMissing,
            Failure::PasswordMismatch,
        ),
    };
    let want = want.as_deref().unwrap_or("");
    match given.as_deref().filter(|s| !s.is_empty()) {
        None => Err(missing),
        // A gateway without a secret in a secret mode admits nobody.
        Some(g) if !want.is_empty() && ct_eq(g.as_bytes(), want.as_bytes()) => Ok(()),
        Some(_) => Err(mismatch),
    }
}

/// Equality whose running time depends only on the lengths, so a guesser
/// cannot learn a secret's prefix from response times.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= u64::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

pub fn rate_limited(retry_after_ms: u64) -> ErrorShape {
    let mut e =
        ErrorShape::invalid("unauthorized: too many failed authentication attempts (retry later)")
            .with_details(json!({
                "code": "AUTH_RATE_LIMITED",
                "authReason": "rate_limited",
                "canRetryWithDeviceToken": false,
                "recommendedNextStep": "wait_then_retry",
            }));
    e.retryable = Some(true);
    e.retry_after_ms = Some(retry_after_ms);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(t: &str) -> Secret {
        Secret {
            mode: AuthMode::Token,
            token: Some(t.into()),
            password: None,
        }
    }

    fn given(token: Option<&str>, password: Option<&str>) -> ConnectAuth {
        ConnectAuth {
            token: token.map(String::from),
            password: password.map(String::from),
            ..ConnectAuth::default()
        }
    }

    #[test]
    fn token_mode_distinguishes_missing_from_mismatch() {
        let s = token("abc");
        assert_eq!(check(&s, &given(Some("abc"), None)), Ok(()));
        assert_eq!(check(&s, &given(None, None)), Err(Failure::TokenMissing));
        assert_eq!(
            check(&s, &given(Some(""), None)),
            Err(Failure::TokenMissing)
        );
        assert_eq!(
            check(&s, &given(Some("abd"), None)),
            Err(Failure::TokenMismatch)
        );
        assert_eq!(
            check(&s, &given(Some("abcd"), None)),
            Err(Failure::TokenMismatch)
        );
        // A password does not satisfy token mode.
        assert_eq!(
            check(&s, &given(None, Some("abc"))),
            Err(Failure::TokenMissing)
        );
    }

    #[test]
    fn password_and_none_modes() {
        let s = Secret {
            mode: AuthMode::Password,
            token: None,
            password: Some("pw".into()),
        };
        assert_eq!(check(&s, &given(None, Some("pw"))), Ok(()));
        assert_eq!(
            check(&s, &given(None, Some("px"))),
            Err(Failure::PasswordMismatch)
        );
        assert_eq!(
            check(&s, &given(Some("pw"), None)),
            Err(Failure::PasswordMissing)
        );
        let none = Secret {
            mode: AuthMode::None,
            token: None,
            password: None,
        };
        assert_eq!(check(&none, &given(None, None)), Ok(()));
    }

    #[test]
    fn a_gateway_without_a_token_admits_nobody_in_token_mode() {
        let s = Secret {
            mode: AuthMode::Token,
            token: Some(String::new()),
            password: None,
        };
        assert_eq!(
            check(&s, &given(Some("x"), None)),
            Err(Failure::TokenMismatch)
        );
    }

    #[test]
    fn failure_errors_have_the_reference_shape() {
        let e = Failure::TokenMismatch.to_error().to_json();
        assert_eq!(e["code"], "INVALID_REQUEST");
        assert!(e["message"]
            .as_str()
            .unwrap()
            .starts_with("unauthorized: gateway token mismatch"));
        assert_eq!(e["details"]["code"], "AUTH_TOKEN_MISMATCH");
        assert_eq!(e["details"]["canRetryWithDeviceToken"], false);
        assert_eq!(
            e["details"]["recommendedNextStep"],
            "update_auth_credentials"
        );
        assert!(!Failure::TokenMissing.counts());
        assert!(Failure::TokenMismatch.counts());
        let r = rate_limited(1234).to_json();
        assert_eq!(r["retryable"], true);
        assert_eq!(r["retryAfterMs"], 1234);
        assert_eq!(r["details"]["code"], "AUTH_RATE_LIMITED");
    }

    #[test]
    fn a_blank_token_file_is_replaced_and_a_weak_one_refused() {
        let dir = std::env::temp_dir().join(format!("clawgate-secret-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join(TOKEN_FILE);
        fs::write(&path, " \n").expect("write");
        let (made, created) = load_or_create_token(&path).expect("blank is replaced");
        assert!(created && made.len() == 64, "{made}");
        assert_eq!(load_or_create_token(&path).expect("reread"), (made, false));
        for weak in ["x\n", "ChangeMe", "0123456789abcde"] {
            fs::write(&path, weak).expect("write");
            let e = load_or_create_token(&path).expect_err(weak);
            assert_eq!(e.exit_code(), 78, "{e}");
            assert!(
                e.to_string()
                    .starts_with(&format!("'{}': the stored token is ", path.display())),
                "{e}"
            );
            assert_eq!(fs::read_to_string(&path).expect("kept"), weak);
        }
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn ct_eq_is_equality() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"secret", b"secret"));
        assert!(!ct_eq(b"secret", b"secreT"));
        assert!(!ct_eq(b"secret", b"secret1"));
        assert!(!ct_eq(b"", b"a"));
    }
}
