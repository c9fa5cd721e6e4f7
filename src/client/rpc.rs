//! Calls on connections that were asked for just the scopes they need.
//!
//! The gateway grants a client the scopes it asks for in `connect`, so
//! asking for `operator.admin` everywhere would work and would hide every
//! scope mistake. Instead each call names the scopes it needs; the open
//! connection is reused while it was asked for all of them, and otherwise
//! closed and replaced by one asked for exactly them. A command that knows
//! its whole sequence of calls names the union once and keeps one
//! connection, as `nodes invoke` does for `node.list` then `node.invoke`.

use serde_json::Value;

use super::link::{open, Failure, Hello, Session};
use crate::config::{ClientArgs, ClientTarget};

pub(super) struct Rpc<'a> {
    target: &'a ClientTarget,
    args: &'a ClientArgs,
    open: Option<(Session, Vec<String>)>,
}

impl<'a> Rpc<'a> {
    pub(super) fn new(target: &'a ClientTarget, args: &'a ClientArgs) -> Rpc<'a> {
        Rpc {
            target,
            args,
            open: None,
        }
    }

    /// `method` with `params` on a connection granted `scopes`.
    pub(super) fn call(
        &mut self,
        scopes: &[&str],
        method: &str,
        params: Option<&Value>,
    ) -> Result<Value, Failure> {
        self.request(scopes, method, params, false)
    }

    /// `call`, waiting past an `accepted` answer with `expect_final`.
    pub(super) fn request(
        &mut self,
        scopes: &[&str],
        method: &str,
        params: Option<&Value>,
        expect_final: bool,
    ) -> Result<Value, Failure> {
        let session = self.session(scopes)?;
        session.request(method, params, expect_final)
    }

    fn session(&mut self, scopes: &[&str]) -> Result<&mut Session, Failure> {
        let covered = self
            .open
            .as_ref()
            .is_some_and(|(_, asked)| scopes.iter().all(|s| asked.iter().any(|a| a == s)));
        if !covered {
            if let Some((old, _)) = self.open.take() {
                old.close();
            }
            let hello = Hello {
                mode: "cli",
                scopes: asked(scopes),
            };
            let session = open(self.target, self.args, &hello)?;
            self.open = Some((session, hello.scopes));
        }
        Ok(&mut self.open.as_mut().expect("opened above").0)
    }
}

impl Drop for Rpc<'_> {
    fn drop(&mut self) {
        if let Some((session, _)) = self.open.take() {
            session.close();
        }
    }
}

/// The scopes as sent: each once, sorted, so a log line or a capture of
/// the `connect` does not depend on the order the code named them in.
pub(super) fn asked(scopes: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_asked_once_each_in_order() {
        assert_eq!(
            asked(&["operator.write", "operator.read", "operator.write"]),
            ["operator.read", "operator.write"]
        );
        assert!(asked(&[]).is_empty());
    }
}
