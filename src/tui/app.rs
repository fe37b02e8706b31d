//! The cockpit's state and its update function (Elm style): messages in,
//! state changes and outgoing commands out. No I/O here: the event loop in
//! [`super::run`] performs the [`Out`] commands.

use super::keymap::{Action, CommandLine, Context, Keymap, parse_command};
use super::logs::{Level, LogBuffer, LogLine, LogSource};
use super::theme::Theme;
use crate::exec::{ActionSpec, OutputLine, render};
use crate::redact::Redactor;
use crate::release::engine::{Command, Issued, Notice, Phase, Release};
use crate::release::{StepStatus, VerdictKind};
use crate::runtime::{DriverEvent, Holder};
use crate::sources::SourceStatus;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use jiff::Timestamp;
use std::collections::{BTreeMap, VecDeque};

/// The five panes, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    /// Plan steps.
    Pipeline,
    /// Canary vs baseline per check.
    Canary,
    /// Database migrations.
    Migrations,
    /// Logs.
    Logs,
    /// Runbook and action history.
    Runbook,
    /// Docker containers per track ([`super::containers`]).
    Containers,
}

impl Pane {
    /// All panes in order (digits 1–6).
    pub const ALL: [Pane; 6] = [
        Pane::Pipeline,
        Pane::Canary,
        Pane::Migrations,
        Pane::Logs,
        Pane::Runbook,
        Pane::Containers,
    ];

    /// Title.
    pub fn title(self) -> &'static str {
        match self {
            Pane::Pipeline => "Pipeline",
            Pane::Canary => "Canary",
            Pane::Migrations => "Migrations",
            Pane::Logs => "Logs",
            Pane::Runbook => "Actions",
            Pane::Containers => "Containers",
        }
    }

    /// For a pane fed by an optional source: what in the config would
    /// feed it (`add [[sources.migrations]]`); `None` for panes always drawn.
    pub fn configured_by(self) -> Option<&'static str> {
        match self {
            Pane::Migrations => Some("add [[sources.migrations]]"),
            Pane::Containers => Some("add [sources.docker]"),
            _ => None,
        }
    }

    fn context(self) -> Context {
        match self {
            Pane::Pipeline => Context::Pipeline,
            Pane::Canary => Context::Canary,
            Pane::Migrations => Context::Migrations,
            Pane::Logs => Context::Logs,
            Pane::Runbook => Context::Runbook,
            Pane::Containers => Context::Containers,
        }
    }
}

/// Whether this process drives the release.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    /// We hold the driver lock.
    Driver,
    /// Another process drives; we watch the journal.
    Observer(Option<Holder>),
    /// `--read-only`: we watch on purpose.
    ReadOnly,
    /// Attached to a background driver (its description): commands go
    /// over its control socket ([`crate::control`]).
    Attached(String),
    /// Nobody drives and no release is unfinished: opening the cockpit
    /// never starts one; `:start` does, after a confirmation.
    Idle,
}

/// One source's dot in the header.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceDot {
    /// `prometheus`, `health:canary`, …
    pub name: String,
    /// Last answer ok.
    pub ok: bool,
    /// Detail or reason.
    pub detail: String,
    /// When data last arrived successfully.
    pub last_ok: Option<Timestamp>,
    /// Poll interval in seconds (stale after 3 of them).
    pub interval_s: f64,
}

/// An action in the history pane.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRecord {
    /// When it ended.
    pub at: Timestamp,
    /// Who (operator or `plan`).
    pub who: String,
    /// What.
    pub what: String,
    /// Result.
    pub ok: bool,
    /// Detail.
    pub detail: String,
}

/// What a confirmation is for.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    /// An engine command for the driver.
    Command(Command),
    /// Start a new release of this plan (`None`: the default plan).
    Start(Option<String>),
    /// Run this block of the open runbook ([`super::runbook`]).
    RunBlock(String),
}

/// A confirmation before something changes the world.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    /// What confirming does.
    pub intent: Intent,
    /// What it is, in words.
    pub title: String,
    /// The exact commands / requests that will run (redacted).
    pub will_run: Vec<String>,
    /// Protected environment: the name the operator must type.
    pub type_to_confirm: Option<String>,
    /// What the operator typed for it.
    pub typed: String,
    /// The optional reason (audit log).
    pub reason: String,
    /// Which field has the cursor: 0 = typed name, 1 = reason.
    pub field: usize,
    /// Starting: the sources the plan needs that are down (or not probed
    /// yet), `source: reason`, shown in the danger colour; refreshed with
    /// every round of source probes while the confirmation is open.
    pub down: Vec<String>,
}

/// A popup over the panes.
#[derive(Debug, Clone, PartialEq)]
pub enum Popup {
    /// `?`: the keymap's help.
    Help,
    /// `:` command line.
    Command(String),
    /// `/` log filter input.
    Filter(String),
    /// `w`: the weight to set.
    Weight(String),
    /// A confirmation.
    Confirm(Box<Confirm>),
    /// `q` while a release runs.
    Quit,
    /// `Enter` on a row: the row's text whole, scrollable.
    Detail(Box<Detail>),
}

/// The detail popup: one row's text whole (a step's detail, a check's
/// reason, an action's result, the log lines in view), wrapped to the
/// popup's width and scrolled by `scroll` wrapped lines from the top.
#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    /// The popup's title (what the row is).
    pub title: String,
    /// The text, one entry per paragraph; long ones wrap when drawn.
    pub lines: Vec<String>,
    /// Wrapped lines scrolled past (at most [`Detail::max_scroll`]).
    pub scroll: usize,
    /// The largest useful `scroll` at the size last drawn (wrapped lines
    /// minus the rows that fit); recorded by the drawing, which only has
    /// `&App`.
    pub max_scroll: std::cell::Cell<usize>,
}

impl Detail {
    /// A detail popup at the top of `lines`.
    pub fn new(title: impl Into<String>, lines: Vec<String>) -> Self {
        Detail {
            title: title.into(),
            lines,
            scroll: 0,
            max_scroll: std::cell::Cell::new(usize::MAX / 2),
        }
    }
}

/// What the event loop must do after an update.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    /// Send this command to the driver.
    Issue(Issued),
    /// Leave the cockpit.
    Quit,
    /// Save the logs to this file.
    SaveLogs(std::path::PathBuf),
    /// Take the driver lock and start a release of this plan.
    Start(Option<String>),
    /// The driver is gone: take the driver lock and resume from the journal.
    Takeover,
    /// Append this entry to the incident timeline ([`super::desk`]).
    Timeline(crate::incident::Entry),
    /// Export the last incident's timeline (Markdown) to this file.
    ExportTimeline(std::path::PathBuf),
    /// Open, run or tick in a runbook ([`super::runbook`]).
    Runbook(super::runbook::RunbookJob),
}

/// A message to the app.
#[derive(Debug, Clone)]
pub enum Msg {
    /// A key.
    Key(KeyEvent),
    /// The terminal was resized.
    Resize,
    /// One second passed.
    Tick(Timestamp),
    /// From the driver (or the observer's journal reader).
    Driver(DriverEvent),
    /// A round of source probes.
    Sources(Vec<SourceStatus>, Timestamp),
    /// A line for the logs.
    Log(LogLine),
    /// The audit log's records (all of them, oldest first).
    Audit(Vec<crate::exec::AuditRecord>),
    /// The observer's lock probe: whether the driver lock is free (the
    /// driver is gone — killed, crashed — without finishing).
    DriverGone(bool),
    /// The journal cannot be read (the error), or can again (`None`).
    JournalError(Option<String>),
    /// A round of migration source reads (one status per source).
    Migrations(Vec<crate::migrations::Status>),
    /// The Docker watcher's state changed (sent on each change).
    Containers(crate::docker::WatchView),
    /// A round of the alerts source: the firing alerts, or why it is down.
    Alerts(
        Result<Vec<crate::sources::alerts::FiringAlert>, String>,
        Timestamp,
    ),
    /// The incident timeline file's entries, or why it cannot be read.
    Timeline(Result<Vec<crate::incident::Entry>, String>),
    /// A timeline entry could not be written (the error).
    TimelineWriteFailed(String),
    /// The answer to a [`Out::Runbook`] job.
    Runbook(super::runbook::RunbookMsg),
    /// A one-line message for the footer (an attached command's result).
    Flash(String),
}

/// One evaluation of a check as the chart plots it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChartPoint {
    /// When the evaluation happened.
    pub at: Timestamp,
    /// The canary's value (the check's unit), if it had one.
    pub canary: Option<f64>,
    /// The baseline's value (the check's unit), if it had one.
    pub baseline: Option<f64>,
    /// The canary's traffic weight then, percent 0–100.
    pub weight: u8,
}

/// Per-check chart history, newest last (at most 120 points).
pub type Series = VecDeque<ChartPoint>;

/// The whole cockpit state.
pub struct App {
    /// Service.
    pub service: String,
    /// Environment name.
    pub environment: String,
    /// Protected environment.
    pub protected: bool,
    /// Driver / observer.
    pub role: Role,
    /// The release, when one exists.
    pub release: Option<Release>,
    /// Header dots.
    pub sources: Vec<SourceDot>,
    /// Chart data per check.
    pub series: BTreeMap<String, Series>,
    /// Action history, newest last.
    pub actions: VecDeque<ActionRecord>,
    /// Logs (shared with the tracing layer that feeds rolldeck's own events).
    pub logs: std::sync::Arc<std::sync::Mutex<LogBuffer>>,
    /// Focused pane.
    pub focus: Pane,
    /// Zoomed: the focused pane fills the body.
    pub zoom: bool,
    /// The popup, if any.
    pub popup: Option<Popup>,
    /// Selected row in the pipeline.
    pub selected_step: usize,
    /// Selected row in the canary pane.
    pub selected_check: usize,
    /// Selected row in the actions pane, 0 = the newest action (the pane
    /// lists newest first).
    pub selected_action: usize,
    /// The operator moved the canary selection; until then the pane shows
    /// the most severe check ([`App::shown_check`]).
    pub check_pinned: bool,
    /// A one-line message for the footer (e.g. "refused: observer").
    pub flash: Option<String>,
    /// Observer: the lock probe found the driver lock free — the driver
    /// was killed or crashed; `:takeover` offers to drive.
    pub driver_gone: bool,
    /// `:detach` (or `d` in the quit question): on leaving, hand the
    /// release to a background driver instead of leaving it unwatched.
    pub detach_requested: bool,
    /// Now (from the last tick).
    pub now: Timestamp,
    /// Keys.
    pub keymap: Keymap,
    /// Colours.
    pub theme: Theme,
    /// Actions by name, for confirmations.
    pub action_specs: BTreeMap<String, ActionSpec>,
    /// Redacts secrets in what is shown.
    pub redactor: Redactor,
    /// Who we are (for commands).
    pub operator: String,
    /// Plans from the config: name and step names (for `:start`).
    pub plans: Vec<(String, Vec<String>)>,
    /// The config's default plan, if named.
    pub default_plan: Option<String>,
    /// The sources each plan needs ([`crate::preflight::needs`]), by plan name.
    pub plan_sources: BTreeMap<String, std::collections::BTreeSet<String>>,
    /// Whether a migration source is configured: without one the
    /// Migrations pane is not drawn and its tab says what would configure
    /// it ([`App::shown`]).
    pub migrations_configured: bool,
    /// The last read of each migration source (`None`: not read yet).
    pub migrations: Option<Vec<crate::migrations::Status>>,
    /// Whether `[sources.docker]` is configured: without it the
    /// Containers pane is not drawn ([`App::shown`]).
    pub docker_configured: bool,
    /// The Docker watcher's state as last sent ([`Msg::Containers`]).
    pub containers: crate::docker::WatchView,
    /// Selected row in the Containers pane.
    pub selected_container: usize,
    /// How often data arrives, for "waiting for first data (scrape every
    /// 1 s)": `scrape every 1 s`, or `None` when not known (Prometheus
    /// scrapes on its own schedule).
    pub data_cadence: Option<String>,
    /// Checks that have had data on both tracks in this release.
    pub had_data: std::collections::BTreeSet<String>,
    /// Checks whose wait for first data was said in the logs.
    waiting_said: std::collections::BTreeSet<String>,
    /// The `:debug` view (rolldeck's own tracing through tui-logger, with
    /// per-target levels) fills the body while this is true.
    pub debug_view: bool,
    /// The `:debug` view's state (selected target, levels shown, page
    /// mode); kept while the view is closed.
    pub debug_state: tui_logger::TuiWidgetState,
    /// Something changed since the last draw.
    pub dirty: bool,
    /// The clock-dependent text last drawn ([`super::ui::clock_signature`]).
    pub clock: String,
    /// The driver stopped (finished or interrupted); keys that act are refused.
    pub driver_done: Option<String>,
    /// Why the journal cannot be read, while it cannot (shown in the
    /// header in the danger colour, never as an idle screen).
    pub journal_error: Option<String>,
    /// The help popup's first shown line (0 = the top).
    pub help_scroll: usize,
    /// The help popup as last drawn: how far it can scroll and how many
    /// lines a page is. Written by the drawing code, which alone knows the
    /// screen size; read by the keys that scroll.
    pub help_view: std::cell::Cell<HelpView>,
    /// The time zone times are shown in (the system's; tests pin it).
    pub time_zone: jiff::tz::TimeZone,
    /// Pane 5's incident desk: alerts, the incident, its timeline.
    pub desk: super::desk::Desk,
}

/// The help popup's size as last drawn (see [`App::help_view`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HelpView {
    /// The largest useful [`App::help_scroll`]: lines minus visible lines.
    pub max_scroll: usize,
    /// Visible lines (a page for PgUp/PgDn).
    pub page: usize,
}

const CHART_POINTS: usize = 120;
const ACTION_HISTORY: usize = 200;

impl App {
    /// A new app.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        service: String,
        environment: String,
        protected: bool,
        role: Role,
        keymap: Keymap,
        theme: Theme,
        action_specs: BTreeMap<String, ActionSpec>,
        redactor: Redactor,
        operator: String,
        now: Timestamp,
    ) -> Self {
        Self {
            service,
            environment,
            protected,
            role,
            release: None,
            sources: Vec::new(),
            series: BTreeMap::new(),
            actions: VecDeque::new(),
            logs: std::sync::Arc::new(std::sync::Mutex::new(LogBuffer::new(10_000))),
            focus: Pane::Pipeline,
            zoom: false,
            popup: None,
            selected_step: 0,
            selected_check: 0,
            selected_action: 0,
            check_pinned: false,
            flash: None,
            driver_gone: false,
            detach_requested: false,
            now,
            keymap,
            theme,
            action_specs,
            redactor,
            operator,
            migrations_configured: false,
            migrations: None,
            docker_configured: false,
            containers: crate::docker::WatchView::default(),
            selected_container: 0,
            plans: Vec::new(),
            default_plan: None,
            plan_sources: BTreeMap::new(),
            dirty: true,
            clock: String::new(),
            driver_done: None,
            journal_error: None,
            data_cadence: None,
            had_data: std::collections::BTreeSet::new(),
            waiting_said: std::collections::BTreeSet::new(),
            debug_view: false,
            debug_state: tui_logger::TuiWidgetState::new()
                .set_default_display_level(tui_logger::LevelFilter::Debug),
            help_scroll: 0,
            help_view: std::cell::Cell::new(HelpView::default()),
            time_zone: jiff::tz::TimeZone::system(),
            desk: Default::default(),
        }
    }

    /// Whether verdict `v` of `check` carries real data: both values and,
    /// for a check with `min_requests`, that many canary requests in the
    /// window (a canary just given 5 % has few in its first window: that
    /// is still the wait for first data, not a warning).
    fn has_data(&self, check: &str, v: &crate::release::Verdict) -> bool {
        v.canary.is_some()
            && v.baseline.is_some()
            && self
                .release
                .as_ref()
                .and_then(|r| r.plan.checks.get(check))
                .and_then(|d| d.min_requests)
                .is_none_or(|min| v.requests.0.is_some_and(|n| n >= min))
    }

    /// Whether `v` (check `check`) is the normal wait before the first
    /// data rather than a problem: an inconclusive verdict without real
    /// data ([`App::has_data`]), for a check that has had no data in this release, while
    /// the canary gets no traffic yet or for less than the check's window
    /// plus two evaluation intervals since the first traffic step that
    /// gave it some. Past that, no data
    /// is a problem again (shown and logged as a warning).
    pub fn waiting_for_first_data(&self, check: &str, v: &crate::release::Verdict) -> bool {
        if v.verdict != VerdictKind::Inconclusive
            || v.pending
            || self.has_data(check, v)
            || self.had_data.contains(check)
        {
            return false;
        }
        let Some(r) = &self.release else {
            return false;
        };
        if r.weight == 0 {
            return true;
        }
        // When the first traffic step sending the canary traffic ended.
        let since = r
            .plan
            .steps
            .iter()
            .zip(&r.steps)
            .filter(|(s, _)| {
                matches!(s.action, crate::release::StepAction::Traffic { weight, .. } if weight > 0)
            })
            .filter_map(|(_, run)| run.finished_at)
            .min();
        // Traffic set by hand, with no traffic step: no grace.
        let Some(since) = since else {
            return false;
        };
        let interval = r
            .plan
            .checks
            .get(check)
            .map_or(0.0, |d| d.interval.as_secs_f64());
        let grace = r.plan.window(check).as_secs_f64() + 2.0 * interval;
        let waited = (self.now.as_millisecond() - since.as_millisecond()) as f64 / 1000.0;
        waited < grace
    }

    /// The words for the wait before the first data:
    /// `waiting for first data (scrape every 1 s)`.
    pub fn waiting_words(&self) -> String {
        match &self.data_cadence {
            Some(c) => format!("waiting for first data ({c})"),
            None => "waiting for first data".to_string(),
        }
    }

    /// Whether `pane` is drawn: a pane whose source is not configured is
    /// not ([`Pane::configured_by`] says what would configure it).
    pub fn shown(&self, pane: Pane) -> bool {
        match pane {
            Pane::Migrations => self.migrations_configured,
            Pane::Containers => self.docker_configured,
            _ => true,
        }
    }

    /// The panes drawn, in tab order.
    pub fn shown_panes(&self) -> Vec<Pane> {
        Pane::ALL.into_iter().filter(|p| self.shown(*p)).collect()
    }

    /// Focuses `pane` if it is drawn; otherwise says in the footer what
    /// would configure it.
    fn focus_pane(&mut self, pane: Pane) {
        if self.shown(pane) {
            self.focus = pane;
        } else {
            self.flash = Some(format!(
                "{}: not configured — {}",
                pane.title(),
                pane.configured_by().unwrap_or("no source")
            ));
        }
    }

    /// `Enter` (or `l`) in the Containers pane: the Logs pane shows only
    /// the selected container's lines; on the container already shown,
    /// every line again. The footer says which (the Logs pane is beside
    /// it at 120x30 and more; key `4` below).
    fn show_container_logs(&mut self) {
        let list = &self.containers.containers;
        let Some(c) = list.get(self.selected_container.min(list.len().saturating_sub(1))) else {
            self.flash = Some("no container to show the logs of".into());
            return;
        };
        let src = LogSource::Container(c.name.clone());
        let name = c.name.clone();
        let mut logs = self.logs_mut();
        if logs.source() == Some(&src) {
            logs.set_source(None);
            drop(logs);
            self.flash = Some("logs: every source".into());
        } else {
            logs.set_source(Some(src));
            drop(logs);
            self.flash = Some(format!("logs: only {name} (Esc: every source)"));
        }
    }

    /// Focuses the next (`forward`) or previous drawn pane.
    fn cycle_pane(&mut self, forward: bool) {
        let shown = self.shown_panes();
        let at = shown.iter().position(|p| *p == self.focus).unwrap_or(0);
        let n = shown.len().max(1);
        let next = if forward {
            (at + 1) % n
        } else {
            (at + n - 1) % n
        };
        if let Some(p) = shown.get(next) {
            self.focus = *p;
        }
    }

    /// `t` as people read it: local time to the second with the zone,
    /// `14:03:07 CET` ([`App::time_zone`]).
    pub fn clock_time(&self, t: Timestamp) -> String {
        t.to_zoned(self.time_zone.clone())
            .strftime("%H:%M:%S %Z")
            .to_string()
    }

    /// The log buffer, locked (a poisoned lock is recovered: logs are not
    /// worth a crash).
    pub fn logs_mut(&self) -> std::sync::MutexGuard<'_, LogBuffer> {
        self.logs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The canary row whose reason is shown: the operator's choice, else the
    /// most severe check (fail, then pending, then inconclusive, then none
    /// yet), so a failing check explains itself without a key press.
    pub fn shown_check(&self) -> usize {
        if self.check_pinned {
            return self.selected_check;
        }
        let Some(r) = &self.release else { return 0 };
        let rank = |c: &crate::release::analysis::CheckRun| match &c.last {
            Some(v) if v.verdict == VerdictKind::Fail => 0,
            Some(v) if v.pending => 1,
            Some(v) if v.verdict == VerdictKind::Inconclusive => 2,
            None => 3,
            Some(_) => 4,
        };
        r.checks
            .values()
            .enumerate()
            .min_by_key(|(i, c)| (rank(c), *i))
            .map_or(0, |(i, _)| i)
    }

    /// Whether world-changing keys are allowed.
    pub fn can_act(&self) -> bool {
        matches!(self.role, Role::Driver | Role::Attached(_))
            && self.driver_done.is_none()
            && self.release.as_ref().is_some_and(|r| !r.is_finished())
    }

    /// Whether a release is in progress (quit asks first).
    pub fn release_running(&self) -> bool {
        self.role == Role::Driver
            && self.release.as_ref().is_some_and(|r| !r.is_finished())
            && self.driver_done.is_none()
    }

    /// The keymap context now.
    pub fn context(&self) -> Context {
        if self.popup.is_some() {
            Context::Popup
        } else {
            self.focus.context()
        }
    }

    /// Applies one message; returns what the loop must do.
    pub fn update(&mut self, msg: Msg) -> Vec<Out> {
        match msg {
            Msg::Key(k) => {
                self.dirty = true;
                self.on_key(k)
            }
            Msg::Resize => {
                self.dirty = true;
                Vec::new()
            }
            Msg::Tick(now) => {
                self.now = now;
                // Redraw only if something shown depends on the clock and changed.
                let sig = super::ui::clock_signature(self);
                if sig != self.clock {
                    self.clock = sig;
                    self.dirty = true;
                }
                Vec::new()
            }
            Msg::Driver(e) => {
                let outs = match &e {
                    DriverEvent::State(r) => self.timeline_from_release(r),
                    _ => Vec::new(),
                };
                self.on_driver(e);
                self.dirty = true;
                outs
            }
            Msg::Alerts(r, at) => self.on_alerts(r, at),
            Msg::Timeline(r) => {
                self.on_timeline(r);
                Vec::new()
            }
            Msg::TimelineWriteFailed(e) => {
                self.timeline_write_failed(e);
                Vec::new()
            }
            Msg::Runbook(m) => self.on_runbook_msg(m),
            Msg::DriverGone(gone) => {
                let gone = gone
                    && matches!(self.role, Role::Observer(_) | Role::Attached(_))
                    && self.release.as_ref().is_some_and(|r| !r.is_finished());
                if gone != self.driver_gone {
                    self.driver_gone = gone;
                    self.dirty = true;
                }
                Vec::new()
            }
            Msg::Flash(text) => {
                self.flash = Some(self.redactor.redact(&text));
                self.dirty = true;
                Vec::new()
            }
            Msg::Migrations(list) => {
                self.migrations = Some(list);
                self.dirty = true;
                Vec::new()
            }
            Msg::Containers(view) => {
                self.containers = view;
                self.dirty = true;
                Vec::new()
            }
            Msg::Sources(list, at) => {
                self.on_sources(list, at);
                // A start confirmation shows the newest preflight picture.
                let plan = match &self.popup {
                    Some(Popup::Confirm(c)) => match &c.intent {
                        Intent::Start(Some(p)) => Some(p.clone()),
                        _ => None,
                    },
                    _ => None,
                };
                if let Some(p) = plan {
                    let down = self.down_for_plan(&p);
                    if let Some(Popup::Confirm(c)) = &mut self.popup {
                        c.down = down;
                    }
                }
                self.dirty = true;
                Vec::new()
            }
            Msg::Log(l) => {
                self.logs_mut().push(l);
                self.dirty = true;
                Vec::new()
            }
            Msg::Audit(records) => {
                let outs = self.timeline_from_audit(&records);
                self.on_audit(records);
                self.dirty = true;
                outs
            }
            Msg::JournalError(e) => {
                if let Some(e) = &e {
                    self.log(Level::Error, LogSource::Rolldeck, format!("journal: {e}"));
                }
                self.journal_error = e;
                self.dirty = true;
                Vec::new()
            }
        }
    }

    fn log(&mut self, level: Level, source: LogSource, text: String) {
        self.logs_mut().push(LogLine {
            ts: self.now,
            source,
            level,
            text: self.redactor.redact(&text),
        });
    }

    fn on_sources(&mut self, list: Vec<SourceStatus>, at: Timestamp) {
        for s in list {
            // The header has room for a dot; the reason a source went down
            // (or came back) goes to the logs.
            let was = self
                .sources
                .iter()
                .find(|d| d.name == s.source)
                .map(|d| d.ok);
            match (was, s.ok) {
                (Some(true) | None, false) => self.log(
                    Level::Warn,
                    LogSource::Rolldeck,
                    format!("source {} down: {}", s.source, s.detail),
                ),
                (Some(false), true) => self.log(
                    Level::Info,
                    LogSource::Rolldeck,
                    format!("source {} back: {}", s.source, s.detail),
                ),
                _ => {}
            }
            match self.sources.iter_mut().find(|d| d.name == s.source) {
                Some(d) => {
                    d.ok = s.ok;
                    d.detail = s.detail;
                    if s.ok {
                        d.last_ok = Some(at);
                    }
                }
                None => self.sources.push(SourceDot {
                    name: s.source,
                    ok: s.ok,
                    detail: s.detail,
                    last_ok: s.ok.then_some(at),
                    interval_s: 5.0,
                }),
            }
        }
    }

    fn on_driver(&mut self, e: DriverEvent) {
        match e {
            DriverEvent::State(r) => {
                if self.release.as_ref().is_some_and(|old| old.id != r.id) {
                    // A new release: nothing of the last one's view carries over.
                    self.series.clear();
                    self.selected_step = 0;
                    self.selected_check = 0;
                    self.check_pinned = false;
                    self.driver_done = None;
                    self.selected_action = 0;
                    self.had_data.clear();
                    self.waiting_said.clear();
                }
                for (name, run) in &r.checks {
                    if run.last.as_ref().is_some_and(|v| self.has_data(name, v)) {
                        self.had_data.insert(name.clone());
                    }
                    if let Some(v) = &run.last {
                        let series = self.series.entry(name.clone()).or_default();
                        let prev_at = self
                            .release
                            .as_ref()
                            .and_then(|p| p.checks.get(name))
                            .and_then(|c| c.last.as_ref())
                            .map(|l| l.at);
                        if prev_at != Some(v.at) {
                            series.push_back(ChartPoint {
                                at: v.at,
                                canary: v.canary,
                                baseline: v.baseline,
                                weight: r.weight,
                            });
                            while series.len() > CHART_POINTS {
                                series.pop_front();
                            }
                        }
                    }
                }
                self.release = Some(*r);
            }
            DriverEvent::Notice(n) => self.on_notice(n),
            DriverEvent::Output(l) => self.on_output(l),
            DriverEvent::Stopped {
                outcome, reason, ..
            } => {
                self.log(
                    Level::Warn,
                    LogSource::Rolldeck,
                    format!("driver stopped: {outcome}: {reason}"),
                );
                self.driver_done = Some(format!("{outcome}: {reason}"));
            }
        }
    }

    fn on_output(&mut self, l: OutputLine) {
        self.log(Level::Info, LogSource::Action(l.action.clone()), l.line);
    }

    fn on_notice(&mut self, n: Notice) {
        let (level, text) = match &n {
            Notice::ReleaseStarted { release, plan, .. } => (
                Level::Info,
                format!("release {release} started (plan {plan})"),
            ),
            Notice::StepStarted { name, rollback, .. } => (
                Level::Info,
                format!(
                    "{}step {name} started",
                    if *rollback { "rollback " } else { "" }
                ),
            ),
            Notice::StepFinished {
                name,
                status,
                detail,
                rollback,
                ..
            } => {
                let lvl = if *status == StepStatus::Failed {
                    Level::Error
                } else {
                    Level::Info
                };
                (
                    lvl,
                    format!(
                        "{}step {name} {}: {detail}",
                        if *rollback { "rollback " } else { "" },
                        super::ui::status_mark(*status).1
                    ),
                )
            }
            // Before the first data arrives, no data is the normal wait:
            // said once, plainly; the reason stays in the debug lines.
            Notice::Verdict(v) if self.waiting_for_first_data(&v.check, v) => {
                if self.waiting_said.insert(v.check.clone()) {
                    (
                        Level::Info,
                        format!("[{}] {}", v.check, self.waiting_words()),
                    )
                } else {
                    (Level::Debug, format!("[{}] {}", v.check, v.reason))
                }
            }
            Notice::Verdict(v) => {
                let lvl = match v.verdict {
                    VerdictKind::Fail => Level::Error,
                    VerdictKind::Inconclusive => Level::Warn,
                    VerdictKind::Pass => Level::Debug,
                };
                let label = self
                    .release
                    .as_ref()
                    .map_or(v.check.as_str(), |r| r.check_label(&v.check));
                (lvl, format!("[{label}] {}", v.reason))
            }
            Notice::Health { target, ok, detail } => (
                if *ok { Level::Info } else { Level::Warn },
                format!(
                    "health {target}: {} ({detail})",
                    if *ok { "ok" } else { "failing" }
                ),
            ),
            Notice::Traffic { weight } => {
                (Level::Info, format!("traffic weight now {weight}% canary"))
            }
            Notice::ApprovalRequired { message } => {
                (Level::Warn, format!("approval required: {message}"))
            }
            Notice::Paused { reason } => (Level::Warn, format!("paused: {reason}")),
            Notice::Resumed { by } => (Level::Info, format!("resumed by {by}")),
            Notice::RollbackStarted { reason } => (Level::Error, format!("ROLLBACK: {reason}")),
            Notice::ReleaseFinished {
                outcome, reason, ..
            } => (
                Level::Warn,
                format!(
                    "release finished: {}",
                    crate::units::led(outcome.words(), reason)
                ),
            ),
            Notice::ManualAction { action, ok, detail } => (
                if *ok { Level::Info } else { Level::Error },
                format!("manual action {action}: {detail}"),
            ),
        };
        self.log(level, LogSource::Rolldeck, text);
    }

    /// The action history is the audit log: what ran, by whom, when, with
    /// what result — the same for driver and observers.
    fn on_audit(&mut self, records: Vec<crate::exec::AuditRecord>) {
        let start = records.len().saturating_sub(ACTION_HISTORY);
        self.actions = records[start..]
            .iter()
            .map(|r| ActionRecord {
                at: r.ts.parse().unwrap_or(self.now),
                who: r.operator.user.clone(),
                what: r.step.clone().unwrap_or_else(|| r.action.clone()),
                ok: r.ok,
                detail: match &r.reason {
                    Some(why) if !why.is_empty() => format!("{}: {} — {why}", r.action, r.detail),
                    _ => format!("{}: {}", r.action, r.detail),
                },
            })
            .collect();
    }

    // ----- keys ---------------------------------------------------------

    fn on_key(&mut self, k: KeyEvent) -> Vec<Out> {
        self.flash = None;
        if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
            return self.quit_request();
        }
        if let Some(p) = self.popup.clone() {
            return self.on_popup_key(p, k);
        }
        if self.debug_view && self.on_debug_key(&k) {
            return Vec::new();
        }
        let Some(action) = self.keymap.action(self.context(), &k) else {
            return Vec::new();
        };
        self.on_action(action)
    }

    /// Keys of the `:debug` view (tui-logger's smart widget): arrows pick a
    /// target (↑/↓) and its shown level (←/→), `-`/`+` its captured level,
    /// PgUp/PgDn page through history, space hides targets that are off,
    /// `t` hides the target list, `f` shows only the selected target, Esc
    /// closes the view. True when the key was the view's.
    fn on_debug_key(&mut self, k: &KeyEvent) -> bool {
        use tui_logger::TuiWidgetEvent as E;
        let event = match k.code {
            KeyCode::Esc => {
                self.debug_state.transition(E::EscapeKey);
                self.debug_view = false;
                return true;
            }
            KeyCode::Up | KeyCode::Char('k') => E::UpKey,
            KeyCode::Down | KeyCode::Char('j') => E::DownKey,
            KeyCode::Left | KeyCode::Char('h') => E::LeftKey,
            KeyCode::Right | KeyCode::Char('l') => E::RightKey,
            KeyCode::Char('+') => E::PlusKey,
            KeyCode::Char('-') => E::MinusKey,
            KeyCode::PageUp => E::PrevPageKey,
            KeyCode::PageDown => E::NextPageKey,
            KeyCode::Char(' ') => E::SpaceKey,
            KeyCode::Char('t') => E::HideKey,
            KeyCode::Char('f') => E::FocusKey,
            _ => return false,
        };
        self.debug_state.transition(event);
        true
    }

    fn quit_request(&mut self) -> Vec<Out> {
        if self.release_running() && self.popup != Some(Popup::Quit) {
            self.popup = Some(Popup::Quit);
            Vec::new()
        } else {
            vec![Out::Quit]
        }
    }

    /// Text input for popups with a line editor.
    fn edit(buf: &mut String, k: &KeyEvent) {
        match k.code {
            KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => buf.push(c),
            KeyCode::Backspace => {
                buf.pop();
            }
            _ => {}
        }
    }

    fn on_popup_key(&mut self, p: Popup, k: KeyEvent) -> Vec<Out> {
        let esc = k.code == KeyCode::Esc;
        let enter = k.code == KeyCode::Enter;
        match p {
            Popup::Help => {
                self.on_help_key(&k);
                Vec::new()
            }
            Popup::Detail(mut d) => {
                let max = d.max_scroll.get();
                match k.code {
                    KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => {
                        self.popup = None;
                        return Vec::new();
                    }
                    KeyCode::Up | KeyCode::Char('k') => d.scroll = d.scroll.saturating_sub(1),
                    KeyCode::Down | KeyCode::Char('j') => d.scroll = (d.scroll + 1).min(max),
                    KeyCode::PageUp => d.scroll = d.scroll.saturating_sub(10),
                    KeyCode::PageDown | KeyCode::Char(' ') => d.scroll = (d.scroll + 10).min(max),
                    KeyCode::Home | KeyCode::Char('g') => d.scroll = 0,
                    KeyCode::End | KeyCode::Char('G') => d.scroll = max,
                    _ => {}
                }
                self.popup = Some(Popup::Detail(d));
                Vec::new()
            }
            Popup::Quit => {
                self.popup = None;
                if k.code == KeyCode::Char('d') {
                    return self.detach_request();
                }
                if matches!(
                    k.code,
                    KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter
                ) {
                    vec![Out::Quit]
                } else {
                    Vec::new()
                }
            }
            Popup::Command(mut line) => {
                if esc {
                    self.popup = None;
                } else if k.code == KeyCode::Tab {
                    line = super::command::complete_with(
                        &line,
                        &self.plan_names(),
                        &self.runbook_names(),
                    )
                    .line;
                    self.popup = Some(Popup::Command(line));
                } else if enter {
                    self.popup = None;
                    return self.run_command_line(&line);
                } else {
                    Self::edit(&mut line, &k);
                    self.popup = Some(Popup::Command(line));
                }
                Vec::new()
            }
            Popup::Filter(mut f) => {
                if esc {
                    self.popup = None;
                } else if enter {
                    self.popup = None;
                    let f = f.trim().to_string();
                    let r = self
                        .logs_mut()
                        .set_filter(if f.is_empty() { None } else { Some(&f) });
                    if let Err(e) = r {
                        self.flash = Some(format!("filter: {e}"));
                    }
                } else {
                    Self::edit(&mut f, &k);
                    self.popup = Some(Popup::Filter(f));
                }
                Vec::new()
            }
            Popup::Weight(mut w) => {
                if esc {
                    self.popup = None;
                } else if enter {
                    self.popup = None;
                    match w.trim().parse::<u8>() {
                        Ok(n) if n <= 100 => self.confirm(Command::SetWeight { weight: n }),
                        _ => self.flash = Some(format!("weight {w:?} is not a percentage 0–100")),
                    }
                } else if matches!(k.code, KeyCode::Char(c) if c.is_ascii_digit())
                    || k.code == KeyCode::Backspace
                {
                    Self::edit(&mut w, &k);
                    self.popup = Some(Popup::Weight(w));
                }
                Vec::new()
            }
            Popup::Confirm(mut c) => {
                if esc {
                    self.popup = None;
                    self.flash = Some("cancelled".into());
                    return Vec::new();
                }
                match k.code {
                    KeyCode::Tab | KeyCode::BackTab | KeyCode::Up | KeyCode::Down
                        if c.type_to_confirm.is_some() =>
                    {
                        c.field = 1 - c.field;
                    }
                    KeyCode::Enter => {
                        if let Some(name) = &c.type_to_confirm
                            && c.typed.trim() != name
                        {
                            self.flash =
                                Some(format!("type the environment name `{name}` to confirm"));
                            self.popup = Some(Popup::Confirm(c));
                            return Vec::new();
                        }
                        self.popup = None;
                        if let Intent::RunBlock(name) = &c.intent {
                            return self.run_runbook_block(name, true);
                        }
                        let reason = c.reason.trim();
                        return vec![match &c.intent {
                            Intent::Command(command) => Out::Issue(Issued {
                                command: command.clone(),
                                operator: self.operator.clone(),
                                reason: (!reason.is_empty()).then(|| reason.to_string()),
                            }),
                            Intent::Start(plan) => Out::Start(plan.clone()),
                            Intent::RunBlock(_) => unreachable!("handled above"),
                        }];
                    }
                    _ => {
                        if c.type_to_confirm.is_some() && c.field == 0 {
                            Self::edit(&mut c.typed, &k);
                        } else {
                            Self::edit(&mut c.reason, &k);
                        }
                    }
                }
                self.popup = Some(Popup::Confirm(c));
                Vec::new()
            }
        }
    }

    /// Keys in the help popup: the keymap's moving keys scroll it (j/k,
    /// PgUp/PgDn, g/G), `back`, `help` and Enter close it.
    fn on_help_key(&mut self, k: &KeyEvent) {
        let view = self.help_view.get();
        let page = view.page.max(1);
        let scroll = self.help_scroll.min(view.max_scroll);
        let action = self.keymap.action(Context::Popup, k);
        self.help_scroll = match action {
            Some(Action::Back | Action::Help | Action::Quit) => {
                self.popup = None;
                0
            }
            _ if k.code == KeyCode::Enter => {
                self.popup = None;
                0
            }
            Some(Action::Up) => scroll.saturating_sub(1),
            Some(Action::Down) => (scroll + 1).min(view.max_scroll),
            Some(Action::PageUp) => scroll.saturating_sub(page),
            Some(Action::PageDown) => (scroll + page).min(view.max_scroll),
            Some(Action::Top) => 0,
            Some(Action::Bottom) => view.max_scroll,
            _ => scroll,
        };
    }

    /// The plan names from the config, for completing `:start`.
    pub fn plan_names(&self) -> Vec<&str> {
        self.plans.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn run_command_line(&mut self, line: &str) -> Vec<Out> {
        match parse_command(line) {
            Err(e) => {
                self.flash = Some(e);
                Vec::new()
            }
            Ok(CommandLine::Quit) => self.quit_request(),
            Ok(CommandLine::Debug) => {
                self.debug_view = !self.debug_view;
                Vec::new()
            }
            Ok(CommandLine::Help) => {
                self.popup = Some(Popup::Help);
                Vec::new()
            }
            Ok(CommandLine::Rollback { reason }) => {
                self.confirm(Command::Rollback);
                if let (Some(Popup::Confirm(c)), Some(r)) = (self.popup.as_mut(), reason) {
                    c.reason = r;
                }
                Vec::new()
            }
            Ok(CommandLine::Promote) => self.act(Command::Promote),
            Ok(CommandLine::PromoteFull) => self.act(Command::PromoteFull),
            Ok(CommandLine::Weight(w)) => self.act(Command::SetWeight { weight: w }),
            Ok(CommandLine::Pause) => self.act(Command::Pause),
            Ok(CommandLine::Resume) => self.act(Command::Resume),
            Ok(CommandLine::Approve) => self.act(Command::Approve),
            Ok(CommandLine::Retry) => self.act(Command::Retry),
            Ok(CommandLine::Abort) => self.act(Command::Abort),
            Ok(CommandLine::Takeover) => {
                if self.driver_gone && matches!(self.role, Role::Observer(_) | Role::Attached(_)) {
                    vec![Out::Takeover]
                } else {
                    self.flash = Some(match &self.role {
                        Role::Observer(Some(h)) => {
                            format!("takeover: {h} still drives this release")
                        }
                        Role::Observer(None) => {
                            "takeover: another rolldeck still drives this release".into()
                        }
                        _ => "takeover: only an observer whose driver is gone can take over".into(),
                    });
                    Vec::new()
                }
            }
            Ok(CommandLine::Detach) => self.detach_request(),
            Ok(CommandLine::Start { plan }) => {
                self.confirm_start(plan);
                Vec::new()
            }
            Ok(CommandLine::Desk(c)) => self.on_desk_command(c),
        }
    }

    /// `:detach`: leave, handing the release to a background driver.
    fn detach_request(&mut self) -> Vec<Out> {
        if self.release_running() {
            self.detach_requested = true;
            vec![Out::Quit]
        } else {
            self.flash = Some(
                "detach: only a cockpit driving an unfinished release hands it to a background driver"
                    .into(),
            );
            Vec::new()
        }
    }

    fn act(&mut self, c: Command) -> Vec<Out> {
        self.confirm(c);
        Vec::new()
    }

    /// Opens the confirmation for starting a release: when idle, or when
    /// this cockpit drove a release that has finished.
    pub fn confirm_start(&mut self, plan: Option<String>) {
        let finished_here =
            self.role == Role::Driver && self.release.as_ref().is_some_and(|r| r.is_finished());
        if self.role != Role::Idle && !finished_here {
            self.flash = Some(match &self.role {
                Role::Driver => "a release is already driven here".into(),
                Role::ReadOnly => "refused: read-only mode".into(),
                _ => "refused: another rolldeck drives this release".into(),
            });
            return;
        }
        let name = plan.clone().or_else(|| self.default_plan.clone());
        let Some((pname, steps)) = self
            .plans
            .iter()
            .find(|(n, _)| Some(n) == name.as_ref())
            .or_else(|| (self.plans.len() == 1).then(|| &self.plans[0]))
        else {
            let known: Vec<&str> = self.plans.iter().map(|(n, _)| n.as_str()).collect();
            self.flash = Some(format!("name a plan: :start PLAN ({})", known.join(", ")));
            return;
        };
        self.popup = Some(Popup::Confirm(Box::new(Confirm {
            intent: Intent::Start(Some(pname.clone())),
            title: format!("Start a release of plan `{pname}` ({} steps)", steps.len()),
            will_run: steps
                .iter()
                .enumerate()
                .map(|(i, s)| format!("step {}: {s}", i + 1))
                .collect(),
            type_to_confirm: self.protected.then(|| self.environment.clone()),
            typed: String::new(),
            reason: String::new(),
            field: 0,
            down: self.down_for_plan(pname),
        })));
    }

    /// The sources plan `plan` needs that the last probe found down (or
    /// that no probe has answered yet), as `source: reason`.
    pub fn down_for_plan(&self, plan: &str) -> Vec<String> {
        let Some(needed) = self.plan_sources.get(plan) else {
            return Vec::new();
        };
        needed
            .iter()
            .filter_map(|n| match self.sources.iter().find(|d| &d.name == n) {
                Some(d) if d.ok => None,
                Some(d) => Some(format!("{n}: {}", d.detail)),
                None => Some(format!("{n}: not probed yet")),
            })
            .collect()
    }

    /// Opens the confirmation for `command` (or refuses, saying why).
    pub fn confirm(&mut self, command: Command) {
        if !self.can_act() {
            self.flash = Some(match (&self.role, &self.driver_done) {
                (Role::Observer(Some(h)), _) => {
                    format!("refused: observer — {h} drives this release")
                }
                (Role::Observer(None), _) => {
                    "refused: observer — another rolldeck drives this release".into()
                }
                (Role::ReadOnly, _) => "refused: read-only mode".into(),
                (Role::Idle, _) => "no release is running: :start begins one".into(),
                (_, Some(d)) => format!("refused: the driver has stopped ({d})"),
                _ if self.release.as_ref().is_some_and(|r| r.is_finished()) => {
                    "refused: the release has finished".into()
                }
                _ => "refused".into(),
            });
            return;
        }
        let Some(r) = &self.release else {
            self.flash = Some("no release".into());
            return;
        };
        // The engine decides what applies now (one source of truth).
        if let Err(why) = r.can(&command) {
            self.flash = Some(why.to_string());
            return;
        }
        // The safe direction (rollback, pause, abort, a lower weight) never
        // waits for the environment name to be typed.
        let type_to_confirm =
            (self.protected && !r.is_safe_direction(&command)).then(|| self.environment.clone());
        let will_run: Vec<String> = r
            .planned_actions(&command, &self.operator, None)
            .into_iter()
            .map(|(name, vars)| match self.action_specs.get(&name) {
                Some(spec) => match render(spec, &vars) {
                    Ok(rendered) => format!("{name}: {}", rendered.display(&self.redactor)),
                    Err(e) => format!("{name}: cannot render: {e}"),
                },
                None => format!("{name}: no such action in the config"),
            })
            .collect();
        let title = match &command {
            Command::Approve => "Approve the waiting step".to_string(),
            Command::Pause => "Pause the release".to_string(),
            Command::Resume => "Resume the release".to_string(),
            Command::Promote => "Promote: skip the current step".to_string(),
            Command::PromoteFull => "Full promotion: skip every remaining gate".to_string(),
            Command::Retry => "Retry the failed step".to_string(),
            Command::Rollback => "ROLL BACK the release".to_string(),
            Command::Abort => "Abort without rollback".to_string(),
            Command::SetWeight { weight } => format!("Set the canary weight to {weight}%"),
        };
        self.popup = Some(Popup::Confirm(Box::new(Confirm {
            intent: Intent::Command(command),
            title,
            will_run,
            type_to_confirm,
            typed: String::new(),
            reason: String::new(),
            field: 0,
            down: Vec::new(),
        })));
    }

    pub(super) fn on_action(&mut self, a: Action) -> Vec<Out> {
        if let Some(outs) = self.on_desk_action(a) {
            return outs;
        }
        let rows_step = self
            .release
            .as_ref()
            .map_or(0, |r| r.plan.steps.len() + r.plan.rollback.len());
        let rows_check = self.release.as_ref().map_or(0, |r| r.checks.len());
        match a {
            Action::Quit => return self.quit_request(),
            Action::Help => self.popup = Some(Popup::Help),
            Action::CommandMode => self.popup = Some(Popup::Command(String::new())),
            Action::Filter => {
                let current = self.logs_mut().filter().unwrap_or("").to_string();
                self.popup = Some(Popup::Filter(current));
            }
            Action::Back => {
                if self.zoom {
                    self.zoom = false;
                } else if self.logs_mut().source().is_some()
                    && matches!(self.focus, Pane::Logs | Pane::Containers)
                {
                    self.logs_mut().set_source(None);
                } else if self.logs_mut().filter().is_some() {
                    let _ = self.logs_mut().set_filter(None);
                }
            }
            Action::NextPane => self.cycle_pane(true),
            Action::PrevPane => self.cycle_pane(false),
            Action::FocusPane(n) => {
                if (1..=Pane::ALL.len()).contains(&usize::from(n)) {
                    self.focus_pane(Pane::ALL[n as usize - 1]);
                }
            }
            Action::Zoom => self.zoom = !self.zoom,
            Action::Up
            | Action::Down
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom => {
                let n = match a {
                    Action::PageUp | Action::PageDown => 10,
                    _ => 1,
                };
                match self.focus {
                    Pane::Logs => match a {
                        Action::Up | Action::PageUp => self.logs_mut().scroll_up(n),
                        Action::Down | Action::PageDown => self.logs_mut().scroll_down(n),
                        Action::Top => self.logs_mut().top(),
                        _ => self.logs_mut().bottom(),
                    },
                    Pane::Pipeline => self.selected_step = mv(self.selected_step, a, n, rows_step),
                    Pane::Canary => {
                        let from = self.shown_check();
                        self.selected_check = mv(from, a, n, rows_check);
                        self.check_pinned = true;
                    }
                    Pane::Runbook => {
                        self.selected_action = mv(self.selected_action, a, n, self.actions.len())
                    }
                    Pane::Migrations => {}
                    Pane::Containers => {
                        let n_rows = self.containers.containers.len();
                        self.selected_container = mv(self.selected_container, a, n, n_rows)
                    }
                }
            }
            Action::Select if self.focus == Pane::Containers => self.show_container_logs(),
            Action::Select => return self.select_detail(),
            Action::Approve => self.confirm(Command::Approve),
            Action::PauseResume => {
                let paused = self
                    .release
                    .as_ref()
                    .is_some_and(|r| matches!(r.phase, Phase::Paused { .. }));
                self.confirm(if paused {
                    Command::Resume
                } else {
                    Command::Pause
                });
            }
            Action::Promote => self.confirm(Command::Promote),
            Action::PromoteFull => self.confirm(Command::PromoteFull),
            Action::SetWeight => {
                let allowed = self
                    .release
                    .as_ref()
                    .map(|r| r.can(&Command::SetWeight { weight: 0 }));
                match allowed {
                    Some(Ok(())) if self.can_act() => {
                        self.popup = Some(Popup::Weight(String::new()))
                    }
                    // Refused with the reason (observer, finished, not paused …).
                    _ => self.confirm(Command::SetWeight { weight: 0 }),
                }
            }
            Action::Retry => self.confirm(Command::Retry),
            Action::Rollback => self.confirm(Command::Rollback),
            Action::Abort => self.confirm(Command::Abort),
            Action::LogFollow => self.logs_mut().toggle_follow(),
            Action::LogWrap => self.logs_mut().toggle_wrap(),
            Action::LogTimestamps => self.logs_mut().toggle_timestamps(),
            Action::LogSave => {
                let name = format!("rolldeck-logs-{}.txt", self.now.strftime("%Y%m%d-%H%M%S"));
                return vec![Out::SaveLogs(std::path::PathBuf::from(name))];
            }
            Action::Refresh => {}
            // Pane 5's own keys ([`super::desk`], [`super::runbook`]).
            Action::RunbookRun
            | Action::RunbookTick
            | Action::RunbookNext
            | Action::RunbookPrev
            | Action::TimelineExport => {}
        }
        Vec::new()
    }
}

impl App {
    /// `Enter` on a row: its whole text in the detail popup.
    pub(super) fn select_detail(&mut self) -> Vec<Out> {
        match super::detail::for_focus(self) {
            Some(d) => self.popup = Some(Popup::Detail(Box::new(d))),
            None => self.flash = Some("nothing selected to show".into()),
        }
        Vec::new()
    }
}

fn mv(cur: usize, a: Action, n: usize, rows: usize) -> usize {
    if rows == 0 {
        return 0;
    }
    match a {
        Action::Up | Action::PageUp => cur.saturating_sub(n),
        Action::Down | Action::PageDown => (cur + n).min(rows - 1),
        Action::Top => 0,
        _ => rows - 1,
    }
}
