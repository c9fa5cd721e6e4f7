//! Session keys as the reference forms them: `agent:<agentId>:<mainKey>`
//! for an agent's main session, `main` alone for the default agent's, and
//! any other caller string as given. Keys compare lowercased. Pure.

/// A session key resolved: the agent it belongs to and the full key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRef {
    pub agent: String,
    pub key: String,
}

/// Resolves the `sessionKey` a caller sent (if any) and its `agentId`.
/// An `agent:<id>:…` key names its agent; a bare `main` (or the main key)
/// means the agent's main session.
pub fn resolve(
    key: Option<&str>,
    agent: Option<&str>,
    default_agent: &str,
    main_key: &str,
) -> SessionRef {
    let agent = agent
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .unwrap_or(default_agent)
        .to_ascii_lowercase();
    let main = |agent: String| SessionRef {
        key: format!("agent:{agent}:{}", main_key.to_ascii_lowercase()),
        agent,
    };
    let Some(k) = key.map(str::trim).filter(|k| !k.is_empty()) else {
        return main(agent);
    };
    let k = k.to_lowercase();
    if k == "main" || k == main_key.to_ascii_lowercase() {
        return main(agent);
    }
    if let Some(rest) = k.strip_prefix("agent:") {
        if let Some((id, tail)) = rest.split_once(':') {
            if !id.is_empty() && !tail.is_empty() {
                return SessionRef {
                    agent: id.to_string(),
                    key: k.clone(),
                };
            }
        }
    }
    SessionRef { agent, key: k }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(key: Option<&str>, agent: Option<&str>) -> (String, String) {
        let s = resolve(key, agent, "main", "main");
        (s.agent, s.key)
    }

    #[test]
    fn keys_resolve_as_the_reference_forms_them() {
        let pair = |a: &str, k: &str| (a.to_string(), k.to_string());
        assert_eq!(r(None, None), pair("main", "agent:main:main"));
        assert_eq!(r(None, Some("ops")), pair("ops", "agent:ops:main"));
        assert_eq!(r(Some("main"), None), pair("main", "agent:main:main"));
        assert_eq!(
            r(Some("Agent:Ops:CLITest"), None),
            pair("ops", "agent:ops:clitest")
        );
        assert_eq!(r(Some("global"), Some("ops")), pair("ops", "global"));
        assert_eq!(r(Some("agent::x"), None), pair("main", "agent::x"));
    }
}
