//! The manual must not drift from the program: every command and every long
//! flag that the real binary's help texts show has to appear in
//! `man/clawgate.1`, and the manual keeps its sections in the agreed order.
//! The command list is read from `clawgate --help` itself, so a new command
//! is checked as soon as the top-level help lists it.

use std::process::Command;

const MAN: &str = include_str!("../man/clawgate.1");

/// Run the binary with `args`, expect success, and return its stdout.
fn stdout_of(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_clawgate"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run clawgate {args:?}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "clawgate {args:?}: {}: {stderr}",
        out.status
    );
    String::from_utf8(out.stdout).expect("clawgate prints UTF-8")
}

/// The names under "Commands:" in the top-level help, up to the blank line.
fn commands_in(top: &str) -> Vec<String> {
    let names: Vec<String> = top
        .lines()
        .skip_while(|l| l.trim_end() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    // An empty list would make the checks below pass without checking.
    assert!(
        names.iter().any(|n| n == "call"),
        "no command list in:\n{top}"
    );
    names
}

/// Every `--long-flag` in `text`, with its dashes.
fn long_flags_in(text: &str) -> Vec<String> {
    let mut flags: Vec<String> = text
        .match_indices("--")
        .filter_map(|(i, _)| {
            let rest = &text[i + 2..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .unwrap_or(rest.len());
            (end > 0).then(|| format!("--{}", &rest[..end]))
        })
        .collect();
    flags.sort();
    flags.dedup();
    flags
}

/// Whether the manual names `flag` in roff form (`\-\-bind\-host`), as a
/// whole flag: `\-\-bind` inside `\-\-bind\-host` does not count.
fn manual_has_flag(flag: &str) -> bool {
    let needle = flag.replace('-', "\\-");
    MAN.match_indices(&needle).any(|(i, _)| {
        let rest = &MAN[i + needle.len()..];
        !rest.starts_with("\\-") && !rest.starts_with(|c: char| c.is_ascii_alphanumeric())
    })
}

/// The lines of one `.SH` section of the manual.
fn manual_section(name: &str) -> Vec<&'static str> {
    MAN.lines()
        .skip_while(|l| section_title(l).as_deref() != Some(name))
        .skip(1)
        .take_while(|l| section_title(l).is_none())
        .collect()
}

fn section_title(line: &str) -> Option<String> {
    let title = line.strip_prefix(".SH ")?;
    Some(title.trim().trim_matches('"').to_owned())
}

#[test]
fn every_command_in_the_help_is_described_in_the_manual() {
    let described: Vec<&str> = manual_section("COMMANDS")
        .into_iter()
        .filter(|l| l.starts_with(".B"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    for cmd in commands_in(&stdout_of(&["--help"])) {
        assert!(described.contains(&cmd.as_str()), "COMMANDS lacks '{cmd}'");
    }
}

#[test]
fn every_long_flag_in_any_help_is_in_the_manual() {
    let top = stdout_of(&["--help"]);
    let mut missing = Vec::new();
    let mut helps = vec![("clawgate".to_owned(), top.clone())];
    for cmd in commands_in(&top) {
        helps.push((format!("clawgate {cmd}"), stdout_of(&[&cmd, "--help"])));
    }
    for (name, text) in &helps {
        for flag in long_flags_in(text) {
            if !manual_has_flag(&flag) {
                missing.push(format!("{flag} (from '{name} --help')"));
            }
        }
    }
    assert!(missing.is_empty(), "man/clawgate.1 lacks: {missing:#?}");
}

#[test]
fn manual_has_the_twelve_sections_in_order() {
    let want = [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "COMMANDS",
        "OPTIONS",
        "CONFIGURATION",
        "ENVIRONMENT",
        "SIGNALS",
        "FILES",
        "EXIT STATUS",
        "EXAMPLES",
        "SEE ALSO",
    ];
    let found: Vec<String> = MAN.lines().filter_map(section_title).collect();
    let mut rest = found.iter();
    for title in want {
        assert!(
            rest.any(|f| f == title),
            "section '{title}' missing or out of order in {found:?}"
        );
    }
}

#[test]
fn manual_escapes_the_hyphens_of_flags() {
    // A bare `-` renders as a typographic hyphen, which breaks copy and paste.
    for (n, line) in MAN.lines().enumerate() {
        assert!(!line.contains("--"), "man/clawgate.1:{}: {line}", n + 1);
    }
}

#[test]
fn version_prints_the_name_and_the_cargo_version() {
    let want = format!("clawgate {}\n", env!("CARGO_PKG_VERSION"));
    assert_eq!(stdout_of(&["--version"]), want);
    assert_eq!(stdout_of(&["-V"]), want);
}
