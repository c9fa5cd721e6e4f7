//! The config file as text: where each value is and under which key
//! (for messages that name the key, not only a line and column), and
//! `${NAME}` references in string values replaced from the environment.
//!
//! Works on text that `serde_json` has already parsed, so it may assume
//! well-formed JSON; it still never panics on anything else. Substituting
//! in the text, rather than in a parsed value, keeps every line where it
//! was, so the strict typed parse that follows reports the file's own
//! line numbers.

use std::borrow::Cow;

use crate::config::Env;

/// One value of the file: its key path (`gateway.auth.token`, array
/// items as `[i]`) and the bytes of its token, quotes and brackets
/// included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) path: String,
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) string: bool,
}

/// Every value of `text` (objects and arrays too), in the order they
/// start. Keys are not values.
pub(super) fn values(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    let mut i = 0;
    value(text, &mut i, "", &mut out);
    out
}

/// The key path of the value a parse error at byte `at` is about: the last
/// value that starts at or before it (serde reports an error after the
/// token it read, or at the bracket it refused). None at the top level.
pub(super) fn path_at(spans: &[Span], at: usize) -> Option<&str> {
    spans
        .iter()
        .rev()
        .find(|s| s.start <= at)
        .map(|s| s.path.as_str())
        .filter(|p| !p.is_empty())
}

fn skip_ws(b: &[u8], i: &mut usize) {
    while b.get(*i).is_some_and(|c| c.is_ascii_whitespace()) {
        *i += 1;
    }
}

/// The end of the string token starting at `start` (its opening quote).
fn string_end(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn value(text: &str, i: &mut usize, path: &str, out: &mut Vec<Span>) {
    let b = text.as_bytes();
    skip_ws(b, i);
    let start = *i;
    let Some(&first) = b.get(start) else {
        return;
    };
    let at = out.len();
    out.push(Span {
        path: path.to_string(),
        start,
        end: start,
        string: first == b'"',
    });
    match first {
        b'"' => *i = string_end(b, start),
        b'{' | b'[' => {
            let close = if first == b'{' { b'}' } else { b']' };
            *i += 1;
            let mut index = 0;
            loop {
                skip_ws(b, i);
                match b.get(*i) {
                    None => break,
                    Some(&c) if c == close => {
                        *i += 1;
                        break;
                    }
                    Some(b',') => {
                        *i += 1;
                        continue;
                    }
                    Some(_) => {}
                }
                let before = *i;
                if first == b'{' {
                    let key_end = string_end(b, *i);
                    let key: String = serde_json::from_str(text.get(*i..key_end).unwrap_or(""))
                        .unwrap_or_default();
                    *i = key_end;
                    skip_ws(b, i);
                    if b.get(*i) == Some(&b':') {
                        *i += 1;
                    }
                    value(text, i, &child(path, &key), out);
                } else {
                    value(text, i, &format!("{path}[{index}]"), out);
                    index += 1;
                }
                if *i == before {
                    // Not JSON after all: stop rather than loop.
                    *i = b.len();
                }
            }
        }
        _ => {
            while b
                .get(*i)
                .is_some_and(|c| !matches!(c, b',' | b']' | b'}') && !c.is_ascii_whitespace())
            {
                *i += 1;
            }
        }
    }
    out[at].end = *i;
}

/// A replaced string token: where it was in the file and where it is in
/// the substituted text, so an error found in the one can be placed in
/// the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Edit {
    raw: (usize, usize),
    new: (usize, usize),
}

/// The byte of the file that byte `at` of the substituted text came from
/// (the start of a replaced token for any byte inside it).
pub(super) fn raw_offset(edits: &[Edit], at: usize) -> usize {
    let mut shift: isize = 0;
    for e in edits {
        if at < e.new.0 {
            break;
        }
        if at < e.new.1 {
            return e.raw.0;
        }
        shift = e.raw.1 as isize - e.new.1 as isize;
    }
    at.saturating_add_signed(shift)
}

/// A `${NAME}` that the environment does not set: the key path of the
/// value and the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unset {
    pub(super) path: String,
    pub(super) name: String,
}

/// The text with `${NAME}` replaced in every string value, and where it
/// changed. An unset (or empty) variable is an error wherever it is used
/// (left as text it would become a literal token, password or URL),
/// except in a value for which `absent` says yes: that value becomes
/// `null`, as if the file did not set it.
pub(super) fn substitute<'t>(
    text: &'t str,
    spans: &[Span],
    env: Env,
    absent: impl Fn(&str) -> bool,
) -> Result<(Cow<'t, str>, Vec<Edit>), Unset> {
    if !text.contains("${") {
        return Ok((Cow::Borrowed(text), Vec::new()));
    }
    let mut out = String::with_capacity(text.len());
    let mut edits = Vec::new();
    let mut copied = 0;
    for s in spans.iter().filter(|s| s.string) {
        let token = text.get(s.start..s.end).unwrap_or("");
        if !token.contains('$') {
            continue;
        }
        let Ok(decoded) = serde_json::from_str::<String>(token) else {
            continue;
        };
        let encoded = match expand(&decoded, env) {
            Ok(Cow::Borrowed(_)) => continue,
            Ok(Cow::Owned(expanded)) => serde_json::to_string(&expanded).unwrap_or_default(),
            Err(_) if absent(&s.path) => "null".to_string(),
            Err(name) => {
                return Err(Unset {
                    path: s.path.clone(),
                    name,
                })
            }
        };
        out.push_str(&text[copied..s.start]);
        let at = out.len();
        out.push_str(&encoded);
        edits.push(Edit {
            raw: (s.start, s.end),
            new: (at, out.len()),
        });
        copied = s.end;
    }
    if edits.is_empty() {
        return Ok((Cow::Borrowed(text), edits));
    }
    out.push_str(&text[copied..]);
    Ok((Cow::Owned(out), edits))
}

/// One string with its references replaced: `${NAME}` (NAME is a letter
/// or `_`, then letters, digits or `_`) by the variable, `$${` by a
/// literal `${`; anything else that is not a reference stays as written.
/// Err(NAME) for a variable that is unset or empty.
pub(super) fn expand<'s>(s: &'s str, env: Env) -> Result<Cow<'s, str>, String> {
    if !s.contains("${") {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
            continue;
        }
        match reference(after) {
            Some((name, len)) => {
                let value = env(name)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| name.to_string())?;
                out.push_str(&value);
                rest = &after[len..];
            }
            None => {
                out.push('$');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// `${NAME}` at the start of `s`: the name and the reference's length.
fn reference(s: &str) -> Option<(&str, usize)> {
    let inner = s.strip_prefix("${")?;
    let end = inner.find('}')?;
    let name = &inner[..end];
    let mut chars = name.chars();
    let first = chars.next()?;
    let ok = (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then_some((name, end + 3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "TOKEN" => Some("s3cr\"et\\".to_string()),
            "HOST" => Some("gw.lan".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn references_are_replaced_and_the_rest_is_kept() {
        let e: Env = &env;
        assert_eq!(expand("${TOKEN}", e).unwrap(), "s3cr\"et\\");
        assert_eq!(
            expand("http://${HOST}:8080/${HOST}", e).unwrap(),
            "http://gw.lan:8080/gw.lan"
        );
        assert_eq!(expand("$${HOST} ${HOST}", e).unwrap(), "${HOST} gw.lan");
        for literal in ["$HOST", "${}", "${1X}", "${A-B}", "${HOST", "a$", "$$"] {
            assert_eq!(expand(literal, e).unwrap(), literal);
        }
        assert!(matches!(expand("plain", e).unwrap(), Cow::Borrowed(_)));
        assert_eq!(expand("x${NOPE}", e).unwrap_err(), "NOPE");
        assert_eq!(expand("${EMPTY}", e).unwrap_err(), "EMPTY");
        assert_eq!(expand("${lower_1}", &|_| Some("v".into())).unwrap(), "v");
    }

    #[test]
    fn values_know_their_key_paths() {
        let text = r#"{"a": {"b": [1, "x", {"c": true}]}, "d": "e\"}"}"#;
        let got: Vec<(String, bool)> = values(text)
            .into_iter()
            .map(|s| (s.path, s.string))
            .collect();
        let want = [
            ("", false),
            ("a", false),
            ("a.b", false),
            ("a.b[0]", false),
            ("a.b[1]", true),
            ("a.b[2]", false),
            ("a.b[2].c", false),
            ("d", true),
        ];
        let want: Vec<(String, bool)> = want.iter().map(|(p, s)| (p.to_string(), *s)).collect();
        assert_eq!(got, want);
        let spans = values(text);
        let x = text.find("\"x\"").unwrap();
        assert_eq!(path_at(&spans, x + 3), Some("a.b[1]"));
        assert_eq!(path_at(&spans, 0), None);
        // Anything that is not JSON ends the walk instead of looping.
        for junk in ["{", "[1,", "{\"a\"", "{\"a\":", "}", "[[[", "\"abc"] {
            let _ = values(junk);
        }
    }

    #[test]
    fn substitution_edits_only_string_values_and_maps_offsets_back() {
        let text = "{\n  \"${HOST}\": \"${HOST}\",\n  \"t\": \"${TOKEN}\", \"n\": 5\n}";
        let spans = values(text);
        let (new, edits) = substitute(text, &spans, &env, |_| false).unwrap();
        assert_eq!(
            new,
            "{\n  \"${HOST}\": \"gw.lan\",\n  \"t\": \"s3cr\\\"et\\\\\", \"n\": 5\n}"
        );
        let v: serde_json::Value = serde_json::from_str(&new).unwrap();
        assert_eq!(v["t"], "s3cr\"et\\");
        let five = new.find('5').unwrap();
        assert_eq!(raw_offset(&edits, five), text.find('5').unwrap());
        let inside = new.find("gw.lan").unwrap();
        assert_eq!(
            raw_offset(&edits, inside),
            text.find("\"${HOST}\",").unwrap()
        );
        assert_eq!(raw_offset(&edits, 1), 1);

        let none = "{\"a\": \"$${HOST}\"}";
        let (new, _) = substitute(none, &values(none), &env, |_| false).unwrap();
        assert_eq!(new, "{\"a\": \"${HOST}\"}");
        let plain = "{\"a\": \"b\"}";
        assert!(matches!(
            substitute(plain, &values(plain), &env, |_| false)
                .unwrap()
                .0,
            Cow::Borrowed(_)
        ));
        let bad = "{\"gateway\": {\"auth\": {\"token\": \"${NOPE}\"}}}";
        assert_eq!(
            substitute(bad, &values(bad), &env, |_| false).unwrap_err(),
            Unset {
                path: "gateway.auth.token".into(),
                name: "NOPE".into()
            }
        );
        let (new, _) = substitute(bad, &values(bad), &env, |p| p.ends_with("token")).unwrap();
        assert_eq!(new, "{\"gateway\": {\"auth\": {\"token\": null}}}");
    }
}
