//! The incident desk behind pane 5: the open incident, the firing alerts,
//! and the incident timeline the cockpit writes ([`crate::incident`]);
//! pane 5 itself is drawn by [`super::runbook`].
//!
//! State lives in [`Desk`] (one field of [`App`]); the functions here are
//! `impl App` so that `app.rs` only routes messages, keys and `:`
//! commands to them. No I/O: entries to write leave as [`Out::Timeline`],
//! exports as [`Out::ExportTimeline`]; the event loop does the rest.
//!
//! What goes into the timeline of the open incident, and from where:
//! - `:incident P1 "title"` (start), `:incident resolve [words]`, `:note
//!   text` — the operator's own;
//! - actions — the audit log's records that ended after the start
//!   (rollbacks, traffic switches, runbook blocks run as actions);
//! - verdicts — a check's verdict changing, the release's phase changing
//!   (paused, rolling back, finished), from the release state both driver
//!   and observers see;
//! - alerts — an alert appearing in the firing list, or leaving it.
//!
//! Automatic entries carry a key ([`Entry::key`]) so that two cockpits
//! writing the same event count once.

use super::app::{App, Out, Pane};
use super::keymap::Action;
use super::logs::{Level, LogSource};
use crate::incident::{self, Entry, Incident, Kind, Severity};
use crate::release::VerdictKind;
use crate::release::engine::{Phase, Release};
use crate::sources::alerts::FiringAlert;
use jiff::Timestamp;
use std::collections::BTreeMap;

/// The incident desk's state (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Desk {
    /// Whether an alerts source is configured (`[sources.prometheus]`).
    pub alerts_configured: bool,
    /// The last read of the firing alerts: `None` before the first,
    /// `Err` with the reason while the alerts API is down.
    pub alerts: Option<Result<Vec<FiringAlert>, String>>,
    /// When the alerts were last read successfully.
    pub alerts_ok_at: Option<Timestamp>,
    /// The timeline file's entries, as last read.
    pub file_entries: Vec<Entry>,
    /// Entries sent for writing and not yet read back from the file.
    pub local: Vec<Entry>,
    /// The incidents replayed from both.
    pub incidents: Vec<Incident>,
    /// Why the timeline cannot be read or written, while it cannot.
    pub timeline_error: Option<String>,
    /// Whether this cockpit writes the timeline (every role but read-only).
    pub writes: bool,
    /// Selected row: the alerts first, then the actions (newest first).
    pub selected: usize,
    /// Each check's last verdict (by release id and check), for changes.
    last_verdicts: BTreeMap<(String, String), VerdictKind>,
    /// The release's last phase word, for changes.
    last_phase: Option<(String, String)>,
    /// A counter for the keys of this cockpit's own entries.
    seq: u64,
    /// The runbook open in pane 5 ([`super::runbook`]).
    pub runbook: Option<super::runbook::OpenRunbook>,
    /// The runbooks found in `[runbooks] dirs`, by name.
    pub runbooks: Vec<crate::runbook::Entry>,
    /// Why the runbook directories cannot be read.
    pub runbooks_error: Option<String>,
    /// `[runbooks] vars`.
    pub runbook_vars: BTreeMap<String, String>,
    /// `[runbooks] timeout`.
    pub runbook_timeout: Option<std::time::Duration>,
}

/// A `:` command of the desk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeskCommand {
    /// `incident P1 "title"`: start an incident.
    Start {
        /// Its severity.
        severity: Severity,
        /// Its title.
        title: String,
    },
    /// `incident resolve [words]`: resolve the open incident.
    Resolve(Option<String>),
    /// `note text`: an operator's note in the timeline.
    Note(String),
    /// `timeline`: export the open (or last) incident's timeline to a file.
    Export,
    /// `runbook NAME`: open a runbook in pane 5 (without a name: list them).
    Runbook(Option<String>),
}

/// The desk's command words, for completion.
pub const COMMANDS: &[&str] = &["incident", "note", "timeline", "runbook"];

/// What each desk command takes, for the `:` prompt.
pub fn usage(command: &str) -> Option<&'static str> {
    match command {
        "incident" => Some(
            "incident P1 \"title\": start an incident (P0–P4) · incident resolve [words]: end it",
        ),
        "note" => Some("note TEXT: a note in the incident timeline, with the time and your name"),
        "runbook" => Some("runbook NAME: open a runbook in pane 5 (Tab completes the names)"),
        _ => None,
    }
}

/// Parses a desk command: `command` (lower-case word) and the rest of the
/// line; `None` when `command` is not the desk's.
pub fn parse(command: &str, rest: &str) -> Option<Result<DeskCommand, String>> {
    let unquote = |t: &str| -> String {
        let t = t.trim();
        for q in ['"', '\''] {
            if let Some(inner) = t.strip_prefix(q).and_then(|x| x.strip_suffix(q)) {
                return inner.trim().to_string();
            }
        }
        t.to_string()
    };
    Some(match command {
        "incident" => {
            let (first, tail) = match rest.split_once(char::is_whitespace) {
                Some((a, b)) => (a, b.trim()),
                None => (rest, ""),
            };
            match first.to_lowercase().as_str() {
                "" => Err(usage("incident").unwrap_or_default().to_string()),
                "resolve" | "resolved" | "close" | "end" => Ok(DeskCommand::Resolve(
                    Some(unquote(tail)).filter(|t| !t.is_empty()),
                )),
                _ => match first.parse::<Severity>() {
                    Err(e) => Err(format!("{e}: incident P1 \"title\"")),
                    Ok(_) if unquote(tail).is_empty() => Err(format!(
                        "an incident needs a title: incident {first} \"what is wrong\""
                    )),
                    Ok(severity) => Ok(DeskCommand::Start {
                        severity,
                        title: unquote(tail),
                    }),
                },
            }
        }
        "note" => match unquote(rest) {
            t if t.is_empty() => Err("usage: note TEXT".into()),
            t => Ok(DeskCommand::Note(t)),
        },
        "runbook" => Ok(DeskCommand::Runbook(
            Some(unquote(rest)).filter(|r| !r.is_empty()),
        )),
        "timeline" if rest.is_empty() => Ok(DeskCommand::Export),
        "timeline" => Err(format!("`timeline` takes no arguments (got `{rest}`)")),
        _ => return None,
    })
}

impl App {
    /// The runbook names, for completing `:runbook`.
    pub fn runbook_names(&self) -> Vec<&str> {
        self.desk.runbooks.iter().map(|e| e.name.as_str()).collect()
    }

    /// The open incident, if any.
    pub fn incident(&self) -> Option<&Incident> {
        incident::open_incident(&self.desk.incidents)
    }

    /// The incident `:timeline` exports: the open one, else the last.
    pub fn last_incident(&self) -> Option<&Incident> {
        self.desk.incidents.last()
    }

    fn replay_desk(&mut self) {
        let mut all = self.desk.file_entries.clone();
        all.extend(self.desk.local.iter().cloned());
        self.desk.incidents = incident::replay(&all);
    }

    /// [`App::record`] for the runbook pane: an entry by `operator`, keyed
    /// as this cockpit's own.
    pub(super) fn desk_record(&mut self, kind: Kind, text: String, operator: String) -> Vec<Out> {
        self.record(kind, text, operator, None, None)
    }

    /// Appends an entry to the open incident's timeline (`Start`: a new
    /// incident), keyed by `key` or a key of this cockpit's own; nothing
    /// when this cockpit does not write or no incident is open.
    fn record(
        &mut self,
        kind: Kind,
        text: String,
        operator: String,
        key: Option<String>,
        severity: Option<Severity>,
    ) -> Vec<Out> {
        if !self.desk.writes {
            return Vec::new();
        }
        let id = match kind {
            Kind::Start => incident::incident_id(self.now),
            _ => match self.incident() {
                Some(i) => i.id.clone(),
                None => return Vec::new(),
            },
        };
        if let Some(k) = &key
            && self.incident().is_some_and(|i| i.has_key(k))
        {
            return Vec::new();
        }
        self.desk.seq += 1;
        let e = Entry {
            ts: self.now,
            incident: id,
            operator,
            kind,
            text: self.redactor.redact(&text),
            severity,
            key: Some(key.unwrap_or_else(|| {
                format!(
                    "{}-{}-{}",
                    std::process::id(),
                    self.now.as_millisecond(),
                    self.desk.seq
                )
            })),
        };
        self.desk.local.push(e.clone());
        self.replay_desk();
        self.dirty = true;
        vec![Out::Timeline(e)]
    }

    /// A round of the timeline file (all its entries), or why it cannot be
    /// read.
    pub fn on_timeline(&mut self, r: Result<Vec<Entry>, String>) {
        match r {
            Ok(entries) => {
                if self.desk.timeline_error.take().is_some() {
                    self.desk_log(Level::Info, "timeline readable again".into());
                }
                self.desk
                    .local
                    .retain(|l| !entries.iter().any(|e| e.key == l.key));
                self.desk.file_entries = entries;
                self.replay_desk();
            }
            Err(e) => {
                if self.desk.timeline_error.as_ref() != Some(&e) {
                    self.desk_log(Level::Error, format!("timeline: {e}"));
                }
                self.desk.timeline_error = Some(e);
            }
        }
        self.dirty = true;
    }

    /// A timeline entry could not be written.
    pub fn timeline_write_failed(&mut self, e: String) {
        self.desk_log(Level::Error, format!("timeline not written: {e}"));
        self.desk.timeline_error = Some(format!("not written: {e}"));
        self.flash = Some(format!("timeline not written: {e}"));
        self.dirty = true;
    }

    fn desk_log(&mut self, level: Level, text: String) {
        let line = super::logs::LogLine {
            ts: self.now,
            source: LogSource::Rolldeck,
            level,
            text: self.redactor.redact(&text),
        };
        self.logs_mut().push(line);
    }

    /// A round of the alerts source: logs and records (in the open
    /// incident) each alert that started firing or resolved since the last
    /// successful round.
    pub fn on_alerts(&mut self, r: Result<Vec<FiringAlert>, String>, at: Timestamp) -> Vec<Out> {
        let mut outs = Vec::new();
        let before: Option<Vec<FiringAlert>> = match &self.desk.alerts {
            Some(Ok(list)) => Some(list.clone()),
            _ => None,
        };
        match &r {
            Ok(now) => {
                self.desk.alerts_ok_at = Some(at);
                let was = before.unwrap_or_default();
                for a in now
                    .iter()
                    .filter(|a| !was.iter().any(|w| w.key() == a.key()))
                {
                    let text = alert_words(a);
                    self.desk_log(Level::Warn, format!("alert firing: {text}"));
                    outs.extend(self.record(
                        Kind::AlertFiring,
                        text,
                        "prometheus".into(),
                        Some(format!("alert:{}:firing", a.key())),
                        None,
                    ));
                }
                for a in was
                    .iter()
                    .filter(|w| !now.iter().any(|a| a.key() == w.key()))
                {
                    let text = alert_words(a);
                    self.desk_log(Level::Info, format!("alert resolved: {text}"));
                    outs.extend(self.record(
                        Kind::AlertResolved,
                        text,
                        "prometheus".into(),
                        Some(format!("alert:{}:resolved", a.key())),
                        None,
                    ));
                }
            }
            Err(e) => {
                if !matches!(&self.desk.alerts, Some(Err(old)) if old == e) {
                    self.desk_log(Level::Warn, format!("alerts down: {e}"));
                }
            }
        }
        self.desk.alerts = Some(r);
        self.dirty = true;
        outs
    }

    /// The audit log's records: those that ended after the open incident
    /// started go into its timeline (once each).
    pub fn timeline_from_audit(&mut self, records: &[crate::exec::AuditRecord]) -> Vec<Out> {
        let Some(start) = self.incident().map(|i| i.started_at) else {
            return Vec::new();
        };
        let mut outs = Vec::new();
        for r in records {
            let Ok(ts) = r.ts.parse::<Timestamp>() else {
                continue;
            };
            if ts < start {
                continue;
            }
            let key = format!(
                "audit:{}",
                r.run_id
                    .clone()
                    .unwrap_or_else(|| format!("{}:{}", r.ts, r.action))
            );
            let what = match &r.step {
                Some(s) => format!("{} (step {s})", r.action),
                None => r.action.clone(),
            };
            let mut text = format!(
                "{what}: {} — {}",
                if r.ok { "ok" } else { "FAILED" },
                r.detail
            );
            if let Some(why) = r.reason.as_ref().filter(|w| !w.is_empty()) {
                text.push_str(&format!(" (reason: {why})"));
            }
            let saved = self.now;
            self.now = ts;
            // A runbook block run through the executor (`runbook:FILE#BLOCK`),
            // from this cockpit or headless, is a block run.
            let kind = if r.action.starts_with("runbook:") {
                Kind::Block
            } else {
                Kind::Action
            };
            outs.extend(self.record(kind, text, r.operator.to_string(), Some(key), None));
            self.now = saved;
        }
        outs
    }

    /// The release state: a check's verdict changing, or the release's
    /// phase changing, goes into the open incident's timeline.
    pub fn timeline_from_release(&mut self, r: &Release) -> Vec<Out> {
        let mut outs = Vec::new();
        for (name, run) in &r.checks {
            let Some(v) = &run.last else { continue };
            let k = (r.id.clone(), name.clone());
            let old = self.desk.last_verdicts.insert(k, v.verdict);
            if old.is_some_and(|o| o != v.verdict)
                || (old.is_none() && v.verdict == VerdictKind::Fail)
            {
                let from = old.map_or("none", |o| o.as_str());
                let text = format!(
                    "[{}] {from} → {}: {}",
                    r.check_label(name),
                    v.verdict.as_str(),
                    v.reason
                );
                outs.extend(self.record(
                    Kind::Verdict,
                    text,
                    "rolldeck".into(),
                    Some(format!("verdict:{}:{name}:{}", r.id, v.at.as_millisecond())),
                    None,
                ));
            }
        }
        let (word, why) = match &r.phase {
            Phase::Running => ("running".to_string(), String::new()),
            Phase::Paused { reason, .. } => ("paused".into(), reason.clone()),
            Phase::WaitingApproval { message } => ("waiting for approval".into(), message.clone()),
            Phase::RollingBack { reason } => ("rolling back".into(), reason.clone()),
            Phase::Finished { outcome, reason } => (outcome.words().to_string(), reason.clone()),
        };
        let now = (r.id.clone(), word.clone());
        if self.desk.last_phase.as_ref() != Some(&now) {
            let first = self.desk.last_phase.is_none();
            self.desk.last_phase = Some(now);
            if !first || word != "running" {
                let text = if why.is_empty() {
                    format!("release {}: {word}", r.id)
                } else {
                    format!("release {}: {word}: {why}", r.id)
                };
                outs.extend(self.record(
                    Kind::Verdict,
                    text,
                    "rolldeck".into(),
                    Some(format!("phase:{}:{word}", r.id)),
                    None,
                ));
            }
        }
        outs
    }

    /// Runs a desk `:` command (see [`DeskCommand`]); refusals say why in
    /// the footer.
    pub fn on_desk_command(&mut self, c: DeskCommand) -> Vec<Out> {
        use super::app::Role;
        // Reading and opening are for everyone; writing is not.
        if self.role == Role::ReadOnly
            && !matches!(c, DeskCommand::Export | DeskCommand::Runbook(_))
        {
            self.flash = Some("refused: read-only mode writes no timeline".into());
            return Vec::new();
        }
        match c {
            DeskCommand::Start { severity, title } => {
                if matches!(self.role, Role::Observer(_)) {
                    self.flash = Some(
                        "refused: an observer does not start incidents (:note still works)".into(),
                    );
                    return Vec::new();
                }
                if let Some(i) = self.incident() {
                    self.flash = Some(format!(
                        "incident {} ({} {}) is open: `:incident resolve` ends it first",
                        i.id, i.severity, i.title
                    ));
                    return Vec::new();
                }
                let mut outs = self.record(
                    Kind::Start,
                    title.clone(),
                    self.operator.clone(),
                    None,
                    Some(severity),
                );
                // What is firing when it starts belongs to its story.
                if let Some(Ok(firing)) = self.desk.alerts.clone() {
                    for a in &firing {
                        outs.extend(self.record(
                            Kind::AlertFiring,
                            alert_words(a),
                            "prometheus".into(),
                            Some(format!("alert:{}:firing", a.key())),
                            None,
                        ));
                    }
                }
                self.flash = Some(format!("incident {severity} started: {title}"));
                outs
            }
            DeskCommand::Resolve(words) => {
                if matches!(self.role, Role::Observer(_)) {
                    self.flash = Some("refused: an observer does not resolve incidents".into());
                    return Vec::new();
                }
                let Some(i) = self.incident() else {
                    self.flash = Some("no incident is open".into());
                    return Vec::new();
                };
                let id = i.id.clone();
                let outs = self.record(
                    Kind::Resolve,
                    words.unwrap_or_else(|| "resolved".into()),
                    self.operator.clone(),
                    None,
                    None,
                );
                self.flash = Some(format!("incident {id} resolved; :timeline exports it"));
                outs
            }
            DeskCommand::Note(text) => {
                if self.incident().is_none() {
                    self.flash =
                        Some("no incident is open: :incident P1 \"title\" starts one".into());
                    return Vec::new();
                }
                let outs = self.record(Kind::Note, text, self.operator.clone(), None, None);
                self.flash = Some("note added to the timeline".into());
                outs
            }
            DeskCommand::Runbook(Some(n)) => self.open_runbook(&n),
            DeskCommand::Runbook(None) => {
                let names = self.runbook_names().join(", ");
                self.flash = Some(if names.is_empty() {
                    "no runbooks: add [runbooks] dirs = [\"runbooks\"] to the config".into()
                } else {
                    format!("runbook NAME: {names}")
                });
                Vec::new()
            }
            DeskCommand::Export => match self.last_incident() {
                Some(i) => vec![Out::ExportTimeline(std::path::PathBuf::from(format!(
                    "rolldeck-timeline-{}.md",
                    i.id
                )))],
                None => {
                    self.flash = Some("no incident to export".into());
                    Vec::new()
                }
            },
        }
    }

    /// The rows of pane 5's list: firing alerts, then actions.
    fn desk_rows(&self) -> (usize, usize) {
        let alerts = match &self.desk.alerts {
            Some(Ok(a)) => a.len(),
            _ => 0,
        };
        (alerts, self.actions.len())
    }

    /// Keys of pane 5 (moving over the alerts and actions; Enter on an
    /// alert opens its runbook). `None`: not the desk's key.
    pub fn on_desk_action(&mut self, a: Action) -> Option<Vec<Out>> {
        if a == Action::TimelineExport {
            return Some(self.on_desk_command(DeskCommand::Export));
        }
        if self.focus != Pane::Runbook {
            return None;
        }
        if self.desk.runbook.is_some() {
            return self.on_runbook_action(a);
        }
        // Without a runbook the step keys are the global ones again (`p`
        // pauses or resumes the release).
        if matches!(
            a,
            Action::RunbookPrev | Action::RunbookNext | Action::RunbookTick
        ) {
            let global = self.keymap.keys_for(a).into_iter().find_map(|k| {
                self.keymap.action(
                    super::keymap::Context::Global,
                    &crossterm::event::KeyEvent::new(k.code, k.modifiers),
                )
            });
            return Some(match global {
                Some(g) => self.on_action(g),
                None => Vec::new(),
            });
        }
        let (alerts, actions) = self.desk_rows();
        let rows = alerts + actions;
        let cur = self.desk.selected.min(rows.saturating_sub(1));
        let next = match a {
            Action::Up => cur.saturating_sub(1),
            Action::Down => (cur + 1).min(rows.saturating_sub(1)),
            Action::PageUp => cur.saturating_sub(10),
            Action::PageDown => (cur + 10).min(rows.saturating_sub(1)),
            Action::Top => 0,
            Action::Bottom => rows.saturating_sub(1),
            Action::Select | Action::RunbookRun if cur < alerts => {
                let alert = match &self.desk.alerts {
                    Some(Ok(list)) => list.get(cur).cloned(),
                    _ => None,
                };
                return Some(match alert.as_ref().map(|a| (&a.name, &a.runbook_url)) {
                    Some((_, Some(url))) => self.open_runbook(url),
                    Some((name, None)) => {
                        self.flash =
                            Some(format!("{name}: no runbook_url annotation names a runbook"));
                        Vec::new()
                    }
                    None => Vec::new(),
                });
            }
            // Enter on an action: its whole result (the detail popup).
            Action::RunbookRun => return Some(self.select_detail()),
            _ => return None,
        };
        self.desk.selected = next;
        self.selected_action = next.saturating_sub(alerts);
        Some(Vec::new())
    }

    /// The header's incident clock text: `P1 INC 5m`.
    pub fn incident_clock(&self) -> Option<String> {
        let i = self.incident()?;
        let s = (self.now.as_millisecond() - i.started_at.as_millisecond()) as f64 / 1000.0;
        Some(format!(
            "{} INCIDENT {}",
            i.severity,
            super::clock::running(s)
        ))
    }

    /// Seconds until the incident clock next changes.
    pub fn incident_clock_wait(&self) -> Option<f64> {
        let i = self.incident()?;
        let s = (self.now.as_millisecond() - i.started_at.as_millisecond()) as f64 / 1000.0;
        Some(super::clock::running_next(s))
    }
}

/// An alert in words for the logs and the timeline: `CanaryErrorRateHigh
/// {track="canary"} (page): canary 5xx at 40% — runbook manual-rollback.md`.
pub fn alert_words(a: &FiringAlert) -> String {
    let mut s = a.display_name();
    if let Some(sev) = &a.severity {
        s.push_str(&format!(" ({sev})"));
    }
    if let Some(sum) = &a.summary {
        s.push_str(&format!(": {sum}"));
    }
    if let Some(u) = &a.runbook_url {
        s.push_str(&format!(" — runbook {u}"));
    }
    s
}

/// Starts the timeline writer: a thread that owns the timeline file at
/// `path` (opened now: a torn tail is set aside) and appends each entry
/// sent to it, in order, fsynced; a failed open or append comes back as
/// [`Msg::Timeline`] / [`Msg::TimelineWriteFailed`]. `None` (nothing
/// opened or created) for a cockpit that does not write (read-only).
pub fn spawn_timeline_writer(
    path: std::path::PathBuf,
    redactor: crate::redact::Redactor,
    writes: bool,
    tx: tokio::sync::mpsc::Sender<super::app::Msg>,
) -> Option<std::sync::mpsc::Sender<Entry>> {
    use super::app::Msg;
    if !writes {
        return None;
    }
    let (etx, erx) = std::sync::mpsc::channel::<Entry>();
    std::thread::Builder::new()
        .name("timeline".into())
        .spawn(move || {
            let mut file = match incident::timeline::Timeline::open(&path, redactor) {
                Ok((f, _)) => Some(f),
                Err(e) => {
                    let _ = tx.blocking_send(Msg::Timeline(Err(e.to_string())));
                    None
                }
            };
            while let Ok(e) = erx.recv() {
                let r = match &mut file {
                    Some(f) => f.append(&e).map_err(|e| e.to_string()),
                    None => Err(format!("{} could not be opened", path.display())),
                };
                if let Err(why) = r
                    && tx.blocking_send(Msg::TimelineWriteFailed(why)).is_err()
                {
                    break;
                }
            }
        })
        .ok()?;
    Some(etx)
}

/// Polls the alerts source every `every` (each round in its own task, so a
/// panicking round is shown as the alerts being down), sending each round.
pub async fn poll_alerts(
    src: Result<crate::sources::alerts::AlertSource, String>,
    every: std::time::Duration,
    tx: tokio::sync::mpsc::Sender<super::app::Msg>,
) {
    use super::app::Msg;
    let src = match src {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(Msg::Alerts(Err(e), Timestamp::now())).await;
            return;
        }
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let s = src.clone();
        let r = match tokio::spawn(async move { s.fetch().await }).await {
            Ok(r) => r,
            Err(e) => Err(format!("alerts poller failed ({e}); restarted")),
        };
        if tx.send(Msg::Alerts(r, Timestamp::now())).await.is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desk_commands_parse() {
        assert_eq!(
            parse("incident", "P1 \"checkout down\""),
            Some(Ok(DeskCommand::Start {
                severity: Severity::P1,
                title: "checkout down".into()
            }))
        );
        assert_eq!(
            parse("incident", "sev0 db on fire"),
            Some(Ok(DeskCommand::Start {
                severity: Severity::P0,
                title: "db on fire".into()
            }))
        );
        assert!(
            parse("incident", "P1")
                .unwrap()
                .unwrap_err()
                .contains("title")
        );
        assert!(
            parse("incident", "P7 x")
                .unwrap()
                .unwrap_err()
                .contains("P0")
        );
        assert!(parse("incident", "").unwrap().is_err());
        assert_eq!(
            parse("incident", "resolve rolled back"),
            Some(Ok(DeskCommand::Resolve(Some("rolled back".into()))))
        );
        assert_eq!(
            parse("note", "pool at 100%"),
            Some(Ok(DeskCommand::Note("pool at 100%".into())))
        );
        assert!(parse("note", "").unwrap().is_err());
        assert_eq!(parse("timeline", ""), Some(Ok(DeskCommand::Export)));
        assert_eq!(parse("weight", "5"), None);
    }
}
