//! What a browser says it accepts and already has: the encodings of
//! `Accept-Encoding` by their q-values, and the HTTP dates of
//! `Last-Modified` / `If-Modified-Since`. Pure functions over header
//! text; no I/O, no clock (callers pass "now").

use std::time::{SystemTime, UNIX_EPOCH};

/// A precompressed representation a client may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Br,
    Gzip,
}

impl Encoding {
    /// The `Content-Encoding` value.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Br => "br",
            Encoding::Gzip => "gzip",
        }
    }

    /// The suffix of the sibling file that holds it.
    pub fn suffix(self) -> &'static str {
        match self {
            Encoding::Br => ".br",
            Encoding::Gzip => ".gz",
        }
    }
}

/// The encodings `accept` allows, best first: by q-value, brotli before
/// gzip on a tie. An encoding with `q=0` is refused, also when `*` would
/// allow it; `*` stands for those not named.
pub fn encodings(accept: Option<&str>) -> Vec<Encoding> {
    let Some(accept) = accept else {
        return Vec::new();
    };
    let (mut br, mut gzip, mut star) = (None, None, None);
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .map_or(Some(1000), |(_, v)| qvalue(v.trim()));
        let Some(q) = q else { continue };
        match name.as_str() {
            "br" => br = Some(q),
            "gzip" | "x-gzip" => gzip = Some(q),
            "*" => star = Some(q),
            _ => {}
        }
    }
    let mut out: Vec<(u16, Encoding)> = [(br, Encoding::Br), (gzip, Encoding::Gzip)]
        .into_iter()
        .filter_map(|(q, e)| q.or(star).filter(|q| *q > 0).map(|q| (q, e)))
        .collect();
    // A stable sort keeps brotli first among equals.
    out.sort_by_key(|(q, _)| std::cmp::Reverse(*q));
    out.into_iter().map(|(_, e)| e).collect()
}

/// A q-value (`0`, `0.5`, `1.000`; RFC 9110 §12.4.2) in thousandths,
/// read without the float parser.
fn qvalue(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Whole seconds since the epoch (0 before it).
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// An IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Seconds since the epoch of an IMF-fixdate; `None` for anything else
/// (the obsolete forms are not worth a revalidation).
pub fn parse_http_date(s: &str) -> Option<u64> {
    let rest = s.trim().split_once(", ")?.1;
    let f: Vec<&str> = rest.split(' ').collect();
    let [d, mon, y, hms, "GMT"] = f[..] else {
        return None;
    };
    let num = |t: &str, len: usize| {
        (t.len() == len && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse::<u64>().ok())
            .flatten()
    };
    let (d, y) = (num(d, 2)?, num(y, 4)?);
    let m = MONTHS.iter().position(|x| *x == mon)? as u64 + 1;
    let t: Vec<&str> = hms.split(':').collect();
    let [h, mi, se] = t[..] else { return None };
    let (h, mi, se) = (num(h, 2)?, num(mi, 2)?, num(se, 2)?);
    if !(1..=31).contains(&d) || y < 1970 || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let days = days_from_civil(y as i64, m as i64, d as i64);
    Some(days as u64 * 86_400 + h * 3600 + mi * 60 + se)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard
/// Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Encoding::{Br, Gzip};

    #[test]
    fn brotli_is_preferred_and_q_zero_refuses() {
        assert_eq!(encodings(Some("gzip, deflate, br, zstd")), vec![Br, Gzip]);
        assert_eq!(encodings(Some("gzip;q=1, br;q=0.5")), vec![Gzip, Br]);
        assert_eq!(encodings(Some("br;q=0, gzip")), vec![Gzip]);
        assert_eq!(encodings(Some("*;q=0.1, br;q=0")), vec![Gzip]);
        assert_eq!(encodings(Some("*")), vec![Br, Gzip]);
        assert_eq!(encodings(Some("identity")), vec![]);
        assert_eq!(encodings(Some("br;q=x, gzip;q=2")), vec![]);
        assert_eq!(encodings(None), vec![]);
        assert_eq!(encodings(Some("gzip;q=0.001, br;q=0.0")), vec![Gzip]);
        assert_eq!(encodings(Some("br;q=1.5, gzip;q=0.9999")), vec![]);
        assert_eq!(
            (qvalue("1"), qvalue("1.000"), qvalue("0.25"), qvalue(".5")),
            (Some(1000), Some(1000), Some(250), None)
        );
    }

    #[test]
    fn http_dates_round_trip() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        for secs in [0, 784_111_777, 951_782_400, 1_796_190_777, 4_102_444_799] {
            assert_eq!(parse_http_date(&http_date(secs)), Some(secs), "{secs}");
        }
        for bad in [
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }
}
