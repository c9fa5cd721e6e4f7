use super::*;

use std::borrow::Cow;
use std::fs;
use std::time::UNIX_EPOCH;

use super::format::{format_line, Format};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clawgate-{name}-{}", sys::uuid_v4()));
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}

const PLAIN: Format = Format {
    json: false,
    journal: false,
    color: false,
};
const TS: &str = "2026-11-21T19:57:03.123Z";

#[test]
fn control_characters_are_escaped() {
    assert!(matches!(escape_controls("plain é"), Cow::Borrowed(_)));
    let evil = "a\nb\rc\td\u{1b}[31m\u{7f}\u{9b}é";
    assert_eq!(
        escape_controls(evil),
        "a\\nb\\rc\\td\\u{1b}[31m\\u{7f}\\u{9b}é"
    );
    let line = format_line(
        PLAIN,
        Level::Info,
        "x\n2026-01-01T00:00:00.000Z ERROR forged",
        TS,
    );
    assert_eq!(line.matches('\n').count(), 1);
    assert!(line.ends_with("x\\n2026-01-01T00:00:00.000Z ERROR forged\n"));
}

#[test]
fn plain_lines_have_timestamp_and_level() {
    let line = format_line(PLAIN, Level::Info, "listening", TS);
    assert_eq!(line, "2026-11-21T19:57:03.123Z INFO listening\n");
    let color = Format {
        color: true,
        ..PLAIN
    };
    let line = format_line(color, Level::Warn, "slow\u{1b}", TS);
    assert_eq!(line, format!("{TS} \x1b[33mWARN\x1b[0m slow\\u{{1b}}\n"));
}

#[test]
fn journal_lines_carry_the_priority_and_no_timestamp() {
    let journal = Format {
        journal: true,
        ..PLAIN
    };
    let cases = [
        (Level::Error, "<3>ERROR m\n"),
        (Level::Warn, "<4>WARN m\n"),
        (Level::Info, "<6>INFO m\n"),
        (Level::Debug, "<7>DEBUG m\n"),
        (Level::Trace, "<7>TRACE m\n"),
    ];
    for (level, want) in cases {
        assert_eq!(format_line(journal, level, "m", TS), want);
    }
}

#[test]
fn json_lines_escape_everything_and_round_trip() {
    let json = Format {
        json: true,
        ..PLAIN
    };
    let msg = "quote\" back\\ nl\n esc\u{1b} del\u{7f} csi\u{9b}";
    let line = format_line(json, Level::Warn, msg, TS);
    assert!(line.ends_with('\n'));
    let body = line.trim_end_matches('\n');
    assert!(!body.chars().any(char::is_control), "{body:?}");
    let v: serde_json::Value = serde_json::from_str(body).expect("valid json");
    assert_eq!(v["ts"], TS);
    assert_eq!(v["level"], "warn");
    assert_eq!(v["msg"], msg);
    let journal = Format {
        journal: true,
        ..json
    };
    assert!(format_line(journal, Level::Error, "m", TS).starts_with("<3>{"));
}

#[test]
fn libraries_log_only_warnings_and_errors() {
    let debug = LevelFilter::Debug;
    assert!(allowed(debug, Level::Debug, "clawgate"));
    assert!(allowed(debug, Level::Debug, "clawgate::server"));
    assert!(!allowed(debug, Level::Trace, "clawgate::server"));
    assert!(!allowed(debug, Level::Info, "tungstenite::protocol"));
    assert!(allowed(debug, Level::Warn, "tiny_http"));
    assert!(!allowed(debug, Level::Debug, "clawgatex"));
    assert!(!allowed(LevelFilter::Error, Level::Warn, "tiny_http"));
    assert!(!allowed(LevelFilter::Off, Level::Error, "clawgate"));
}

#[test]
fn timestamps_are_rfc3339_utc() {
    let at = |ms: u64| rfc3339(UNIX_EPOCH + std::time::Duration::from_millis(ms));
    assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(at(1_795_291_023_123), "2026-11-21T19:57:03.123Z");
    assert_eq!(at(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
    assert_eq!(at(951_868_800_000), "2000-03-01T00:00:00.000Z");
    assert_eq!(at(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
}

#[test]
fn journal_stream_must_match_stderr() {
    assert!(journal_stream_matches("8:12345", 8, 12345));
    assert!(!journal_stream_matches("8:12345", 8, 1));
    assert!(!journal_stream_matches("garbage", 8, 12345));
}

#[test]
fn file_rotates_and_keeps_two_old_files() {
    let dir = temp_dir("rotate");
    let path = log_file_path(&dir);
    let mut sink = FileSink::open(&path, 100, 2).expect("open");
    let mode = fs::metadata(path.parent().expect("dir"))
        .expect("stat")
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    for i in 0..5 {
        sink.write(format!("{i}{}\n", "x".repeat(58)).as_bytes())
            .expect("write");
    }
    let first = |p: &Path| fs::read_to_string(p).expect("read")[..1].to_string();
    assert_eq!(first(&path), "4");
    assert_eq!(first(&sink.numbered(1)), "3");
    assert_eq!(first(&sink.numbered(2)), "2");
    assert!(!sink.numbered(3).exists());
    fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn keep_zero_truncates_instead_of_rotating() {
    let dir = temp_dir("rotate0");
    let path = dir.join("x.log");
    let mut sink = FileSink::open(&path, 10, 0).expect("open");
    sink.write(b"0123456789\n").expect("write");
    sink.write(b"abc\n").expect("write");
    assert_eq!(fs::read_to_string(&path).expect("read"), "abc\n");
    assert!(!sink.numbered(1).exists());
    fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn init_installs_a_logger_that_fills_the_file() {
    let dir = temp_dir("init");
    let path = log_file_path(&dir);
    let cfg = LogConfig {
        level: LevelFilter::Debug,
        file: Some(path.clone()),
        ..LogConfig::default()
    };
    init(cfg.clone()).expect("init");
    assert!(init(cfg).is_err());
    log::info!("hello\nworld");
    log::debug!(target: "tungstenite::protocol", "library chatter");
    log::warn!(target: "tiny_http", "library warning");
    let text = fs::read_to_string(&path).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].ends_with("Z INFO hello\\nworld"), "{text}");
    assert!(
        lines[1].ends_with("Z WARN tiny_http: library warning"),
        "{text}"
    );
    fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn a_failing_log_file_is_abandoned() {
    let Ok(sink) = FileSink::open(Path::new("/dev/full"), 0, 0) else {
        return;
    };
    // The logger filters by the global level, which the other tests
    // also set no lower than this.
    log::set_max_level(LevelFilter::Debug);
    let logger = Logger {
        stderr: PLAIN,
        announce_on_stderr: false,
        file: Mutex::new(Some(sink)),
    };
    let record = |msg| {
        logger.log(
            &Record::builder()
                .args(format_args!("{msg}"))
                .level(Level::Info)
                .target("clawgate")
                .build(),
        )
    };
    record("disk full");
    assert!(logger.file.lock().expect("lock").is_none());
    record("still logging to stderr");
}

#[test]
fn long_messages_are_cut_and_say_how_long_they_were() {
    let mut m = "é".repeat(5000);
    clip_message(&mut m);
    assert!(m.len() <= MAX_MESSAGE + 32, "{}", m.len());
    assert!(m.ends_with("… (10000 bytes)"), "{}", &m[m.len() - 40..]);
    let mut short = "fine".to_string();
    clip_message(&mut short);
    assert_eq!(short, "fine");
}
