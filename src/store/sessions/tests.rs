use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use super::*;

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let d = std::env::temp_dir().join(format!("clawgate-sessions-{}", crate::sys::uuid_v4()));
        fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn open(d: &TempDir) -> SessionStore {
    SessionStore::open(&d.0, 100).unwrap()
}

#[test]
fn entries_round_trip_through_the_index_file() {
    let d = TempDir::new();
    let store = open(&d);
    assert_eq!(store.get("main", "agent:main:main"), None);
    let (entry, created) = store
        .ensure(
            "main",
            "agent:main:main",
            1000,
            "run",
            Some("fake"),
            Some("m"),
        )
        .unwrap();
    assert!(created);
    assert_eq!(entry.created_via.as_deref(), Some("run"));
    assert_eq!(entry.session_started_at, Some(1000));
    let updated = store
        .update("main", "agent:main:main", |e| {
            e.updated_at = 2000;
            e.total_tokens = Some(48);
            e.cli_session_ids.insert("claude".into(), "c1".into());
        })
        .unwrap()
        .unwrap();
    assert_eq!(updated.total_tokens, Some(48));

    let again = open(&d);
    assert_eq!(again.get("main", "agent:main:main"), Some(updated));
    let index = store.index_path("main").unwrap();
    assert_eq!(index, d.0.join("agents/main/sessions/sessions.json"));
    assert_eq!(mode(&index), 0o600);
    assert_eq!(mode(index.parent().unwrap()), 0o700);
    assert_eq!(mode(&d.0.join("agents/main")), 0o700);
    let text = fs::read_to_string(&index).unwrap();
    assert!(
        text.starts_with("{\n  \"agent:main:main\": {\n    \"sessionId\""),
        "{text}"
    );
    assert!(text.contains("\"cliSessionIds\""), "{text}");
    assert!(
        !text.contains("lastInteractionAt"),
        "nones are left out: {text}"
    );
    assert_eq!(
        store.update("main", "agent:main:other", |_| {}).unwrap(),
        None
    );
}

#[test]
fn ensure_writes_the_transcript_header_once() {
    let d = TempDir::new();
    let store = open(&d);
    let (entry, _) = store
        .ensure("main", "k", 1, "run", Some("fake"), Some("m"))
        .unwrap();
    let path = store.transcript_path("main", &entry.session_id).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["type"], "session");
    assert_eq!(lines[0]["id"], entry.session_id.as_str());
    assert_eq!(lines[1]["modelId"], "m");
    let (same, created) = store.ensure("main", "K", 5, "run", None, None).unwrap();
    assert!(!created);
    assert_eq!(same, entry);
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn keys_are_compared_lowercased() {
    let d = TempDir::new();
    let store = open(&d);
    store
        .ensure("Main", "Agent:Main:Main", 1, "run", None, None)
        .unwrap();
    assert!(store.get("main", "agent:main:main").is_some());
    assert!(store.get("MAIN", "AGENT:MAIN:MAIN").is_some());
    let (rows, _) = store.list(&ListQuery::default());
    assert_eq!(rows[0].0, "main");
    assert_eq!(rows[0].1, "agent:main:main");
}

#[test]
fn a_corrupt_index_is_a_config_error_naming_its_path() {
    let d = TempDir::new();
    let dir = d.0.join("agents/main/sessions");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(INDEX);
    fs::write(&path, "{\"k\": {\"sessionId\": \"a\",\n \"updatedAt\": ").unwrap();
    let e = SessionStore::open(&d.0, 10).unwrap_err();
    assert_eq!(e.exit_code(), 78);
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("{}:2:", path.display())), "{msg}");
    fs::write(
        &path,
        "{\"k\": {\"sessionId\": \"../../x\", \"updatedAt\": 1}}",
    )
    .unwrap();
    let e = SessionStore::open(&d.0, 10).unwrap_err();
    assert!(
        e.to_string().starts_with(&path.display().to_string()),
        "{e}"
    );
    assert!(
        e.to_string().contains("unusable sessionId '../../x'"),
        "{e}"
    );
}

#[test]
fn unknown_keys_in_an_entry_survive_a_rewrite() {
    let d = TempDir::new();
    let dir = d.0.join("agents/main/sessions");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join(INDEX),
        r#"{"agent:main:main": {"sessionId": "s1", "updatedAt": 5, "totalTokens": 12.0,
            "compactionCount": 2, "origin": {"provider": "webchat"}, "systemSent": true}}"#,
    )
    .unwrap();
    let store = open(&d);
    let entry = store.get("main", "agent:main:main").unwrap();
    assert_eq!(entry.total_tokens, Some(12));
    store
        .update("main", "agent:main:main", |e| e.label = Some("work".into()))
        .unwrap();
    let text = fs::read_to_string(dir.join(INDEX)).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let e = &v["agent:main:main"];
    assert_eq!(e["compactionCount"], 2);
    assert_eq!(e["origin"]["provider"], "webchat");
    assert_eq!(e["systemSent"], true);
    assert_eq!(e["label"], "work");
}

#[test]
fn reset_starts_a_new_session_id_and_keeps_preferences() {
    let d = TempDir::new();
    let store = open(&d);
    let (old, _) = store
        .ensure("main", "k", 1, "run", Some("p"), Some("m"))
        .unwrap();
    store
        .update("main", "k", |e| {
            e.label = Some("work".into());
            e.thinking_level = Some("low".into());
            e.total_tokens = Some(9);
            e.cli_session_ids.insert("claude".into(), "c1".into());
            e.extra.insert("displayName".into(), "Work".into());
            e.extra.insert("compactionCount".into(), 3.into());
        })
        .unwrap();
    let new = store.reset("main", "k", 50).unwrap().unwrap();
    assert_ne!(new.session_id, old.session_id);
    assert_eq!(new.label.as_deref(), Some("work"));
    assert_eq!(new.thinking_level.as_deref(), Some("low"));
    assert_eq!(new.model.as_deref(), Some("m"));
    assert_eq!(new.total_tokens, None);
    assert!(new.cli_session_ids.is_empty());
    assert_eq!(new.extra.get("displayName"), Some(&Value::from("Work")));
    assert_eq!(new.extra.get("compactionCount"), None);
    assert_eq!((new.updated_at, new.session_started_at), (50, Some(50)));
    assert!(store
        .transcript_path("main", &old.session_id)
        .unwrap()
        .exists());
    assert!(store
        .transcript_path("main", &new.session_id)
        .unwrap()
        .exists());
    assert_eq!(open(&d).get("main", "k"), Some(new));
    assert_eq!(store.reset("main", "none", 1).unwrap(), None);
}

#[test]
fn delete_removes_the_entry_and_archives_the_transcript() {
    let d = TempDir::new();
    let store = open(&d);
    let (a, _) = store.ensure("main", "a", 1, "run", None, None).unwrap();
    let (b, _) = store.ensure("main", "b", 1, "run", None, None).unwrap();
    let (gone, archived) = store.delete("main", "a", true).unwrap().unwrap();
    assert_eq!(gone, a);
    assert_eq!(archived.len(), 1);
    let prefix = format!("{}.jsonl.deleted.", a.session_id);
    let name = Path::new(&archived[0])
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(name.starts_with(&prefix), "{name}");
    assert!(!name.contains(':'), "{name}");
    assert!(Path::new(&archived[0]).exists());
    assert!(!store
        .transcript_path("main", &a.session_id)
        .unwrap()
        .exists());

    let (_, archived) = store.delete("main", "b", false).unwrap().unwrap();
    assert!(archived.is_empty());
    assert!(store
        .transcript_path("main", &b.session_id)
        .unwrap()
        .exists());
    assert_eq!(store.delete("main", "b", true).unwrap(), None);
    assert_eq!(open(&d).list(&ListQuery::default()).1, 0);
}

#[test]
fn list_filters_orders_and_pages() {
    let d = TempDir::new();
    let store = open(&d);
    for (agent, key, at) in [("main", "k1", 10), ("main", "k2", 30), ("ops", "k3", 20)] {
        store.ensure(agent, key, at, "run", None, None).unwrap();
    }
    store
        .update("main", "k1", |e| e.label = Some("Deploy Notes".into()))
        .unwrap();
    store
        .update("ops", "k3", |e| {
            e.extra.insert("displayName".into(), "Night Shift".into());
        })
        .unwrap();
    let keys = |q: ListQuery| {
        let (rows, total) = store.list(&q);
        (rows.into_iter().map(|r| r.1).collect::<Vec<_>>(), total)
    };
    assert_eq!(
        keys(ListQuery::default()),
        (vec!["k2".into(), "k3".into(), "k1".into()], 3)
    );
    let q = ListQuery {
        offset: 1,
        limit: Some(1),
        ..ListQuery::default()
    };
    assert_eq!(keys(q), (vec!["k3".into()], 3));
    let q = ListQuery {
        agent: Some("MAIN".into()),
        ..ListQuery::default()
    };
    assert_eq!(keys(q), (vec!["k2".into(), "k1".into()], 2));
    let q = ListQuery {
        search: Some("deploy".into()),
        ..ListQuery::default()
    };
    assert_eq!(keys(q).0, ["k1"]);
    let q = ListQuery {
        search: Some("NIGHT".into()),
        ..ListQuery::default()
    };
    assert_eq!(keys(q).0, ["k3"]);
    let q = ListQuery {
        label: Some("Deploy Notes".into()),
        ..ListQuery::default()
    };
    assert_eq!(keys(q).0, ["k1"]);
    let q = ListQuery {
        active_minutes: Some(1),
        now_ms: 60_025,
        ..ListQuery::default()
    };
    assert_eq!(keys(q).0, ["k2"]);
    let q = ListQuery {
        offset: 5,
        ..ListQuery::default()
    };
    assert_eq!(keys(q), (vec![], 3));
}

#[test]
fn the_cap_refuses_only_new_keys() {
    let d = TempDir::new();
    let store = SessionStore::open(&d.0, 1).unwrap();
    store.ensure("main", "a", 1, "run", None, None).unwrap();
    let e = store.ensure("main", "b", 1, "run", None, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "too many sessions (1); delete some with sessions.delete"
    );
    assert!(e.get_ref().is_some_and(|e| e.is::<TooManySessions>()));
    assert!(!store.ensure("main", "a", 2, "run", None, None).unwrap().1);
    store.ensure("other", "b", 1, "run", None, None).unwrap();
}

#[test]
fn ids_that_would_leave_the_sessions_directory_are_refused() {
    let d = TempDir::new();
    let store = open(&d);
    for agent in ["..", "a/b", "", "-x", &"a".repeat(65)] {
        let e = store.ensure(agent, "k", 1, "run", None, None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{agent}");
    }
    for id in ["../x", ".hidden", "", "a/b"] {
        assert!(store.transcript_path("main", id).is_err(), "{id}");
    }
    store.ensure("main", "k", 1, "run", None, None).unwrap();
    let e = store
        .update("main", "k", |e| e.session_id = "../escape".into())
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert_ne!(store.get("main", "k").unwrap().session_id, "../escape");
    assert!(!d.0.join("agents/..").join(INDEX).exists());
}
