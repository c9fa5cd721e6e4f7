//! Reading one client frame without building it: only the envelope (`type`,
//! `id`, `method`) is decoded; `params` stays a slice of the frame's text
//! until the method is known and asks for it.
//!
//! A JSON value tree costs 16–32 bytes per element where the text costs one
//! or two, so a 4 MiB `params: [0,0,…]` used to become ~130 MB before its
//! method was even looked at. Now a frame costs its text and nothing more:
//! the envelope is read in one pass, params are skipped without
//! allocation, and the nesting limit (serde_json's 128, which the 128 KiB
//! connection stack is sized for) is checked by a scan of the bytes.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::clip;

/// The deepest nesting accepted anywhere in a frame, the frame object
/// included: where serde_json's own recursion limit (128) stops it.
pub const MAX_DEPTH: usize = 127;

/// A client frame, classified. `params` borrows the frame's text.
#[derive(Debug, Clone)]
pub enum Inbound<'a> {
    Req {
        id: String,
        method: String,
        params: Option<&'a RawValue>,
    },
    /// `{type:"cancel", id}`: a client gave up on a request. Never answered.
    Cancel,
    /// Valid JSON object that is not a well-formed request; `id` is echoed
    /// in the error reply when the frame had a string one.
    Invalid { id: Option<String>, why: String },
}

/// Why a frame could not be read as a JSON object at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    NotJson(String),
    NotObject,
}

/// The keys a frame may have; the values stay text until looked at.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<&'a RawValue>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
}

/// Classifies one text frame.
pub fn parse_frame(text: &str) -> Result<Inbound<'_>, FrameError> {
    check_depth(text)?;
    if !text.trim_start().starts_with('{') {
        // Tell "not an object" from "not JSON", as the reference does.
        return match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => Err(FrameError::NotObject),
            Err(e) => Err(FrameError::NotJson(e.to_string())),
        };
    }
    let env: Envelope =
        serde_json::from_str(text).map_err(|e| FrameError::NotJson(e.to_string()))?;
    let id = string(env.id).filter(|s| !s.is_empty());
    match string(env.kind).as_deref() {
        Some("req") => {
            let Some(id) = id else {
                return Ok(Inbound::Invalid {
                    id: None,
                    why: "invalid request frame: id must be a non-empty string".into(),
                });
            };
            match string(env.method).filter(|m| !m.is_empty()) {
                Some(method) => Ok(Inbound::Req {
                    id,
                    method,
                    params: env.params,
                }),
                None => Ok(Inbound::Invalid {
                    id: Some(id),
                    why: "invalid request frame: method must be a non-empty string".into(),
                }),
            }
        }
        Some("cancel") => Ok(Inbound::Cancel),
        Some(other) => Ok(Inbound::Invalid {
            id,
            why: format!("invalid frame type: {}", clip(other, 64)),
        }),
        None => Ok(Inbound::Invalid {
            id,
            why: "invalid frame: missing type".into(),
        }),
    }
}

/// A field's value when it is a JSON string.
fn string(raw: Option<&RawValue>) -> Option<String> {
    raw.and_then(|r| serde_json::from_str::<String>(r.get()).ok())
}

/// Refuses nesting deeper than [`MAX_DEPTH`], counting brackets outside
/// strings. The parts of a frame that are skipped rather than parsed are
/// held to the same limit as the parts that are parsed.
fn check_depth(text: &str) -> Result<(), FrameError> {
    let mut depth = 0usize;
    for b in outside_strings(text) {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(FrameError::NotJson("recursion limit exceeded".into()));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// The bytes of JSON `text` outside its strings (their contents and
/// quotes skipped, escapes honoured): what a scan of its structure reads.
pub(super) fn outside_strings(text: &str) -> impl Iterator<Item = u8> + '_ {
    let (mut in_string, mut escaped) = (false, false);
    text.bytes().filter(move |&b| {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            return false;
        }
        in_string = b == b'"';
        !in_string
    })
}
