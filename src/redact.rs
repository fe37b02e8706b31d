//! Redaction of secret values.
//!
//! Secrets are the values that secret references in the config resolved to.
//! They must never appear in logs, the journal, the audit log, headless
//! output or `snapshot --json`, in any form they can take on the way there:
//!
//! - raw;
//! - percent-encoded, as a URL query, path or user-info would carry it
//!   (`%20` and `+` for a space, upper- and lower-case hex);
//! - JSON-escaped (`\\`, `\"`, `\n`, `\u0001` …) and Rust-`Debug`-escaped;
//! - with control characters removed (URL parsers drop tabs and newlines,
//!   [`crate::exec::strip_control`] drops every control character).
//!
//! Text goes through [`Redactor::redact`]. Structured records (the journal,
//! JSON output) go through [`Redactor::redact_value`] **before** they are
//! serialized: it masks string values field by field, so a secret equal to
//! `true`, `100` or `5` can never turn `"ok":true` into invalid JSON, and it
//! also masks whatever would spell a secret once the string is JSON-escaped.
//!
//! A form shorter than 3 bytes is not masked (masking every `a` would hide
//! everything and protect nothing), nor a secret equal to [`MASK`] itself.

use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, utf8_percent_encode};

/// The text that replaces a secret value.
pub const MASK: &str = "***";

/// Keys whose string values are structure, not free text: enum tags,
/// timestamps, durations and the release id. They are never masked, so a
/// secret that happens to equal `measured`, `pass` or `100` cannot make a
/// journal record unreadable. Rolldeck writes these values itself; none of
/// them carries text from a config value, a source or a command.
pub const STRUCTURAL_KEYS: &[&str] = &[
    "v",
    "type",
    "command",
    "phase",
    "kind",
    "verdict",
    "status",
    "outcome",
    "on_failure",
    "event",
    "effect",
    "ts",
    "at",
    "since",
    "started_at",
    "finished_at",
    "violated_since",
    "deadline",
    "last_at",
    "interval",
    "for_",
    "duration",
    "timeout",
    "release",
    "id",
];

/// The URL query set (WHATWG): what `url`/`reqwest` percent-encode in a query.
const QUERY: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'<').add(b'>');
/// The URL path set.
const PATH: &AsciiSet = &QUERY.add(b'?').add(b'`').add(b'{').add(b'}');
/// The URL user-info set.
const USERINFO: &AsciiSet = &PATH
    .add(b'/')
    .add(b':')
    .add(b';')
    .add(b'=')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'|');
/// Everything but unreserved characters (RFC 3986), as many clients encode.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Replaces every known secret, in every encoded form, with [`MASK`].
///
/// Cheap to clone; secrets shorter than 3 bytes are ignored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Redactor {
    secrets: Vec<String>,
    /// Every form of every secret, longest first.
    forms: Vec<String>,
}

/// The JSON escape of `s` as `serde_json` writes it inside a string literal,
/// with, for each output byte, the index of the input char it came from.
fn json_escape_mapped(s: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(s.len());
    let mut map = Vec::with_capacity(s.len());
    for (ci, c) in s.chars().enumerate() {
        let start = out.len();
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
        map.extend(std::iter::repeat_n(ci, out.len() - start));
    }
    (out, map)
}

/// Every form `secret` can take on its way into text (see the module docs).
pub fn forms_of(secret: &str) -> Vec<String> {
    let mut f = vec![secret.to_string()];
    f.push(json_escape_mapped(secret).0);
    let dbg = format!("{secret:?}");
    f.push(dbg[1..dbg.len() - 1].to_string());
    for set in [STRICT, NON_ALPHANUMERIC, QUERY, PATH, USERINFO] {
        let enc = utf8_percent_encode(secret, set).to_string();
        f.push(enc.replace("%20", "+"));
        f.push(lower_hex(&enc));
        f.push(enc);
    }
    let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    f.push(lower_hex(&form));
    f.push(form);
    f.push(secret.chars().filter(|c| !c.is_control()).collect());
    f.push(
        secret
            .chars()
            .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
            .collect(),
    );
    f.push(crate::exec::strip_control(secret));
    f.retain(|x| x.len() >= 3 && x != MASK);
    f.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    f.dedup();
    f
}

/// `%2F` → `%2f` (some clients write lower-case hex).
fn lower_hex(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push('%');
            out.push((b[i + 1] as char).to_ascii_lowercase());
            out.push((b[i + 2] as char).to_ascii_lowercase());
            i += 3;
        } else {
            let c = s[i..].chars().next().expect("in bounds");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

impl Redactor {
    /// Builds a redactor over the given secret values.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .filter(|s| s.len() >= 3 && s != MASK)
            .collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        let mut forms: Vec<String> = secrets.iter().flat_map(|s| forms_of(s)).collect();
        forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        forms.dedup();
        Self { secrets, forms }
    }

    /// Adds one more secret value.
    pub fn add(&mut self, secret: impl Into<String>) {
        let mut all = std::mem::take(&mut self.secrets);
        all.push(secret.into());
        *self = Self::new(all);
    }

    /// Returns `text` with every form of every secret replaced by [`MASK`],
    /// repeated until none is left (masking can join text into a new one).
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        // Each pass either shortens the text (a form longer than the mask)
        // or replaces at least one non-`*` character: this terminates.
        loop {
            let mut changed = false;
            for f in &self.forms {
                if out.contains(f.as_str()) {
                    out = out.replace(f.as_str(), MASK);
                    changed = true;
                }
            }
            if !changed {
                return out;
            }
        }
    }

    /// Redacts one string value that will be written inside a JSON string
    /// literal: no form of a secret is left in the value, nor in its
    /// JSON-escaped text.
    pub fn redact_json_str(&self, s: &str) -> String {
        let mut s = self.redact(s);
        loop {
            let (esc, map) = json_escape_mapped(&s);
            let mut hit: Option<(usize, usize)> = None;
            for f in &self.forms {
                if let Some(at) = esc.find(f.as_str()) {
                    hit = Some((map[at], map[at + f.len() - 1]));
                    break;
                }
            }
            let Some((first, last)) = hit else {
                return s;
            };
            // Mask the characters whose escapes spell the form.
            let mut out = String::with_capacity(s.len());
            for (ci, c) in s.chars().enumerate() {
                if ci == first {
                    out.push_str(MASK);
                }
                if ci < first || ci > last {
                    out.push(c);
                }
            }
            s = self.redact(&out);
        }
    }

    /// Masks secrets in every string of `v`, field by field, except the
    /// values of [`STRUCTURAL_KEYS`]. Numbers, booleans and keys are left
    /// alone, so the JSON stays valid and keeps its shape.
    pub fn redact_value(&self, v: &mut serde_json::Value) {
        if self.forms.is_empty() {
            return;
        }
        match v {
            serde_json::Value::String(s) => {
                let r = self.redact_json_str(s);
                if r != *s {
                    *s = r;
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| self.redact_value(x)),
            serde_json::Value::Object(o) => {
                for (k, x) in o.iter_mut() {
                    if x.is_string() && STRUCTURAL_KEYS.contains(&k.as_str()) {
                        continue;
                    }
                    self.redact_value(x);
                }
            }
            _ => {}
        }
    }

    /// `value` serialized as one line of JSON, secrets masked field by field.
    pub fn to_json_line<T: serde::Serialize>(&self, value: &T) -> serde_json::Result<String> {
        let mut v = serde_json::to_value(value)?;
        self.redact_value(&mut v);
        serde_json::to_string(&v)
    }

    /// True when no secrets are known.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_occurrence_and_longest_first() {
        let r = Redactor::new(vec![
            "hunter2".to_string(),
            "hunter2-extra".to_string(),
            "x".to_string(),
        ]);
        assert_eq!(r.redact("a hunter2 b hunter2-extra c x"), "a *** b *** c x");
    }

    #[test]
    fn leaves_text_without_secrets_alone() {
        let r = Redactor::new(vec!["s3cr3t".to_string()]);
        assert_eq!(r.redact("nothing here"), "nothing here");
        assert!(Redactor::default().is_empty());
    }

    #[test]
    fn json_escape_matches_serde_json() {
        let s = "a\"b\\c\n\t\u{1}\u{7f}é\u{1b}[0m\u{8}\u{c}";
        let lit = serde_json::to_string(s).unwrap();
        assert_eq!(json_escape_mapped(s).0, lit[1..lit.len() - 1]);
    }

    #[test]
    fn encoded_forms_of_the_issue_are_masked() {
        let r = Redactor::new(vec![
            "Pw with space".to_string(),
            "k3y\\backslash42".to_string(),
            "tab\tsecret99".to_string(),
        ]);
        for leak in [
            "GET /health?token=Pw%20with%20space failed",
            "GET /health?token=Pw+with+space failed",
            r#"{"detail":"k3y\\backslash42"}"#,
            "url http://x/?t=tabsecret99",
            "k3y%5Cbackslash42 k3y%5cbackslash42",
        ] {
            let out = r.redact(leak);
            assert!(out.contains(MASK), "{leak} -> {out}");
            for s in ["Pw", "backslash42", "secret99"] {
                assert!(!out.contains(s), "{leak} -> {out}");
            }
        }
    }

    #[test]
    fn values_that_look_like_json_keep_the_record_valid() {
        let r = Redactor::new(["true", "100", "null", "measured", "2026"].map(String::from));
        let v = serde_json::json!({
            "type": "measured", "ok": true, "weight": 100, "ts": "2026-01-01T00:00:00Z",
            "detail": "ok=true weight=100 at 2026", "n": null,
        });
        let line = r.to_json_line(&v).unwrap();
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["ok"], true);
        assert_eq!(back["weight"], 100);
        assert_eq!(back["type"], "measured");
        assert_eq!(back["detail"], "ok=*** weight=*** at ***");
    }

    #[test]
    fn a_secret_spelled_only_by_json_escapes_is_masked() {
        // The secret `n12` is not in the value "\n12", but its JSON text is `\n12`.
        let r = Redactor::new(["n12".to_string()]);
        let line = r.to_json_line(&serde_json::json!({"d": "a\n12b"})).unwrap();
        assert!(!line.contains("n12"), "{line}");
        serde_json::from_str::<serde_json::Value>(&line).unwrap();
    }
}
