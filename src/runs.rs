//! Agent runs: each executes on a thread of its own, which reads the
//! backend, writes the transcript and sends the run's events, and then
//! takes up the next run waiting on the same session, so a session's runs
//! follow one another in order. The threads never hold the state lock
//! across I/O; requests that wait for a run's end are answered through
//! their connections' outboxes (see `state::run_relay`).

pub mod admit;
pub mod backend;
pub mod events;
pub mod exec;
pub mod keys;
pub mod rows;

use std::sync::Arc;

use crate::state::{Run, Shared};

/// A run thread's stack: JSON values and an HTTP read buffer, no deep
/// recursion (parsing happens on bounded input).
const RUN_STACK_BYTES: usize = 256 * 1024;

/// Marks the sessions whose run was interrupted by a crash or `kill -9`
/// (their entry still says "running") as failed, with `abortedLastRun`;
/// returns them as (agent, key). Their user message is in the transcript
/// already; the reply never came.
pub fn recover(store: &crate::store::sessions::SessionStore) -> Vec<(String, String)> {
    let (all, _) = store.list(&crate::store::sessions::ListQuery::default());
    let mut out = Vec::new();
    for (agent, key, e) in all {
        if e.extra.get("status").and_then(serde_json::Value::as_str) != Some("running") {
            continue;
        }
        let marked = store.update(&agent, &key, |e| {
            e.extra.insert("status".into(), serde_json::json!("failed"));
            e.extra
                .insert("abortedLastRun".into(), serde_json::json!(true));
        });
        if let Err(err) = marked {
            log::warn!("session {key}: cannot record its interrupted run: {err}");
        }
        out.push((agent, key));
    }
    out
}

/// How a run's ending reads for its HTTP watcher.
fn tap_end(e: &crate::state::Ending) -> crate::agent::TapEnd {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    let stop = text(&e.wait["stopReason"]);
    let status = match (e.payload["status"].as_str(), stop.as_str()) {
        (Some("ok"), _) => "ok",
        (Some("timeout"), "rpc") => "aborted",
        (Some("timeout"), _) => "timeout",
        _ => "error",
    };
    crate::agent::TapEnd {
        status,
        stop_reason: stop,
        error: (status == "error").then(|| text(&e.payload["summary"])),
    }
}

/// Starts `run` (admitted to start now) on a thread of its own. When the
/// thread cannot be created the run ends at once as failed.
pub fn spawn(shared: &Arc<Shared>, run: Run) {
    let sh = shared.clone();
    let id = run.id.clone();
    let kind = run.kind;
    let spawned = std::thread::Builder::new()
        .name("run".into())
        .stack_size(RUN_STACK_BYTES)
        .spawn(move || {
            let mut run = run;
            loop {
                let ending = exec::execute(&sh, &run);
                if let Some(t) = &run.job.tap {
                    t.end(tap_end(&ending));
                }
                match sh.run_finish(&run.id, run.kind, &ending) {
                    Some(next) => run = next,
                    None => return,
                }
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start a thread for run {id}: {e}");
        let ending = crate::state::Ending {
            payload: serde_json::json!({"runId": &*id, "status": "error",
                                        "summary": "cannot start the run"}),
            error: Some(crate::protocol::ErrorShape::unavailable(
                "cannot start the run",
            )),
            wait: serde_json::json!({"runId": &*id, "status": "error"}),
        };
        // Its waiting successors, if any, are failed the same way.
        let mut next = shared.run_finish(&id, kind, &ending);
        while let Some(n) = next {
            next = shared.run_finish(&n.id, n.kind, &ending);
        }
    }
}
