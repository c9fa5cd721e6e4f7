//! Phase two of the commands with actions (`devices`, `nodes` and
//! `sessions`): the action word, the id or name after it, and the flags
//! only some actions take. Phase one accepts every flag of the command in
//! any order (`clawgate nodes --json invoke ...`); here an action refuses
//! the flags that mean nothing to it, as sudo-rs's typed actions do, so
//! `devices list --role node` is an error and not a silently ignored
//! filter. `devices` and `nodes` are finished here; `sessions` in `agent`.

use std::ffi::OsString;

use super::{
    client_args, unexpected_argument, unknown_option, DeviceAction, DeviceVerb, DevicesArgs,
    InvokeArgs, NodeAction, NodeVerb, NodesArgs, Raw, SessionVerb, Sub, DEFAULT_TIMEOUT_MS,
};
use crate::error::Error;
use crate::words::expected;

/// What `node.invoke` is told to wait for the node unless
/// `--invoke-timeout` says: the gateway's own default.
pub const DEFAULT_INVOKE_TIMEOUT_MS: u64 = 30_000;

/// The action of `devices`, `nodes` or `sessions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Device(DeviceVerb),
    Node(NodeVerb),
    Session(SessionVerb),
}

impl Verb {
    pub fn sub(self) -> Sub {
        match self {
            Verb::Device(_) => Sub::Devices,
            Verb::Node(_) => Sub::Nodes,
            Verb::Session(_) => Sub::Sessions,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Verb::Device(v) => v.as_str(),
            Verb::Node(v) => v.as_str(),
            Verb::Session(v) => v.as_str(),
        }
    }

    /// `devices approve`, as messages name it after `clawgate `.
    pub fn command_line(self) -> String {
        format!("{} {}", self.sub().name(), self.word())
    }

    /// The flags of this action beyond the client and location ones.
    pub fn flags(self) -> &'static [&'static str] {
        match self {
            Verb::Device(DeviceVerb::Rotate) => &["role", "scope"],
            Verb::Device(DeviceVerb::Revoke) => &["role"],
            Verb::Node(NodeVerb::Invoke) => super::NODES_FLAGS,
            Verb::Session(v) => session_flags(v),
            _ => &[],
        }
    }

    /// What the word after the action names, for the message when it is
    /// missing; `None` when the action takes none.
    fn operand(self) -> Option<&'static str> {
        use {DeviceVerb as D, NodeVerb as N};
        match self {
            Verb::Device(D::Approve | D::Reject) | Verb::Node(N::Approve | N::Reject) => {
                Some("request id")
            }
            Verb::Device(D::Remove | D::Rotate | D::Revoke) => Some("device id"),
            Verb::Node(N::Remove) => Some("node id"),
            Verb::Node(N::Describe) => Some("node id or name"),
            Verb::Device(D::List) | Verb::Node(N::List | N::Pending | N::Invoke) => None,
            Verb::Session(SessionVerb::List) => None,
            Verb::Session(_) => Some("session key"),
        }
    }

    /// Where to find what the operand names, for the missing-operand hint.
    fn listing(self) -> &'static str {
        match self {
            Verb::Device(_) => "clawgate devices list",
            Verb::Node(NodeVerb::Approve | NodeVerb::Reject) => "clawgate nodes pending",
            Verb::Node(_) => "clawgate nodes list",
            Verb::Session(_) => "clawgate sessions list",
        }
    }
}

/// Phase one's check of the action word.
pub fn verb(sub: Sub, word: &OsString) -> Result<Verb, Error> {
    let text = word.to_string_lossy();
    let found = match sub {
        Sub::Devices => text.parse().map(Verb::Device),
        Sub::Nodes => text.parse().map(Verb::Node),
        Sub::Sessions => text.parse().map(Verb::Session),
        _ => unreachable!("only devices, nodes and sessions take an action"),
    };
    found.map_err(|_| {
        let words: Vec<&str> = match sub {
            Sub::Devices => DeviceVerb::ALL.iter().map(|v| v.as_str()).collect(),
            Sub::Sessions => SessionVerb::ALL.iter().map(|v| v.as_str()).collect(),
            _ => NodeVerb::ALL.iter().map(|v| v.as_str()).collect(),
        };
        Error::usage(format!(
            "unknown action '{text}' for 'clawgate {}' ({})",
            sub.name(),
            expected(&words)
        ))
    })
}

/// The action, its operand, and no flag it does not take.
pub(super) fn settle(sub: Sub, raw: &mut Raw) -> Result<(Verb, String), Error> {
    let Some(verb) = raw.verb else {
        let name = sub.name();
        return Err(Error::usage(format!(
            "missing action for 'clawgate {name}' (e.g. 'clawgate {name} list'; see 'clawgate {name} --help')"
        )));
    };
    let mut given = vec![
        ("limit", raw.limit.is_some()),
        ("role", raw.role.is_some()),
        ("scope", !raw.scopes.is_empty()),
        ("node", raw.node.is_some()),
        ("command", raw.command.is_some()),
        ("params", raw.params.is_some()),
        ("invoke-timeout", raw.invoke_timeout_ms.is_some()),
        ("idempotency-key", raw.idempotency_key.is_some()),
    ];
    given.extend(raw.agent.given());
    if let Some((flag, _)) = given
        .iter()
        .find(|(flag, set)| *set && !verb.flags().contains(flag))
    {
        return Err(unknown_option(&format!("--{flag}"), &verb.command_line()));
    }
    let operand = match (verb.operand(), raw.operand.take()) {
        (Some(_), Some(o)) if !o.is_empty() => o,
        (Some(what), _) => {
            return Err(Error::usage(format!(
                "missing {what} for 'clawgate {}' (see '{}')",
                verb.command_line(),
                verb.listing()
            )))
        }
        (None, Some(o)) => {
            return Err(unexpected_argument(
                &OsString::from(o),
                &verb.command_line(),
            ))
        }
        (None, None) => String::new(),
    };
    Ok((verb, operand))
}

fn required(value: Option<String>, flag: &str, verb: Verb) -> Result<String, Error> {
    value.ok_or_else(|| {
        Error::usage(format!(
            "'clawgate {}' needs '--{flag}'",
            verb.command_line()
        ))
    })
}

pub fn devices(mut raw: Raw) -> Result<DevicesArgs, Error> {
    let (verb, id) = settle(Sub::Devices, &mut raw)?;
    let client = client_args(&mut raw)?;
    let Verb::Device(v) = verb else {
        unreachable!("devices takes device actions")
    };
    let action = match v {
        DeviceVerb::List => DeviceAction::List,
        DeviceVerb::Approve => DeviceAction::Approve { request: id },
        DeviceVerb::Reject => DeviceAction::Reject { request: id },
        DeviceVerb::Remove => DeviceAction::Remove { device: id },
        DeviceVerb::Rotate => DeviceAction::Rotate {
            device: id,
            role: required(raw.role, "role", verb)?,
            scopes: (!raw.scopes.is_empty()).then_some(raw.scopes),
        },
        DeviceVerb::Revoke => DeviceAction::Revoke {
            device: id,
            role: required(raw.role, "role", verb)?,
        },
    };
    Ok(DevicesArgs { client, action })
}

pub fn nodes(mut raw: Raw) -> Result<NodesArgs, Error> {
    let (verb, id) = settle(Sub::Nodes, &mut raw)?;
    let explicit_timeout = raw.timeout_ms.is_some();
    let mut client = client_args(&mut raw)?;
    let Verb::Node(v) = verb else {
        unreachable!("nodes takes node actions")
    };
    let action = match v {
        NodeVerb::List => NodeAction::List,
        NodeVerb::Pending => NodeAction::Pending,
        NodeVerb::Approve => NodeAction::Approve { request: id },
        NodeVerb::Reject => NodeAction::Reject { request: id },
        NodeVerb::Remove => NodeAction::Remove { node: id },
        NodeVerb::Describe => NodeAction::Describe { node: id },
        NodeVerb::Invoke => {
            let invoke_timeout_ms = raw.invoke_timeout_ms.unwrap_or(DEFAULT_INVOKE_TIMEOUT_MS);
            // The gateway waits for the node up to the invoke timeout; the
            // client's own deadline must not cut that wait short unless
            // the user set one.
            if !explicit_timeout {
                client.timeout_ms = DEFAULT_TIMEOUT_MS.saturating_add(invoke_timeout_ms);
            }
            NodeAction::Invoke(InvokeArgs {
                node: required(raw.node, "node", verb)?,
                command: required(raw.command, "command", verb)?,
                params: raw.params,
                invoke_timeout_ms,
                idempotency_key: raw.idempotency_key,
            })
        }
    };
    Ok(NodesArgs { client, action })
}

/// The flags of one `sessions` action beyond the client and location ones.
fn session_flags(verb: SessionVerb) -> &'static [&'static str] {
    match verb {
        SessionVerb::List => &["agent", "search", "limit"],
        SessionVerb::History => &["limit"],
        SessionVerb::Reset => &[],
        SessionVerb::Delete => &["transcript"],
    }
}
