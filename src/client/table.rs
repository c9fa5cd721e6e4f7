//! Plain-text tables and the small words in them, for `devices`, `nodes`
//! and `sessions`: aligned columns, ids cut to a prefix that is still
//! unique, ages ("3m ago"), finding a listed id from a prefix typed back,
//! and text from elsewhere made safe for a terminal. Pure functions of the
//! gateway's answers and the time given; no I/O.

use serde_json::Value;

/// Shortest length an id is shown at (and the usual one for hex ids).
pub(super) const SHORT_ID: usize = 12;
/// A request id is a UUID: its first group is usually enough.
pub(super) const SHORT_REQUEST: usize = 8;

/// Columns separated by two spaces, each as wide as its widest cell, no
/// trailing spaces; the header row first.
pub(super) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            out.push_str(cell);
            if i + 1 < cells.len() {
                let pad = w - cell.chars().count() + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.trim_end().to_owned()
    };
    let mut lines = vec![line(header.to_vec())];
    lines.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    lines.join("\n")
}

/// The length at which every id of `ids` is shown: at least `min`, and
/// long enough that no two of them look the same.
pub(super) fn short_len<'a>(ids: impl IntoIterator<Item = &'a str> + Clone, min: usize) -> usize {
    let longest = ids.clone().into_iter().map(str::len).max().unwrap_or(0);
    let mut n = min;
    while n < longest {
        let mut cut: Vec<&str> = ids.clone().into_iter().map(|id| prefix(id, n)).collect();
        let all = cut.len();
        cut.sort_unstable();
        cut.dedup();
        if cut.len() == all {
            break;
        }
        n += 1;
    }
    n
}

/// The first `n` bytes of `id`, or all of it; never splits a character.
pub(super) fn prefix(id: &str, n: usize) -> &str {
    let mut end = n.min(id.len());
    while !id.is_char_boundary(end) {
        end -= 1;
    }
    &id[..end]
}

/// How an id typed on the command line names one of `ids`.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Pick<'a> {
    /// Equal to one of them, or the prefix of exactly one.
    One(&'a str),
    /// The prefix of several: these.
    Several(Vec<&'a str>),
    /// Of none.
    None,
}

pub(super) fn pick<'a>(typed: &str, ids: impl IntoIterator<Item = &'a str>) -> Pick<'a> {
    let ids: Vec<&str> = ids.into_iter().collect();
    if let Some(id) = ids.iter().find(|id| **id == typed) {
        return Pick::One(id);
    }
    let mut found: Vec<&str> = ids
        .into_iter()
        .filter(|id| !typed.is_empty() && id.starts_with(typed))
        .collect();
    found.dedup();
    match found.len() {
        0 => Pick::None,
        1 => Pick::One(found[0]),
        _ => Pick::Several(found),
    }
}

/// The id to send for `typed`: the listed id it names, or `typed` as it
/// is when it names none, so the gateway's "unknown ..." answer is what
/// the user sees. Several: an error naming them (`what` is "request id",
/// "device id" ...).
pub(super) fn choose<'a>(
    typed: &str,
    ids: impl IntoIterator<Item = &'a str>,
    what: &str,
) -> Result<String, String> {
    match pick(typed, ids) {
        Pick::One(id) => Ok(id.to_owned()),
        Pick::None => Ok(typed.to_owned()),
        Pick::Several(ids) => Err(format!(
            "{what} '{typed}' is ambiguous: it starts {}; give more of it",
            ids.join(", ")
        )),
    }
}

/// How long ago `then_ms` was, at `now_ms`, in the largest whole unit:
/// "just now", "42s ago", "5m ago", "3h ago", "2d ago"; "-" for a time
/// not given.
pub(super) fn age(now_ms: u64, then_ms: Option<u64>) -> String {
    let Some(then) = then_ms.filter(|t| *t > 0) else {
        return "-".into();
    };
    let s = now_ms.saturating_sub(then) / 1000;
    match s {
        0 => "just now".into(),
        1..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86_399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

/// A string field, or "-" when absent or empty.
pub(super) fn text(v: &Value, key: &str) -> String {
    match v[key].as_str() {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => "-".into(),
    }
}

/// The strings of an array field.
pub(super) fn strings<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    v[key]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// An array field joined with commas, or "-" when empty.
pub(super) fn list(v: &Value, key: &str) -> String {
    let items = strings(v, key);
    if items.is_empty() {
        "-".into()
    } else {
        items.join(",")
    }
}

/// The objects of an array field.
pub(super) fn items<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v[key].as_array().map_or(&[], Vec::as_slice)
}

pub(super) fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

/// Text a model or a peer wrote, as it may go to a terminal: lines and
/// tabs kept, carriage returns dropped (CRLF line ends), every other
/// control character shown as `\u{..}`, so a reply can neither move the
/// cursor nor send an escape sequence to the terminal. Character by
/// character, so pieces of a text come out as the whole would.
pub(super) fn visible(text: &str) -> std::borrow::Cow<'_, str> {
    let plain = |c: char| !c.is_control() || c == '\n' || c == '\t';
    if text.chars().all(plain) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\r' => {}
            c if plain(c) => out.push(c),
            c => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns_without_trailing_spaces() {
        let rows = vec![
            vec!["a1".to_owned(), "capnode".to_owned(), "-".to_owned()],
            vec!["b22222".to_owned(), "x".to_owned(), "".to_owned()],
        ];
        let t = table(&["ID", "NAME", "LAST"], &rows);
        assert_eq!(
            t,
            "ID      NAME     LAST\n\
             a1      capnode  -\n\
             b22222  x"
        );
        assert_eq!(table(&["ID"], &[]), "ID");
    }

    #[test]
    fn ids_are_cut_where_they_still_differ() {
        let a = "3b7e4f01a2c9aaaa1111";
        let b = "3b7e4f01a2c9aaab2222";
        assert_eq!(short_len([a, "ffff"], SHORT_ID), SHORT_ID);
        assert_eq!(short_len([a, b], SHORT_ID), 16);
        assert_eq!(short_len([a, a], SHORT_ID), a.len());
        assert_eq!(short_len(["ab"], SHORT_ID), SHORT_ID);
        assert_eq!(short_len(Vec::<&str>::new(), 8), 8);
        assert_eq!(prefix("abc", 2), "ab");
        assert_eq!(prefix("abc", 9), "abc");
        assert_eq!(prefix("é", 1), "");
    }

    #[test]
    fn an_id_is_picked_exactly_or_by_a_unique_prefix() {
        let ids = ["6f1c2d9e-aaaa", "6f22ffff-bbbb", "7000"];
        assert_eq!(pick("7000", ids), Pick::One("7000"));
        assert_eq!(pick("6f1", ids), Pick::One("6f1c2d9e-aaaa"));
        assert_eq!(
            pick("6f", ids),
            Pick::Several(vec!["6f1c2d9e-aaaa", "6f22ffff-bbbb"])
        );
        assert_eq!(pick("zz", ids), Pick::None);
        assert_eq!(pick("", ids), Pick::None);
        // An exact id wins over being the prefix of another.
        assert_eq!(pick("ab", ["abc", "ab"]), Pick::One("ab"));
        assert_eq!(choose("6f1", ids, "request id"), Ok(ids[0].to_owned()));
        assert_eq!(choose("zz", ids, "request id"), Ok("zz".to_owned()));
        assert_eq!(
            choose("6f", ids, "request id"),
            Err("request id '6f' is ambiguous: it starts 6f1c2d9e-aaaa, 6f22ffff-bbbb; give more of it".to_owned())
        );
    }

    #[test]
    fn ages_use_the_largest_whole_unit() {
        let now = 10_000_000_000;
        for (ago_ms, want) in [
            (0, "just now"),
            (999, "just now"),
            (42_000, "42s ago"),
            (5 * 60_000 + 1, "5m ago"),
            (3 * 3_600_000, "3h ago"),
            (2 * 86_400_000 + 5, "2d ago"),
        ] {
            assert_eq!(age(now, Some(now - ago_ms)), want, "{ago_ms}");
        }
        assert_eq!(age(now, None), "-");
        assert_eq!(age(now, Some(0)), "-");
        // A clock behind the gateway's is not a negative age.
        assert_eq!(age(now, Some(now + 5000)), "just now");
    }

    #[test]
    fn fields_read_as_text_or_a_dash() {
        let v = json!({"a": "x", "e": "", "l": ["p", "q"], "n": []});
        assert_eq!(
            (text(&v, "a"), text(&v, "e"), text(&v, "z")),
            ("x".into(), "-".into(), "-".into())
        );
        assert_eq!((list(&v, "l"), list(&v, "n")), ("p,q".into(), "-".into()));
        assert_eq!(items(&v, "l").len(), 2);
        assert!(items(&v, "z").is_empty());
    }

    #[test]
    fn text_for_a_terminal_keeps_lines_and_shows_other_controls() {
        assert_eq!(visible("a\n\tb é"), "a\n\tb é");
        assert_eq!(visible("x\r\ny"), "x\ny");
        assert_eq!(visible("\u{1b}[2J\u{7}\u{9b}"), "\\u{1b}[2J\\u{7}\\u{9b}");
        assert_eq!(visible(""), "");
    }
}
