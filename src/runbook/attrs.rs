//! Fence attributes, compatible with Runme's cell attributes
//! (<https://docs.runme.dev/configuration/cell-level>).
//!
//! The info string of a fence is `LANG` optionally followed by an attribute
//! object: JSON (```` ```sh {"name":"x","confirm":"true"} ````, Runme's
//! current form) or Runme's older `{ name=x confirm=true }`. Values may be
//! JSON strings or booleans; booleans written as strings must be `"true"`
//! or `"false"`.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

/// The keys rolldeck reads.
pub const KEYS: &[&str] = &[
    "name",
    "confirm",
    "timeout",
    "background",
    "interactive",
    "excludeFromRunAll",
];

/// Runme keys rolldeck does not use: accepted with a warning.
const RUNME_OTHER_KEYS: &[&str] = &[
    "id",
    "cwd",
    "category",
    "closeTerminalOnSuccess",
    "mimeType",
    "promptEnv",
    "terminalRows",
    "skipPrompts",
    "tag",
    "interpreter",
    "openTerminalOnError",
];

/// The attributes of one block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Attributes {
    /// `name`: the block's name.
    pub name: Option<String>,
    /// `confirm`: ask before running.
    pub confirm: bool,
    /// `timeout` (humantime, e.g. `"30s"`, `"5m"`): the time limit,
    /// at most [`crate::config::MAX_DURATION`].
    #[serde(with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// `background`: a long-running block (rolldeck runs every block as a
    /// task; it is still bounded by its timeout).
    pub background: bool,
    /// `interactive: true` (explicit): the block needs a terminal for input,
    /// which rolldeck does not give (stdin is `/dev/null`): not runnable.
    pub interactive: bool,
    /// `excludeFromRunAll`: left out when a checklist step or "run all"
    /// runs every block.
    pub exclude_from_run_all: bool,
}

/// The outcome of reading an info string.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Info {
    /// First word, lower-cased (`None` when the info string is empty or
    /// starts with `{`).
    pub language: Option<String>,
    /// The attributes read (defaults when there are none or on error).
    pub attributes: Attributes,
    /// The attribute object as written.
    pub raw: Map<String, Value>,
    /// Problems that make the block not runnable.
    pub errors: Vec<String>,
    /// Problems worth a warning.
    pub warnings: Vec<String>,
}

/// Reads a fence's info string.
pub fn parse_info(info: &str) -> Info {
    let info = info.trim();
    let (lang, rest) = match info.find(|c: char| c.is_whitespace() || c == '{') {
        Some(i) => (&info[..i], info[i..].trim()),
        None => (info, ""),
    };
    let mut out = Info {
        language: (!lang.is_empty()).then(|| lang.to_ascii_lowercase()),
        ..Info::default()
    };
    if !rest.starts_with('{') {
        // Other words after the language (`bash title="x"`) are not ours.
        return out;
    }
    let obj = rest;
    let map = match serde_json::from_str::<Value>(obj) {
        Ok(Value::Object(m)) => m,
        Ok(other) => {
            out.errors.push(format!(
                "malformed attributes {}: a JSON object is needed, not {other}",
                shorten(obj)
            ));
            return out;
        }
        Err(json_err) => match legacy(obj) {
            Some(m) => m,
            None => {
                out.errors.push(format!(
                    "malformed attributes {}: {json_err} (write a JSON object such as {{\"name\":\"check-pool\",\"confirm\":\"true\"}})",
                    shorten(obj)
                ));
                return out;
            }
        },
    };
    out.raw = map.clone();
    for (k, v) in &map {
        match k.as_str() {
            "name" => match v {
                Value::String(s) => match check_name(s) {
                    Ok(()) => out.attributes.name = Some(s.clone()),
                    Err(e) => out.errors.push(e),
                },
                other => out
                    .errors
                    .push(format!("attribute `name` must be a string, not {other}")),
            },
            "confirm" => set_bool(k, v, &mut out.attributes.confirm, &mut out.errors),
            "background" => set_bool(k, v, &mut out.attributes.background, &mut out.errors),
            "interactive" => set_bool(k, v, &mut out.attributes.interactive, &mut out.errors),
            "excludeFromRunAll" => set_bool(
                k,
                v,
                &mut out.attributes.exclude_from_run_all,
                &mut out.errors,
            ),
            "timeout" => match v {
                Value::String(s) => match humantime::parse_duration(s.trim()) {
                    Ok(d) if d.is_zero() => out
                        .errors
                        .push("attribute `timeout` must be longer than zero".into()),
                    Ok(d) if d > crate::config::MAX_DURATION => out.errors.push(format!(
                        "attribute `timeout` {s:?} is longer than {}",
                        humantime::format_duration(crate::config::MAX_DURATION)
                    )),
                    Ok(d) => out.attributes.timeout = Some(d),
                    Err(e) => out.errors.push(format!(
                        "attribute `timeout` {s:?} is not a duration ({e}); write e.g. \"30s\" or \"5m\""
                    )),
                },
                other => out.errors.push(format!(
                    "attribute `timeout` must be a duration string such as \"30s\", not {other}"
                )),
            },
            other if RUNME_OTHER_KEYS.contains(&other) => out.warnings.push(format!(
                "attribute `{other}` is not used by rolldeck (ignored)"
            )),
            other => match crate::config::suggest(other, KEYS.iter().copied()) {
                // A typo of a key that changes how the block runs must not
                // be ignored: `confrim` would run without asking.
                Some(s) => out.errors.push(format!(
                    "unknown attribute `{other}` (did you mean `{s}`?)"
                )),
                None => out.warnings.push(format!(
                    "unknown attribute `{other}` (ignored); rolldeck reads {}",
                    KEYS.join(", ")
                )),
            },
        }
    }
    out
}

fn set_bool(key: &str, v: &Value, slot: &mut bool, errors: &mut Vec<String>) {
    match v {
        Value::Bool(b) => *slot = *b,
        Value::String(s) if s.eq_ignore_ascii_case("true") => *slot = true,
        Value::String(s) if s.eq_ignore_ascii_case("false") => *slot = false,
        other => errors.push(format!(
            "attribute `{key}` must be true or false (or \"true\" / \"false\"), not {other}"
        )),
    }
}

/// A block name: 1–100 characters, no whitespace or control characters.
pub fn check_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        Err("attribute `name` must not be empty".into())
    } else if s.chars().count() > 100 {
        Err("attribute `name` is longer than 100 characters".into())
    } else if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(format!(
            "attribute `name` {:?} must not contain spaces or control characters",
            crate::config::clean(s)
        ))
    } else {
        Ok(())
    }
}

/// Runme's older form: `{ name=x confirm=true timeout="30s" }`.
fn legacy(obj: &str) -> Option<Map<String, Value>> {
    let inner = obj.trim().strip_prefix('{')?.strip_suffix('}')?;
    let words = shlex::split(inner)?;
    if words.is_empty() {
        return None;
    }
    let mut m = Map::new();
    for w in words {
        let (k, v) = w.split_once('=')?;
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    Some(m)
}

fn shorten(s: &str) -> String {
    let mut out: String = crate::config::clean(s).chars().take(60).collect();
    if s.chars().count() > 60 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_attributes() {
        let i = parse_info(r#"sh {"name":"check-constraint","confirm":"true","timeout":"30s"}"#);
        assert_eq!(i.language.as_deref(), Some("sh"));
        assert_eq!(i.attributes.name.as_deref(), Some("check-constraint"));
        assert!(i.attributes.confirm);
        assert_eq!(i.attributes.timeout, Some(Duration::from_secs(30)));
        assert!(i.errors.is_empty(), "{:?}", i.errors);
    }

    #[test]
    fn booleans_and_legacy_form() {
        let i = parse_info(r#"bash {"background":true,"excludeFromRunAll":"false"}"#);
        assert!(i.attributes.background);
        assert!(!i.attributes.exclude_from_run_all);
        let l = parse_info("sh { name=restart confirm=true }");
        assert_eq!(l.attributes.name.as_deref(), Some("restart"));
        assert!(l.attributes.confirm);
    }

    #[test]
    fn errors_are_reported_not_ignored() {
        let bad = parse_info(r#"sh {"name":"x","confirm":"yes"}"#);
        assert_eq!(bad.errors.len(), 1, "{:?}", bad.errors);
        let typo = parse_info(r#"sh {"confrim":"true"}"#);
        assert!(
            typo.errors[0].contains("did you mean `confirm`"),
            "{typo:?}"
        );
        let malformed = parse_info(r#"sh {"name":"x",}"#);
        assert!(malformed.errors[0].starts_with("malformed attributes"));
        let long = parse_info(r#"sh {"timeout":"4000d"}"#);
        assert!(long.errors[0].contains("longer than"), "{long:?}");
        let other = parse_info(r#"sh {"mimeType":"text/plain"}"#);
        assert!(other.errors.is_empty() && other.warnings.len() == 1);
    }

    #[test]
    fn no_attributes() {
        let i = parse_info("Bash");
        assert_eq!(i.language.as_deref(), Some("bash"));
        assert_eq!(i.attributes, Attributes::default());
        let t = parse_info(r#"bash title="x""#);
        assert_eq!(t.language.as_deref(), Some("bash"));
        assert!(t.errors.is_empty());
        assert_eq!(parse_info("").language, None);
    }
}
