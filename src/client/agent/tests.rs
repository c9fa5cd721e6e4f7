use serde_json::json;

use super::*;
use crate::cli::ClientArgs;

const RUN: &str = "3e809faf-0000-4000-8000-000000000001";

fn assistant(run: &str, seq: u64, text: Option<&str>, delta: Option<&str>) -> Value {
    let mut data = Map::new();
    if let Some(t) = text {
        data.insert("text".into(), json!(t));
    }
    if let Some(d) = delta {
        data.insert("delta".into(), json!(d));
    }
    json!({"type": "event", "event": "agent", "seq": seq,
           "payload": {"runId": run, "seq": seq, "stream": "assistant", "ts": 1, "data": data}})
}

fn ok_payload(texts: &[&str]) -> Value {
    let payloads: Vec<Value> = texts
        .iter()
        .map(|t| json!({"text": t, "mediaUrl": null}))
        .collect();
    json!({"runId": RUN, "status": "ok", "summary": "completed",
           "result": {"payloads": payloads, "meta": {"durationMs": 5}}})
}

/// Everything a sequence of frames and then the final payload prints.
fn printed(frames: &[Value], payload: &Value) -> (Vec<String>, String) {
    let mut reply = Reply::new(RUN);
    let pieces: Vec<String> = frames.iter().filter_map(|f| reply.event(f)).collect();
    let end = reply.finish(payload);
    (pieces, end)
}

#[test]
fn the_reply_streams_in_pieces_and_ends_with_one_newline() {
    let frames = [
        assistant(RUN, 3, Some("Hello"), Some("Hello")),
        assistant(
            RUN,
            8,
            Some("Hello from the fake model."),
            Some(" from the fake model."),
        ),
    ];
    let (pieces, end) = printed(&frames, &ok_payload(&["Hello from the fake model."]));
    assert_eq!(pieces, ["Hello", " from the fake model."]);
    assert_eq!(end, "\n");
}

#[test]
fn the_cumulative_text_makes_up_for_a_missed_event() {
    // seq 4..7 were coalesced or lost: the text still has them.
    let frames = [
        assistant(RUN, 3, Some("one"), Some("one")),
        assistant(RUN, 8, Some("one two three"), Some(" three")),
    ];
    let (pieces, end) = printed(&frames, &ok_payload(&["one two three"]));
    assert_eq!(pieces, ["one", " two three"]);
    assert_eq!(end, "\n");
}

#[test]
fn deltas_alone_are_appended() {
    let frames = [
        assistant(RUN, 1, None, Some("Hi")),
        assistant(RUN, 2, None, Some(" there")),
        assistant(RUN, 3, None, Some("")),
    ];
    let (pieces, end) = printed(&frames, &ok_payload(&["Hi there"]));
    assert_eq!(
        (pieces, end),
        (vec!["Hi".into(), " there".into()], "\n".into())
    );
}

#[test]
fn what_the_stream_missed_at_the_end_comes_from_the_final_answer() {
    let frames = [assistant(RUN, 3, Some("Hello"), Some("Hello"))];
    let (_, end) = printed(&frames, &ok_payload(&["Hello, world."]));
    assert_eq!(end, ", world.\n");
    // A CLI backend streams nothing: the final text is the whole reply.
    let (pieces, end) = printed(&[], &ok_payload(&["From the CLI."]));
    assert!(pieces.is_empty());
    assert_eq!(end, "From the CLI.\n");
    // Several payloads, one per line; a text ending in a newline gets
    // no second one.
    let (_, end) = printed(&[], &ok_payload(&["a", "b\n"]));
    assert_eq!(end, "a\nb\n");
}

#[test]
fn a_final_text_that_differs_from_the_stream_is_printed_once_on_its_own_line() {
    let frames = [assistant(RUN, 3, Some("Draft"), Some("Draft"))];
    let (_, end) = printed(&frames, &ok_payload(&["Final answer"]));
    assert_eq!(end, "\nFinal answer\n");
    // A rewrite mid-stream prints nothing until the final answer.
    let rewritten = json!({"type": "event", "event": "agent", "payload": {
        "runId": RUN, "stream": "assistant",
        "data": {"text": "Other", "delta": "", "replace": true}}});
    let (pieces, _) = printed(&[frames[0].clone(), rewritten], &ok_payload(&["Other"]));
    assert_eq!(pieces, ["Draft"]);
    // A final text the stream already holds whole adds only the newline.
    let frames = [assistant(RUN, 3, Some("Done. "), Some("Done. "))];
    let (_, end) = printed(&frames, &ok_payload(&["Done."]));
    assert_eq!(end, "\n");
}

#[test]
fn only_assistant_events_of_this_run_are_printed() {
    let other_run = assistant("another-run", 3, Some("not ours"), Some("not ours"));
    let lifecycle = json!({"type": "event", "event": "agent", "payload": {
        "runId": RUN, "seq": 1, "stream": "lifecycle", "data": {"phase": "start", "text": "x"}}});
    let chat = json!({"type": "event", "event": "chat", "payload": {
        "runId": RUN, "seq": 3, "state": "delta", "deltaText": "Hello",
        "message": {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]}}});
    let tick = json!({"type": "event", "event": "tick", "payload": {"ts": 1}});
    let mut reply = Reply::new(RUN);
    for f in [other_run, lifecycle, chat, tick] {
        assert_eq!(reply.event(&f), None, "{f}");
    }
    assert_eq!(reply.finish(&ok_payload(&["Hello"])), "Hello\n");
}

#[test]
fn a_reply_cut_short_or_empty_ends_its_line_once() {
    let mut reply = Reply::new(RUN);
    assert_eq!(reply.abandon(), "");
    reply.event(&assistant(RUN, 3, Some("Hel"), None));
    assert_eq!(reply.abandon(), "\n");
    assert_eq!(reply.abandon(), "");
    // A failed run has no result: only the open line is closed.
    let mut reply = Reply::new(RUN);
    reply.event(&assistant(RUN, 3, Some("Hel"), None));
    let failed = json!({"runId": RUN, "status": "error", "summary": "upstream down"});
    assert_eq!(reply.finish(&failed), "\n");
    assert_eq!(Reply::new(RUN).finish(&failed), "");
    assert_eq!(Reply::new(RUN).finish(&ok_payload(&[])), "");
}

#[test]
fn the_final_answer_decides_the_exit_status_and_message() {
    let ok = json!({"type": "res", "id": "1", "ok": true, "payload": ok_payload(&["hi"])});
    assert_eq!(judge(&ok, RUN), Ok(()));
    let threw = json!({"type": "res", "id": "1", "ok": false,
        "payload": {"runId": RUN, "status": "error", "summary": "No route-compatible authentication source is configured for openai."},
        "error": {"code": "UNAVAILABLE", "message": "No route-compatible authentication source is configured for openai."}});
    assert_eq!(
        judge(&threw, RUN),
        Err("No route-compatible authentication source is configured for openai.".into())
    );
    let refused = json!({"type": "res", "id": "1", "ok": false,
        "error": {"code": "INVALID_REQUEST", "message": "unknown agent id \"x\""}});
    assert_eq!(judge(&refused, RUN), Err("unknown agent id \"x\"".into()));
    let timeout =
        json!({"ok": true, "payload": {"runId": RUN, "status": "timeout", "summary": "aborted"}});
    assert_eq!(
        judge(&timeout, RUN),
        Err(format!("run '{RUN}' was aborted or timed out"))
    );
    let failed = json!({"ok": true, "payload": {"runId": RUN, "status": "error", "summary": "failed", "stopReason": "length"}});
    assert_eq!(
        judge(&failed, RUN),
        Err(format!("run '{RUN}' failed: length"))
    );
    let busy = json!({"ok": true, "payload": {"runId": "k", "status": "in_flight"}});
    assert_eq!(
        judge(&busy, "k"),
        Err("run 'k' is still running: its reply goes to the call that started it (idempotency key 'k')".into())
    );
    let odd = json!({"ok": true, "payload": {"runId": RUN, "status": "queued"}});
    assert_eq!(
        judge(&odd, RUN),
        Err(format!("run '{RUN}' ended with status 'queued'"))
    );
}

fn args(message: &str) -> AgentArgs {
    AgentArgs {
        client: ClientArgs {
            location: Default::default(),
            url: None,
            token: None,
            password: None,
            timeout_ms: 10_000,
            json: false,
        },
        message: message.into(),
        agent: None,
        session: None,
        run_timeout_s: 600,
        wait: RunWait::Ms(610_000),
        idempotency_key: None,
    }
}

#[test]
fn the_params_are_those_the_stock_cli_sends() {
    let p = params(&args("hi"), "k1");
    assert_eq!(
        p,
        json!({"message": "hi", "deliver": false, "timeout": 600, "idempotencyKey": "k1"})
    );
    let mut a = args("hi");
    a.agent = Some("main".into());
    a.session = Some("agent:main:work".into());
    a.run_timeout_s = 0;
    assert_eq!(
        params(&a, "k2"),
        json!({"message": "hi", "agentId": "main", "sessionKey": "agent:main:work",
               "deliver": false, "timeout": 0, "idempotencyKey": "k2"})
    );
}

#[test]
fn a_message_that_starts_the_session_over_asks_for_admin() {
    assert_eq!(scopes("hello"), [SCOPE_WRITE]);
    assert_eq!(scopes("what does /reset do?"), [SCOPE_WRITE]);
    assert_eq!(scopes("/new"), [SCOPE_WRITE, SCOPE_ADMIN]);
    assert_eq!(scopes("  /RESET now"), [SCOPE_WRITE, SCOPE_ADMIN]);
    assert_eq!(scopes("/newer"), [SCOPE_WRITE]);
}
