//! Incidents and their timeline: what happened, when, and who did it, for
//! the postmortem.
//!
//! `:incident P1 "title"` in the cockpit starts an incident. From then on
//! every runbook block run, action, verdict change, alert change (firing /
//! resolved) and operator note (`:note text`) is an [`Entry`] of its
//! timeline, with its UTC time and operator, until `:incident resolve`.
//!
//! The timeline is durable: one append-only JSON-lines file per state
//! directory, `<state>/timeline.jsonl` ([`timeline`]), written with the
//! journal's rules (each line fsynced; a torn last line set aside, see
//! [`crate::store::file`]) and redacted like the journal. Several
//! incidents follow one another in the file; [`replay`] groups the entries
//! by incident. `rolldeck timeline [--markdown|--json]` and the cockpit's
//! `:timeline` export the latest incident ([`export`]).
//!
//! Who may write (decided here, documented in the README):
//! - starting and resolving an incident: a cockpit that may drive (driver
//!   or idle), never an observer or `--read-only`;
//! - notes: the driver, idle cockpits and observers — a second engineer's
//!   observation belongs in the postmortem and changes nothing in
//!   production; each note carries its operator. `--read-only` writes
//!   nothing at all (it may run on a read-only share);
//! - automatic entries (actions, verdicts, alerts): every cockpit but
//!   `--read-only`; the same event seen by two cockpits is written twice
//!   and counted once ([`Entry::key`]).

pub mod export;
pub mod timeline;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The timeline file format version written in each line's `v`.
pub const VERSION: u64 = 1;

/// An incident's severity: `P0` (highest) to `P4`, the on-call convention
/// of seed 001 ("P0 flow"). Parsed case-insensitively; `SEV1` is `P1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    /// Everything is down.
    P0,
    /// A major function is down.
    P1,
    /// Degraded.
    P2,
    /// Minor.
    P3,
    /// Cosmetic / follow-up.
    P4,
}

impl Severity {
    /// Every severity, highest first.
    pub const ALL: [Severity; 5] = [
        Severity::P0,
        Severity::P1,
        Severity::P2,
        Severity::P3,
        Severity::P4,
    ];

    /// `P0` … `P4`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::P0 => "P0",
            Severity::P1 => "P1",
            Severity::P2 => "P2",
            Severity::P3 => "P3",
            Severity::P4 => "P4",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;

    /// `P0`–`P4` or `SEV0`–`SEV4`, any case.
    fn from_str(s: &str) -> Result<Self, String> {
        let l = s.trim().to_ascii_uppercase();
        let digit = l.strip_prefix("SEV").or_else(|| l.strip_prefix('P'));
        match digit {
            Some("0") => Ok(Severity::P0),
            Some("1") => Ok(Severity::P1),
            Some("2") => Ok(Severity::P2),
            Some("3") => Ok(Severity::P3),
            Some("4") => Ok(Severity::P4),
            _ => Err(format!(
                "severity `{s}` is not one of P0, P1, P2, P3, P4 (P0 is the highest)"
            )),
        }
    }
}

/// What a timeline entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The incident started (`severity`, `text` = the title).
    Start,
    /// An operator's note (`:note text`).
    Note,
    /// A runbook block ran (`text`: runbook, block, exit code).
    Block,
    /// A runbook check was ticked or unticked.
    Check,
    /// A runbook was opened.
    Runbook,
    /// An action ran (from the audit log: rollback, traffic switch, …).
    Action,
    /// A check's verdict changed, or the release changed phase.
    Verdict,
    /// An alert started firing.
    AlertFiring,
    /// A firing alert resolved (no longer in the alerts API).
    AlertResolved,
    /// The incident was resolved (`text`: the operator's words).
    Resolve,
}

impl Kind {
    /// In words for the exported timeline: `note`, `block run`, `alert
    /// firing`.
    pub fn words(self) -> &'static str {
        match self {
            Kind::Start => "incident started",
            Kind::Note => "note",
            Kind::Block => "block run",
            Kind::Check => "check",
            Kind::Runbook => "runbook",
            Kind::Action => "action",
            Kind::Verdict => "verdict",
            Kind::AlertFiring => "alert firing",
            Kind::AlertResolved => "alert resolved",
            Kind::Resolve => "incident resolved",
        }
    }
}

/// One line of the timeline file (JSON, with the format version `v`
/// added when written): `{"v":1,"ts":"2026-11-23T18:01:02.5Z",
/// "incident":"INC-20261123-180102","operator":"ana@bastion (ssh
/// 10.0.0.7, /dev/pts/3)","kind":"note","text":"…"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// When it happened (UTC; shown in local time with the zone).
    pub ts: Timestamp,
    /// The incident's id ([`incident_id`]).
    pub incident: String,
    /// Who: the operator ([`crate::exec::Operator`]'s text), or `plan` /
    /// `prometheus` for what happened by itself.
    pub operator: String,
    /// What kind of entry.
    pub kind: Kind,
    /// What happened, in words (the title for [`Kind::Start`]).
    pub text: String,
    /// The severity ([`Kind::Start`] only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// Identifies the event an automatic entry records (`audit:<run id>`,
    /// `alert:<name>:<labels>:<active since>:firing`), so the same event
    /// written by two cockpits is counted once by [`replay`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// `INC-20261123-180102`: the UTC start time to the second.
pub fn incident_id(at: Timestamp) -> String {
    at.strftime("INC-%Y%m%d-%H%M%S").to_string()
}

/// One incident as replayed from the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// Its id.
    pub id: String,
    /// Severity from its start entry.
    pub severity: Severity,
    /// Title from its start entry.
    pub title: String,
    /// When it started.
    pub started_at: Timestamp,
    /// Who started it.
    pub started_by: String,
    /// When it was resolved, if it was.
    pub resolved_at: Option<Timestamp>,
    /// Every entry, start included, in the order written (duplicates by
    /// [`Entry::key`] left out).
    pub entries: Vec<Entry>,
}

impl Incident {
    /// Whether it is still open.
    pub fn open(&self) -> bool {
        self.resolved_at.is_none()
    }

    /// Whether an automatic entry with `key` is already in the timeline.
    pub fn has_key(&self, key: &str) -> bool {
        self.entries.iter().any(|e| e.key.as_deref() == Some(key))
    }
}

/// Groups timeline entries into incidents, oldest first. An entry whose
/// incident has no start entry before it is left out (a hand-edited or
/// foreign line), as is an entry repeating an earlier one's
/// [`Entry::key`] in the same incident; a second start of the same id is
/// ignored; entries after a resolve are kept (a late note).
pub fn replay(entries: &[Entry]) -> Vec<Incident> {
    let mut out: Vec<Incident> = Vec::new();
    for e in entries {
        match out.iter_mut().find(|i| i.id == e.incident) {
            None if e.kind == Kind::Start => out.push(Incident {
                id: e.incident.clone(),
                severity: e.severity.unwrap_or(Severity::P2),
                title: e.text.clone(),
                started_at: e.ts,
                started_by: e.operator.clone(),
                resolved_at: None,
                entries: vec![e.clone()],
            }),
            None => {}
            Some(_) if e.kind == Kind::Start => {}
            Some(i) => {
                if e.key.as_deref().is_some_and(|k| i.has_key(k)) {
                    continue;
                }
                if e.kind == Kind::Resolve && i.resolved_at.is_none() {
                    i.resolved_at = Some(e.ts);
                }
                i.entries.push(e.clone());
            }
        }
    }
    out
}

/// The incident that is open now: the latest one, if not resolved.
pub fn open_incident(incidents: &[Incident]) -> Option<&Incident> {
    incidents.last().filter(|i| i.open())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(sec: i64, kind: Kind, text: &str, key: Option<&str>) -> Entry {
        Entry {
            ts: Timestamp::from_second(1_800_000_000 + sec).unwrap(),
            incident: "INC-1".into(),
            operator: "ana@h".into(),
            kind,
            text: text.into(),
            severity: (kind == Kind::Start).then_some(Severity::P1),
            key: key.map(str::to_string),
        }
    }

    #[test]
    fn severities_parse_in_the_usual_spellings() {
        assert_eq!("P1".parse::<Severity>(), Ok(Severity::P1));
        assert_eq!("p0".parse::<Severity>(), Ok(Severity::P0));
        assert_eq!("SEV2".parse::<Severity>(), Ok(Severity::P2));
        let err = "P9".parse::<Severity>().unwrap_err();
        assert!(err.contains("P0, P1"), "{err}");
        assert!("high".parse::<Severity>().is_err());
    }

    #[test]
    fn replay_groups_dedupes_and_resolves() {
        let entries = vec![
            e(5, Kind::Note, "before any start: foreign", None),
            e(10, Kind::Start, "checkout down", None),
            e(11, Kind::Action, "rollback ok", Some("audit:1")),
            e(11, Kind::Action, "rollback ok", Some("audit:1")),
            e(12, Kind::Note, "db pool at 100%", None),
            e(13, Kind::Resolve, "fixed", None),
            e(14, Kind::Note, "late note", None),
        ];
        let all = replay(&entries);
        assert_eq!(all.len(), 1);
        let i = &all[0];
        assert_eq!(i.title, "checkout down");
        assert_eq!(i.severity, Severity::P1);
        let kinds: Vec<Kind> = i.entries.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::Start,
                Kind::Action,
                Kind::Note,
                Kind::Resolve,
                Kind::Note
            ]
        );
        assert_eq!(i.resolved_at, Some(entries[5].ts));
        assert!(open_incident(&all).is_none());
        assert!(open_incident(&replay(&entries[..5])).is_some());
    }

    #[test]
    fn ids_are_the_utc_start_second() {
        let t: Timestamp = "2026-11-23T18:01:02.9Z".parse().unwrap();
        assert_eq!(incident_id(t), "INC-20261123-180102");
    }
}
