//! The journal's wire format and replay: every engine event of a release,
//! one JSON object per line, written before the event's effects run.
//! Replaying a release's records through the engine rebuilds its state
//! ([`replay`]). File I/O (append, torn tails, one file per release,
//! following) lives in [`crate::store`].
//!
//! A line is `{"v":1,"ts":…,"release":…,"event":{…}}`:
//! - `v` is the format [`VERSION`]; a line without `v` is from before
//!   versioning (version 0) and reads the same; a newer version is refused
//!   with a message naming it ([`DecodeError::Version`]).
//! - non-finite numbers (a 0/0 rate) are the strings `"NaN"`, `"inf"`,
//!   `"-inf"` ([`super::nonfinite`]).
//! - secrets are masked field by field before serialization
//!   ([`crate::redact::Redactor::redact_value`]), so the line stays valid JSON
//!   whatever a secret's value.

use super::engine::{Event, Release};
use crate::redact::Redactor;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The journal format this rolldeck writes (and the newest it reads).
pub const VERSION: u64 = 1;

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When the event was applied (RFC 3339 UTC).
    pub ts: Timestamp,
    /// The release it belongs to.
    pub release: String,
    /// The event.
    pub event: Event,
}

/// Why one line is not a record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// Written by a newer rolldeck.
    #[error(
        "journal format version {0} is newer than this rolldeck reads (up to {VERSION}); use a newer rolldeck"
    )]
    Version(String),
    /// Not UTF-8, not JSON, or not a record.
    #[error("not a journal record: {0}")]
    Invalid(String),
}

/// Encodes `rec` as one line (no newline), with the format version, secrets
/// masked field by field.
pub fn encode(rec: &Record, redactor: &Redactor) -> String {
    let mut v = serde_json::to_value(rec).expect("journal records serialize");
    redactor.redact_value(&mut v);
    let mut m = serde_json::Map::new();
    m.insert("v".into(), VERSION.into());
    if let serde_json::Value::Object(o) = v {
        m.extend(o);
    }
    serde_json::to_string(&serde_json::Value::Object(m)).expect("JSON values serialize")
}

/// Decodes one line (without its newline).
pub fn decode(line: &[u8]) -> Result<Record, DecodeError> {
    let text = std::str::from_utf8(line).map_err(|e| {
        DecodeError::Invalid(format!(
            "not valid UTF-8 (at byte {} of the line)",
            e.valid_up_to()
        ))
    })?;
    let mut v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| DecodeError::Invalid(e.to_string()))?;
    if let Some(o) = v.as_object_mut()
        && let Some(ver) = o.remove("v")
    {
        match ver.as_u64() {
            Some(n) if n <= VERSION => {}
            _ => return Err(DecodeError::Version(ver.to_string())),
        }
    }
    Record::deserialize(v).map_err(|e| DecodeError::Invalid(e.to_string()))
}

/// Rebuilds every release in the records, oldest first.
pub fn replay(records: &[Record]) -> Vec<Release> {
    let mut out: Vec<Release> = Vec::new();
    for r in records {
        apply(&mut out, r);
    }
    out
}

/// Applies one record to releases rebuilt so far (a `Start` adds one).
pub fn apply(releases: &mut Vec<Release>, r: &Record) {
    if let Event::Start { .. } = &r.event {
        if let Some((rel, _)) = Release::start(&r.event, r.ts) {
            releases.push(rel);
        }
        return;
    }
    if let Some(rel) = releases.iter_mut().rev().find(|x| x.id == r.release) {
        rel.apply(&r.event, r.ts);
    }
}

/// The latest release, if it has not finished (the one to resume).
pub fn unfinished(releases: &[Release]) -> Option<&Release> {
    releases.last().filter(|r| !r.is_finished())
}

/// Refuses to resume a release recorded for another service or environment
/// than the config's (a state directory copied or shared by mistake).
pub fn check_owner(release: &Release, service: &str, environment: &str) -> Result<(), String> {
    if release.service == service && release.environment == environment {
        return Ok(());
    }
    Err(format!(
        "the journal's release {} is for service `{}` in environment `{}`, but the config is for service `{service}` in environment `{environment}`; refusing to resume it (check --state-dir / state_dir)",
        release.id, release.service, release.environment
    ))
}
