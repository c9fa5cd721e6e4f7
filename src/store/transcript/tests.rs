use std::fs;
use std::io::Write;

use serde_json::json;

use super::read::json_len;
use super::*;

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let d = std::env::temp_dir().join(format!("clawgate-transcript-{}", crate::sys::uuid_v4()));
        fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }

    fn file(&self) -> PathBuf {
        self.0.join("s.jsonl")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text, "timestamp": 1})
}

fn assistant(text: &str) -> Value {
    json!({"role": "assistant", "content": [{"type": "text", "text": text}], "timestamp": 2})
}

/// Writes a header and `n` alternating user/assistant messages, chained.
fn write_session(path: &Path, n: usize) -> Vec<String> {
    append(
        path,
        &header_lines("sid", "/w", Some("fake"), Some("m")),
        u64::MAX,
    )
    .unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        let parent = last_id(path).unwrap();
        let msg = if i % 2 == 0 {
            user(&format!("u{i}"))
        } else {
            assistant(&format!("a{i}"))
        };
        let (id, line) = message_line(parent.as_deref(), msg);
        append(path, &[line], u64::MAX).unwrap();
        ids.push(id);
    }
    ids
}

fn text_of(m: &Value) -> String {
    match &m["content"] {
        Value::String(s) => s.clone(),
        parts => parts[0]["text"].as_str().unwrap().to_string(),
    }
}

fn append_raw(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn lines_keep_the_reference_shapes_key_order_and_parent_chain() {
    let d = TempDir::new();
    let ids = write_session(&d.file(), 2);
    let text = fs::read_to_string(d.file()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(
        lines[0].starts_with(r#"{"type":"session","version":4,"id":"sid","timestamp":""#),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with(r#"","cwd":"/w"}"#), "{}", lines[0]);
    assert!(
        lines[1].starts_with(r#"{"type":"model_change","provider":"fake","modelId":"m","id":""#),
        "{}",
        lines[1]
    );
    let change: Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(change["parentId"], Value::Null);
    let first: Value = serde_json::from_str(lines[2]).unwrap();
    assert!(lines[2].starts_with(r#"{"type":"message","id":""#));
    assert_eq!(first["parentId"], change["id"]);
    assert_eq!(first["id"], ids[0].as_str());
    assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));
    let second: Value = serde_json::from_str(lines[3]).unwrap();
    assert_eq!(second["parentId"], ids[0].as_str());
    assert_eq!(
        last_id(&d.file()).unwrap().as_deref(),
        Some(ids[1].as_str())
    );
}

#[test]
fn last_id_skips_the_session_header_and_a_missing_file_has_none() {
    let d = TempDir::new();
    assert_eq!(last_id(&d.file()).unwrap(), None);
    append(&d.file(), &header_lines("sid", "/w", None, None), u64::MAX).unwrap();
    assert_eq!(last_id(&d.file()).unwrap(), None);
}

#[test]
fn history_serves_the_newest_messages_in_order_with_seq_and_total() {
    let d = TempDir::new();
    let ids = write_session(&d.file(), 5);
    append(
        &d.file(),
        &[json!({"type": "custom", "customType": "model-snapshot", "id": "c", "parentId": null})],
        u64::MAX,
    )
    .unwrap();
    let all = history(&d.file(), 100, 1 << 20).unwrap();
    assert_eq!(all.total, 5);
    assert!(!all.has_more);
    let texts: Vec<String> = all.messages.iter().map(text_of).collect();
    assert_eq!(texts, ["u0", "a1", "u2", "a3", "u4"]);
    assert_eq!(
        all.messages[0]["__openclaw"],
        json!({"id": ids[0], "seq": 1})
    );
    assert_eq!(all.messages[0]["role"], "user");

    let tail = history(&d.file(), 2, 1 << 20).unwrap();
    assert_eq!(tail.total, 5);
    assert!(tail.has_more);
    assert_eq!(
        tail.messages.iter().map(text_of).collect::<Vec<_>>(),
        ["a3", "u4"]
    );
    assert_eq!(tail.messages[0]["__openclaw"]["seq"], 4);
    assert_eq!(tail.messages[1]["__openclaw"]["id"], ids[4].as_str());

    let none = history(&d.file(), 0, 1 << 20).unwrap();
    assert!(none.messages.is_empty());
    assert_eq!((none.total, none.has_more), (5, true));
    assert_eq!(
        history(&d.path_missing(), 10, 100).unwrap(),
        History::default()
    );
}

impl TempDir {
    fn path_missing(&self) -> PathBuf {
        self.0.join("missing.jsonl")
    }
}

#[test]
fn history_drops_the_oldest_messages_past_max_bytes_but_keeps_the_newest() {
    let d = TempDir::new();
    write_session(&d.file(), 6);
    let all = history(&d.file(), 100, 1 << 20).unwrap();
    let one = json_len(&all.messages[5]);
    let two = 2 + one + 1 + json_len(&all.messages[4]);
    let h = history(&d.file(), 100, two).unwrap();
    assert_eq!(h.messages.len(), 2);
    assert!(h.has_more);
    assert_eq!(text_of(&h.messages[1]), "a5");
    let h = history(&d.file(), 100, 10).unwrap();
    assert_eq!(h.messages.len(), 1, "the newest is served even alone over");
    assert_eq!(h.messages[0]["__openclaw"]["seq"], 6);
}

#[test]
fn an_existing_openclaw_object_is_merged_into() {
    let d = TempDir::new();
    let mut msg = assistant("hi");
    msg["__openclaw"] = json!({"runId": "r1"});
    let (id, line) = message_line(None, msg);
    append(&d.file(), &[line], u64::MAX).unwrap();
    let h = history(&d.file(), 10, 1 << 20).unwrap();
    assert_eq!(
        h.messages[0]["__openclaw"],
        json!({"runId": "r1", "id": id, "seq": 1})
    );
}

#[test]
fn a_torn_last_line_is_ignored_then_cut_before_the_next_append() {
    let d = TempDir::new();
    write_session(&d.file(), 2);
    let (_, line) = message_line(None, user("lost"));
    let whole = encode(&line).unwrap();
    append_raw(&d.file(), &whole[..whole.len() / 2]);
    let h = history(&d.file(), 10, 1 << 20).unwrap();
    assert_eq!(h.total, 2);
    assert_eq!(h.messages.len(), 2);
    let before = last_id(&d.file()).unwrap();

    let (_, line) = message_line(before.as_deref(), user("next"));
    append(&d.file(), &[line], u64::MAX).unwrap();
    let text = fs::read_to_string(d.file()).unwrap();
    assert!(!text.contains("lost"));
    for l in text.lines() {
        serde_json::from_str::<Value>(l).unwrap();
    }
    let h = history(&d.file(), 10, 1 << 20).unwrap();
    assert_eq!(
        h.messages.iter().map(text_of).collect::<Vec<_>>(),
        ["u0", "a1", "next"]
    );
}

#[test]
fn a_whole_last_line_without_its_newline_is_kept_and_completed() {
    let d = TempDir::new();
    let ids = write_session(&d.file(), 1);
    let (id, line) = message_line(None, user("kept"));
    let whole = encode(&line).unwrap();
    append_raw(&d.file(), &whole[..whole.len() - 1]);
    assert_eq!(history(&d.file(), 10, 1 << 20).unwrap().total, 2);
    let last = last_id(&d.file()).unwrap();
    assert_eq!(last, Some(ids[0].clone()), "not complete until its newline");
    let (_, line) = message_line(Some(&id), user("after"));
    append(&d.file(), &[line], u64::MAX).unwrap();
    let h = history(&d.file(), 10, 1 << 20).unwrap();
    assert_eq!(
        h.messages.iter().map(text_of).collect::<Vec<_>>(),
        ["u0", "kept", "after"]
    );
}

#[test]
fn a_garbage_line_in_the_middle_is_skipped() {
    let d = TempDir::new();
    write_session(&d.file(), 1);
    append_raw(&d.file(), b"{\"type\":\"mess\n");
    append_raw(&d.file(), b"not json at all\n\n");
    let (_, line) = message_line(None, user("later"));
    append(&d.file(), &[line], u64::MAX).unwrap();
    let h = history(&d.file(), 10, 1 << 20).unwrap();
    assert_eq!(h.total, 2);
    assert_eq!(
        h.messages.iter().map(text_of).collect::<Vec<_>>(),
        ["u0", "later"]
    );
    assert_eq!(h.messages[1]["__openclaw"]["seq"], 2);
}

#[test]
fn lines_longer_than_the_cap_are_skipped_by_readers() {
    let d = TempDir::new();
    let ids = write_session(&d.file(), 1);
    let (big_id, big) = message_line(Some(&ids[0]), user(&"x".repeat(MAX_LINE)));
    append(&d.file(), &[big], u64::MAX).unwrap();
    let h = history(&d.file(), 10, 1 << 20).unwrap();
    assert_eq!(h.messages.iter().map(text_of).collect::<Vec<_>>(), ["u0"]);
    assert_eq!(
        last_id(&d.file()).unwrap().as_deref(),
        Some(ids[0].as_str())
    );
    // Below the cap but longer than many backward chunks: still found.
    let (mid_id, mid) = message_line(Some(&big_id), user(&"y".repeat(CHUNK * 5)));
    append(&d.file(), &[mid], u64::MAX).unwrap();
    assert_eq!(last_id(&d.file()).unwrap(), Some(mid_id));
}

#[test]
fn an_append_past_the_size_limit_is_refused_and_writes_nothing() {
    let d = TempDir::new();
    write_session(&d.file(), 1);
    let len = fs::metadata(d.file()).unwrap().len();
    let (_, line) = message_line(None, user("too much"));
    let e = append(&d.file(), std::slice::from_ref(&line), len + 10).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "transcript would exceed its size limit ({} bytes)",
            len + 10
        )
    );
    assert_eq!(fs::metadata(d.file()).unwrap().len(), len);
    let need = len + encode(&line).unwrap().len() as u64;
    append(&d.file(), &[line], need).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(d.file()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn preview_gives_user_and_assistant_text_cut_to_size() {
    let d = TempDir::new();
    let lines = vec![
        message_line(None, user("hello\n  there")).1,
        message_line(None, json!({"role": "toolResult", "content": "x"})).1,
        message_line(None, assistant("a fairly long answer")).1,
        message_line(
            None,
            json!({"role": "assistant", "content": [{"type": "toolCall"}]}),
        )
        .1,
    ];
    append(&d.file(), &lines, u64::MAX).unwrap();
    let p = preview(&d.file(), 12, 8).unwrap();
    assert_eq!(
        p,
        [
            ("user".to_string(), "hello t…".to_string()),
            ("assistant".to_string(), "a fairl…".to_string())
        ]
    );
    assert_eq!(preview(&d.file(), 12, 240).unwrap()[0].1, "hello there");
    assert!(preview(&d.path_missing(), 12, 240).unwrap().is_empty());
}
