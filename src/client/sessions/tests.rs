use serde_json::json;

use super::*;

const NOW: u64 = 1_796_190_800_000;

#[test]
fn each_action_sends_only_what_was_given() {
    let list = SessionAction::List {
        agent: None,
        search: None,
        limit: None,
    };
    assert_eq!(params(&list), json!({}));
    let list = SessionAction::List {
        agent: Some("main".into()),
        search: Some("work".into()),
        limit: Some(5),
    };
    assert_eq!(
        params(&list),
        json!({"agentId": "main", "search": "work", "limit": 5})
    );
    let key = "agent:main:main".to_owned();
    let history = SessionAction::History {
        key: key.clone(),
        limit: Some(20),
    };
    assert_eq!(params(&history), json!({"sessionKey": key, "limit": 20}));
    let reset = SessionAction::Reset { key: key.clone() };
    assert_eq!(params(&reset), json!({"key": key}));
    let delete = SessionAction::Delete {
        key: key.clone(),
        transcript: false,
    };
    assert_eq!(
        params(&delete),
        json!({"key": key, "deleteTranscript": false})
    );
}

#[test]
fn sessions_list_as_a_table_with_ages_models_and_tokens() {
    let payload = json!({"count": 3, "totalCount": 3, "sessions": [
        {"key": "agent:main:main", "agentId": "main", "sessionId": "s1",
         "updatedAt": NOW - 120_000, "model": "llama3.2:3b", "modelProvider": "ollama",
         "totalTokens": 48, "hasActiveRun": false},
        {"key": "agent:main:work", "agentId": "main", "sessionId": "s2",
         "updatedAt": NOW - 5_000, "label": "Work", "model": "sonnet",
         "hasActiveRun": true},
        {"key": "agent:ops:main", "agentId": "ops", "sessionId": "s3", "hasActiveRun": false}
    ]});
    assert_eq!(
        render_list(&payload, NOW),
        "KEY              AGENT  UPDATED          MODEL               TOKENS  LABEL\n\
         agent:main:main  main   2m ago           ollama/llama3.2:3b  48      -\n\
         agent:main:work  main   5s ago, running  sonnet              -       Work\n\
         agent:ops:main   ops    -                -                   -       -"
    );
    assert_eq!(
        render_list(&json!({"count": 0, "sessions": []}), NOW),
        "Sessions: none"
    );
}

#[test]
fn a_cut_list_says_how_many_there_are() {
    let payload = json!({"count": 1, "totalCount": 7, "sessions": [
        {"key": "main", "agentId": "main", "updatedAt": NOW, "label": "a\u{1b}[31mb"}
    ]});
    let shown = render_list(&payload, NOW);
    assert!(shown.ends_with("\nShowing 1 of 7 sessions; see --limit and --search."));
    // A label cannot colour the terminal.
    assert!(shown.contains("a\\u{1b}[31mb"), "{shown}");
}

#[test]
fn history_is_one_block_per_message() {
    let payload = json!({"sessionKey": "agent:main:main", "sessionId": "s1",
        "hasMore": false, "totalMessages": 2, "messages": [
        {"role": "user", "content": "hi", "timestamp": 1},
        {"role": "assistant", "content": [{"type": "text", "text": "Hello from the fake model.\n"}],
         "timestamp": 2}
    ]});
    assert_eq!(
        render_history(&payload, "agent:main:main"),
        "user:\nhi\n\nassistant:\nHello from the fake model."
    );
}

#[test]
fn history_shows_text_parts_only_and_says_what_was_left_out() {
    let payload = json!({"hasMore": true, "totalMessages": 12, "messages": [
        {"role": "assistant", "content": [
            {"type": "text", "text": "one"}, {"type": "image", "url": "x"},
            {"type": "text", "text": "two"}]},
        {"role": "assistant", "content": [{"type": "toolCall", "name": "x"}]},
        {"role": "user", "content": "line 1\r\nline 2"}
    ]});
    assert_eq!(
        render_history(&payload, "k"),
        "(9 earlier messages not shown; see --limit)\n\n\
         assistant:\none\ntwo\n\n\
         assistant:\n[no text]\n\n\
         user:\nline 1\nline 2"
    );
    assert_eq!(
        render_history(&json!({"messages": []}), "agent:main:x"),
        "Session 'agent:main:x': no messages"
    );
}

#[test]
fn reset_and_delete_report_what_changed() {
    let reset = json!({"ok": true, "key": "agent:main:main",
        "entry": {"sessionId": "8154aaaa-bbbb", "updatedAt": NOW}});
    assert_eq!(
        render_reset(&reset, "main"),
        "Reset session 'agent:main:main': new session id 8154aaaa-bbbb"
    );
    assert_eq!(render_reset(&json!({"ok": true}), "k"), "Reset session 'k'");
    let deleted = json!({"ok": true, "key": "agent:main:work", "deleted": true,
        "archived": ["/s/agents/main/sessions/s2.jsonl.deleted.1"]});
    assert_eq!(
        render_delete(&deleted, "agent:main:work"),
        "Deleted session 'agent:main:work'\n\
         Transcript archived as /s/agents/main/sessions/s2.jsonl.deleted.1"
    );
    let plain = json!({"ok": true, "key": "k", "deleted": true, "archived": []});
    assert_eq!(render_delete(&plain, "k"), "Deleted session 'k'");
    let missing = json!({"ok": true, "key": "k", "deleted": false, "archived": []});
    assert_eq!(
        render_delete(&missing, "k"),
        "Session 'k' did not exist: nothing was deleted"
    );
}
