//! Numbers shown to people, in the unit of what they measure.
//!
//! One place decides how a value reads on the screen, in `status` text and
//! in headless text lines, so that a tired human reads `11.9 %`, `45 ms`
//! and `36 / 759 req` instead of `0.1189`, `0.045` and `35.726 / 758.75`.
//! JSON output and the journal keep the raw numbers; only text meant for
//! people goes through here.
//!
//! Conventions:
//! - **ratio** (0–1, e.g. an error ratio) is shown as a percentage of 100:
//!   `0.1189` → `11.9 %`; a difference of two ratios is a difference of
//!   percentages (`baseline + 1 %` means one request in a hundred more).
//! - **percent** (0–100) is shown as is: `12` → `12 %`.
//! - **seconds** below 1 s are shown in milliseconds (`0.045` → `45 ms`),
//!   below 1 ms in microseconds (`250 µs`), from 1 s on in seconds
//!   (`1.25 s`).
//! - **bytes** use binary (IEC 80000-13) prefixes: `1536` → `1.5 KiB`.
//! - **count** (requests, events) is a whole number: `35.726` → `36`;
//!   from a million on, `1.2 M`.
//! - **none**, or no unit: three significant digits, no suffix (`0.0512`,
//!   `250`, `1.23e-5`).
//!
//! Values keep three significant digits (`11.9 %`, `0.512 %`, `123 ms`)
//! with trailing zeros dropped (`5 %`, not `5.00 %`); a number and its
//! unit are separated by a space, as SI writes them — a no-break space
//! (U+00A0), so that wrapped text never puts the unit on the next line.
//! Non-finite values are written `NaN`, `+Inf`, `-Inf`.

use serde::{Deserialize, Serialize};

/// What a check's value measures. It bounds the values a source may answer
/// (the check's domain: a value outside is `inconclusive`, because the
/// source is lying or the query is wrong and neither is evidence) and says
/// how the value is shown to people.
///
/// Written in the config as `unit = "ratio" | "percent" | "seconds" |
/// "bytes" | "count" | "none"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A ratio between 0 and 1 (error ratios), shown as a percentage.
    Ratio,
    /// A percentage between 0 and 100.
    Percent,
    /// A duration in seconds, ≥ 0 (latencies), shown in µs, ms or s.
    Seconds,
    /// A count, ≥ 0 (requests, events), shown as a whole number.
    Count,
    /// A size in bytes, ≥ 0 (memory, payloads), shown with IEC prefixes.
    Bytes,
    /// A plain number: unbounded, no suffix (`unit = "none"`).
    #[serde(rename = "none")]
    Plain,
}

impl Unit {
    /// Every unit, in the order the config documents them.
    pub const ALL: [Unit; 6] = [
        Unit::Ratio,
        Unit::Percent,
        Unit::Seconds,
        Unit::Bytes,
        Unit::Count,
        Unit::Plain,
    ];

    /// The unit as written in the config: `ratio`, `percent`, `seconds`,
    /// `count`, `bytes`, `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Ratio => "ratio",
            Unit::Percent => "percent",
            Unit::Seconds => "seconds",
            Unit::Count => "count",
            Unit::Bytes => "bytes",
            Unit::Plain => "none",
        }
    }

    /// The unit of a built-in check kind: `error_rate` → ratio,
    /// `latency_quantile` → seconds; `promql` has none (unbounded unless
    /// the check sets `unit`).
    pub fn of_kind(kind: crate::config::CheckKind) -> Option<Unit> {
        match kind {
            crate::config::CheckKind::ErrorRate => Some(Unit::Ratio),
            crate::config::CheckKind::LatencyQuantile => Some(Unit::Seconds),
            crate::config::CheckKind::Promql => None,
        }
    }

    /// `Err(why)` when `v` (finite) is outside the unit's domain: a ratio
    /// outside 0–1, a percentage outside 0–100, a negative duration, count
    /// or size. A tiny float excess (≤ 1e-9 of the top) still counts.
    /// `none` admits every value.
    pub fn admits(self, v: f64) -> Result<(), String> {
        match self {
            Unit::Ratio if !(0.0..=1.0 + 1e-9).contains(&v) => Err(format!(
                "value {} is outside the domain of a ratio (0–1)",
                plain(v)
            )),
            Unit::Percent if !(0.0..=100.0 + 1e-7).contains(&v) => Err(format!(
                "value {} is outside the domain of a percentage (0–100)",
                plain(v)
            )),
            Unit::Seconds | Unit::Count | Unit::Bytes if v < 0.0 => Err(format!(
                "value {} is negative, impossible in {}",
                plain(v),
                self.as_str()
            )),
            _ => Ok(()),
        }
    }
}

/// `v` in `unit` for people (see the module conventions): `11.9 %`,
/// `45 ms`, `1.5 KiB`, `36`, `0.0512`. `None` is a plain number.
pub fn value(v: f64, unit: Option<Unit>) -> String {
    if !v.is_finite() {
        return non_finite(v);
    }
    match unit {
        Some(Unit::Ratio) => format!("{}\u{a0}%", sig3(v * 100.0)),
        Some(Unit::Percent) => format!("{}\u{a0}%", sig3(v)),
        Some(Unit::Seconds) => seconds(v),
        Some(Unit::Bytes) => bytes(v),
        Some(Unit::Count) => count(v),
        Some(Unit::Plain) | None => plain(v),
    }
}

/// A factor between two values: `3×`, `1.5×`, `0.25×`.
pub fn factor(v: f64) -> String {
    if !v.is_finite() {
        return non_finite(v);
    }
    format!("{}×", sig3(v))
}

/// Request counts of both tracks: `36 / 759 req`; an unknown count is `?`.
pub fn requests(canary: Option<f64>, baseline: Option<f64>) -> String {
    let n = |x: Option<f64>| x.map_or_else(|| "?".to_string(), count);
    format!("{}\u{a0}/\u{a0}{}\u{a0}req", n(canary), n(baseline))
}

/// A whole number: `35.726` → `36`; from a million on, three significant
/// digits with `k`-free SI suffixes `M`, `G`, `T` (`1.23 M`).
pub fn count(v: f64) -> String {
    if !v.is_finite() {
        return non_finite(v);
    }
    let a = v.abs();
    for (scale, suffix) in [(1e12, "T"), (1e9, "G"), (1e6, "M")] {
        if a >= scale {
            return format!("{}\u{a0}{suffix}", sig3(v / scale));
        }
    }
    // `-0` reads as `0`.
    let r = v.round();
    format!("{}", if r == 0.0 { 0.0 } else { r })
}

/// A plain number with three significant digits (`0.0512`, `250`,
/// `1234`, `1.23e-5`, `1.23e7`): no unit, no rounding of whole numbers
/// below a million.
pub fn plain(v: f64) -> String {
    if !v.is_finite() {
        return non_finite(v);
    }
    if v == 0.0 {
        return "0".into();
    }
    if !(1e-4..1e6).contains(&v.abs()) {
        return exponent(v);
    }
    sig3(v)
}

/// `1.23e-5`, `1.2e7`: three significant digits in scientific notation.
fn exponent(v: f64) -> String {
    let s = format!("{v:.2e}");
    // `1.20e-5` → `1.2e-5`.
    match s.split_once('e') {
        Some((m, e)) => format!("{}e{e}", trim(m)),
        None => s,
    }
}

/// Seconds as `250 µs`, `45 ms`, `1.25 s`.
fn seconds(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0\u{a0}s".into()
    } else if a < 1e-3 {
        format!("{}\u{a0}µs", sig3(v * 1e6))
    } else if a < 1.0 {
        format!("{}\u{a0}ms", sig3(v * 1e3))
    } else {
        format!("{}\u{a0}s", sig3(v))
    }
}

/// Bytes with IEC prefixes: `512 B`, `1.5 KiB`, `12 MiB`.
fn bytes(v: f64) -> String {
    let a = v.abs();
    for (scale, suffix) in [
        (1u64 << 50, "PiB"),
        (1 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ] {
        let scale = scale as f64;
        if a >= scale {
            return format!("{}\u{a0}{suffix}", sig3(v / scale));
        }
    }
    format!("{}\u{a0}B", sig3(v))
}

fn non_finite(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v > 0.0 {
        "+Inf".into()
    } else {
        "-Inf".into()
    }
}

/// Three significant digits, trailing zeros dropped; whole numbers of
/// three digits or more are shown whole (`1234`, not `1230`); from a
/// million on and below a millionth, as `1.23e7`.
fn sig3(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-6..1e6).contains(&a) {
        return exponent(v);
    }
    let decimals = if a >= 100.0 {
        0
    } else {
        // Digits after the point for three significant ones, at most 6.
        (2 - a.log10().floor() as i32).clamp(0, 6) as usize
    };
    let s = format!("{v:.decimals$}");
    let s = trim(&s);
    if s == "-0" { "0".into() } else { s.to_string() }
}

fn trim(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// A short duration for people: `45s`, `4m`, `2h` (whole units, rounded
/// down below a minute so that a countdown never shows more than is left).
pub fn short_duration(s: f64) -> String {
    let s = s.max(0.0);
    if s < 60.0 {
        format!("{:.0}s", s.floor())
    } else if s < 3600.0 {
        format!("{:.0}m", s / 60.0)
    } else {
        format!("{:.0}h", s / 3600.0)
    }
}

/// `text` led by `word` once: `led("aborted", "aborted by alice")` is
/// `aborted by alice`, `led("rollback", "trigger `errors` …")` is
/// `rollback: trigger `errors` …` (case-insensitive on the first word).
pub fn led(word: &str, text: &str) -> String {
    let first = text
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default();
    if first.eq_ignore_ascii_case(word.split(' ').next().unwrap_or(word)) {
        text.to_string()
    } else {
        format!("{word}: {text}")
    }
}

/// Checks a text meant for people against the two rules every reason
/// keeps: **said once** (no run of words immediately repeated, as in
/// `for 4s (for 4s)` or `inconclusive: inconclusive:`) and **no internal
/// names** (no `snake_case` identifier such as `rollback_when` or
/// `rolled_back`; names the user chose are quoted in backticks and
/// exempt). `Some(what is wrong)` when a rule is broken, else `None`.
pub fn text_flaw(text: &str) -> Option<String> {
    // Outside backticks only: `name` is the user's own word.
    let outside: String = text
        .split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, s)| s)
        .collect::<Vec<_>>()
        .join(" ");
    let words: Vec<&str> = outside
        .split(|c: char| c.is_whitespace() || ":;,()".contains(c))
        .filter(|w| !w.is_empty())
        .collect();
    for w in &words {
        let snake = w.contains('_')
            && w.split('_').all(|p| !p.is_empty())
            && w.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        if snake {
            return Some(format!("internal name `{w}` in {text:?}"));
        }
    }
    for k in 1..=6 {
        for i in 0..words.len().saturating_sub(2 * k - 1) {
            let (a, b) = (&words[i..i + k], &words[i + k..i + 2 * k]);
            let wordy = a
                .iter()
                .any(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 2);
            if a == b && wordy {
                return Some(format!("`{}` said twice in {text:?}", a.join(" ")));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The no-break spaces written as spaces, so that expected texts read plainly.
    fn sp(s: String) -> String {
        s.replace('\u{a0}', " ")
    }

    fn value(v: f64, u: Option<Unit>) -> String {
        sp(super::value(v, u))
    }
    use proptest::prelude::*;

    #[test]
    fn ratios_read_as_percentages() {
        assert_eq!(value(0.1189, Some(Unit::Ratio)), "11.9 %");
        assert_eq!(value(0.05, Some(Unit::Ratio)), "5 %");
        assert_eq!(value(0.0, Some(Unit::Ratio)), "0 %");
        assert_eq!(value(1.0, Some(Unit::Ratio)), "100 %");
        assert_eq!(value(0.00512, Some(Unit::Ratio)), "0.512 %");
        assert_eq!(value(0.000012, Some(Unit::Ratio)), "0.0012 %");
        assert_eq!(value(12.0, Some(Unit::Percent)), "12 %");
    }

    #[test]
    fn seconds_read_in_ms_or_s() {
        assert_eq!(value(0.045, Some(Unit::Seconds)), "45 ms");
        assert_eq!(value(0.36, Some(Unit::Seconds)), "360 ms");
        assert_eq!(value(0.0455, Some(Unit::Seconds)), "45.5 ms");
        assert_eq!(value(1.25, Some(Unit::Seconds)), "1.25 s");
        assert_eq!(value(0.00025, Some(Unit::Seconds)), "250 µs");
        assert_eq!(value(0.0, Some(Unit::Seconds)), "0 s");
        assert_eq!(value(75.0, Some(Unit::Seconds)), "75 s");
    }

    #[test]
    fn counts_are_whole_numbers() {
        assert_eq!(sp(requests(Some(35.726), Some(758.75))), "36 / 759 req");
        assert_eq!(sp(requests(Some(12.0), None)), "12 / ? req");
        assert_eq!(sp(count(1_234_567.0)), "1.23 M");
        assert_eq!(sp(count(-0.2)), "0");
        assert_eq!(value(4800.0, Some(Unit::Count)), "4800");
    }

    #[test]
    fn bytes_use_binary_prefixes() {
        assert_eq!(value(512.0, Some(Unit::Bytes)), "512 B");
        assert_eq!(value(1536.0, Some(Unit::Bytes)), "1.5 KiB");
        assert_eq!(value(12.0 * 1048576.0, Some(Unit::Bytes)), "12 MiB");
    }

    #[test]
    fn plain_numbers_keep_three_significant_digits() {
        assert_eq!(value(0.0512, None), "0.0512");
        assert_eq!(value(250.0, Some(Unit::Plain)), "250");
        assert_eq!(plain(1234.0), "1234");
        assert_eq!(plain(0.0), "0");
        assert_eq!(plain(1.23456e-6), "1.23e-6");
        assert_eq!(plain(-5.0), "-5");
        assert_eq!(value(f64::NAN, Some(Unit::Ratio)), "NaN");
        assert_eq!(value(f64::NEG_INFINITY, None), "-Inf");
        assert_eq!(factor(3.0), "3×");
        assert_eq!(factor(1.5), "1.5×");
    }

    #[test]
    fn domains() {
        assert!(Unit::Ratio.admits(1.5).is_err());
        assert!(Unit::Percent.admits(100.0).is_ok());
        assert!(Unit::Percent.admits(101.0).is_err());
        assert!(Unit::Plain.admits(-1e9).is_ok());
        assert!(Unit::Bytes.admits(-1.0).is_err());
    }

    #[test]
    fn config_names_round_trip() {
        for u in Unit::ALL {
            let s = format!("\"{}\"", u.as_str());
            assert_eq!(serde_json::from_str::<Unit>(&s).unwrap(), u);
        }
    }

    #[test]
    fn a_leading_word_is_said_once() {
        assert_eq!(led("aborted", "aborted by alice"), "aborted by alice");
        assert_eq!(
            led("rollback", "rollback by alice: x"),
            "rollback by alice: x"
        );
        assert_eq!(
            led("rollback", "trigger `e`: y"),
            "rollback: trigger `e`: y"
        );
        assert_eq!(
            led("rolled back", "trigger `e`: y"),
            "rolled back: trigger `e`: y"
        );
    }

    #[test]
    fn text_flaws_are_found() {
        assert!(text_flaw("fail: canary 11.9 % for 4s (for 4s)").is_some());
        assert!(text_flaw("inconclusive: inconclusive: no data").is_some());
        assert!(text_flaw("rollback_when `errors` fired").is_some());
        assert!(text_flaw("release finished: rolled_back").is_some());
        assert!(text_flaw("check `error_rate`: canary 1 / 1 req").is_none());
        assert!(text_flaw("canary 0 % and baseline 0 %").is_none());
    }

    proptest! {
        /// Every value inside its unit's domain reads as a number and a unit
        /// that fit a table cell (at most 12 columns).
        #[test]
        fn every_value_fits_a_cell(x in 0.0f64..=1.0, exp in 0i32..12, u in proptest::sample::select(Unit::ALL.to_vec())) {
            // A value inside the unit's domain, at every magnitude it allows.
            let v = match u {
                Unit::Ratio => x,
                Unit::Percent => x * 100.0,
                Unit::Seconds => x * 10f64.powi(exp.min(6)),
                _ => x * 10f64.powi(exp),
            };
            let s = value(v, Some(u));
            prop_assert!(!s.is_empty());
            prop_assert!(s.chars().count() <= 12, "{v} in {u:?}: {s}");
        }

        /// Domain values of a ratio round-trip to within the shown precision.
        #[test]
        fn ratio_percent_is_close(v in 0.001f64..=1.0) {
            let s = value(v, Some(Unit::Ratio));
            let shown: f64 = s.trim_end_matches(" %").parse().unwrap();
            prop_assert!((shown / 100.0 - v).abs() <= v * 0.006, "{v} shown {s}");
        }
    }
}
