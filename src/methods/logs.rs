//! `logs.tail`: the gateway's own log file, read from a cursor.

use serde_json::{json, Value};

use crate::logging::tail;
use crate::protocol::ErrorShape;
use crate::state::Shared;

pub(super) fn logs_tail(shared: &Shared, params: Option<&Value>) -> Result<Value, ErrorShape> {
    let Some(path) = &shared.log_file else {
        return Err(ErrorShape::unavailable(format!(
            "file logging is off: set logging.file to true in '{}'",
            shared.live().settings.config_path.display()
        )));
    };
    let p = params.and_then(Value::as_object);
    let num = |k: &str| p.and_then(|p| p.get(k)).and_then(Value::as_u64);
    let cursor = num("cursor");
    let limit = num("limit").map_or(tail::TAIL_DEFAULT_LIMIT, |n| n as usize);
    let max_bytes = num("maxBytes").map_or(tail::TAIL_DEFAULT_MAX_BYTES, |n| n as usize);
    match tail::tail(path, cursor, limit, max_bytes) {
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
            Ok(v)
        }
        Err(e) => Err(ErrorShape::unavailable(format!(
            "cannot read the log file '{}': {}",
            path.display(),
            crate::error::io_message(&e)
        ))),
    }
}
