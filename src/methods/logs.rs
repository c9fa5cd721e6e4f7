//! `logs.tail`: the gateway's own log file, read from a cursor.

use serde::Deserialize;
use serde_json::json;

use super::Ctx;
use crate::logging::tail;
use crate::protocol::{self, ErrorShape, Params, Payload};

/// `logs.tail` params: where to resume and how much to return at most
/// (clamped by the reader to `TAIL_MAX_LIMIT` lines and `TAIL_MAX_BYTES`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct Tail {
    cursor: Option<u64>,
    limit: Option<u64>,
    max_bytes: Option<u64>,
}

impl Params for Tail {}

pub(super) fn logs_tail(c: &Ctx) -> Result<Payload, ErrorShape> {
    let Some(path) = c.shared.log_file() else {
        return Err(ErrorShape::unavailable(format!(
            "file logging is off: set logging.file to true in '{}'",
            c.live.settings.config_path.display()
        )));
    };
    let p: Tail = protocol::parse("logs.tail", c.params)?;
    let size = |n: Option<u64>, default: usize| {
        n.map_or(default, |n| usize::try_from(n).unwrap_or(usize::MAX))
    };
    let limit = size(p.limit, tail::TAIL_DEFAULT_LIMIT);
    let max_bytes = size(p.max_bytes, tail::TAIL_DEFAULT_MAX_BYTES);
    match tail::tail(path, p.cursor, limit, max_bytes) {
        Ok(t) => {
            let mut v = json!({
                "file": t.file, "cursor": t.cursor, "size": t.size, "lines": t.lines,
            });
            if t.truncated {
                v["truncated"] = json!(true);
            }
            if t.reset {
                v["reset"] = json!(true);
            }
            Ok(v.into())
        }
        Err(e) => Err(ErrorShape::unavailable(format!(
            "cannot read the log file '{}': {}",
            path.display(),
            crate::error::io_message(&e)
        ))),
    }
}
