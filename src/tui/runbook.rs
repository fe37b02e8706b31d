//! Pane 5, the Runbook pane: the open runbook (sections, blocks with their
//! state and output, PromQL results as tables, checks), or without one the
//! open incident, the firing alerts, the runbooks to open and the action
//! history.
//!
//! A runbook opens with `:runbook NAME` (Tab completes the names found in
//! `[runbooks] dirs`) or with `Enter` on a firing alert whose
//! `runbook_url` annotation names one ([`crate::runbook::find`]). Then
//! `n`/`p` (or the arrows) move between its steps — blocks and checks —,
//! `Enter` runs the focused block through [`crate::runbook::run`] (the
//! cockpit's confirmation first when the block is marked `confirm` or the
//! environment is protected; observers and read-only run nothing),
//! `Space` ticks the focused check, `Esc` closes it. Progress is the
//! runbook helper's progress file, so a reopened runbook is where it was.
//! Block output goes under the block and to the Logs pane; each run and
//! tick goes into the open incident's timeline.
//!
//! Like the rest of the cockpit, [`App`] does no I/O here: loading,
//! running and ticking leave as [`Out::Runbook`] jobs that
//! [`RunbookCtx::perform`] does off the UI, answering with
//! [`Msg::Runbook`].

use super::app::{App, Confirm, Intent, Msg, Out, Pane, Popup, Role};
use super::keymap::Action;
use super::logs::{Level, LogLine, LogSource};
use super::ui::{block, fit, selectable};
use crate::incident::Kind;
use crate::runbook::run::{ConfirmReason, Refusal, RunPolicy, prepare};
use crate::runbook::vars::VarSources;
use crate::runbook::{BlockKind, BlockState, Item, Progress, ProgressStore, QueryTable, Runbook};
use crate::sources::alerts::FiringAlert;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;

/// Output lines kept under each block.
const OUTPUT_LINES: usize = 200;

/// Output lines drawn under a block (the last ones).
const OUTPUT_SHOWN: usize = 8;

/// A runbook open in the pane.
#[derive(Debug, Clone)]
pub struct OpenRunbook {
    /// The name it was opened by (`manual-rollback`).
    pub name: String,
    /// The parsed file.
    pub book: Runbook,
    /// Where its progress is kept.
    pub store: ProgressStore,
    /// Its progress (block states, ticks), as last read or written.
    pub progress: Progress,
    /// The focused step (index into [`OpenRunbook::steps`]).
    pub focus: usize,
    /// Each block's output lines this session, newest last.
    pub output: BTreeMap<String, VecDeque<String>>,
    /// Each PromQL block's last answer.
    pub tables: BTreeMap<String, Result<QueryTable, String>>,
    /// Blocks running now (started from this cockpit).
    pub running: std::collections::BTreeSet<String>,
    /// Why the progress cannot be read or written, while it cannot.
    pub error: Option<String>,
}

/// A step of a runbook: a block or a check (indexes into the runbook).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `Runbook::blocks[i]`.
    Block(usize),
    /// `Runbook::checks[i]`.
    Check(usize),
}

impl OpenRunbook {
    /// The steps in document order: shell and PromQL blocks (also one
    /// that is not runnable, so `Enter` says why) and checks; other code
    /// blocks are shown, not steps.
    pub fn steps(&self) -> Vec<Step> {
        self.book
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Block { index } if self.book.blocks[*index].kind != BlockKind::Other => {
                    Some(Step::Block(*index))
                }
                Item::Check { index } => Some(Step::Check(*index)),
                _ => None,
            })
            .collect()
    }

    /// The focused step.
    pub fn focused(&self) -> Option<Step> {
        let s = self.steps();
        s.get(self.focus.min(s.len().saturating_sub(1))).copied()
    }

    /// A block's state: running here, else the progress file's.
    pub fn state(&self, i: usize) -> BlockState {
        let b = &self.book.blocks[i];
        if self.running.contains(&b.name) {
            return BlockState::Running {
                pid: std::process::id(),
            };
        }
        self.progress.state(b)
    }
}

/// What the event loop does for the Runbook pane ([`RunbookCtx::perform`]).
#[derive(Debug, Clone, PartialEq)]
pub enum RunbookJob {
    /// Load the runbook at `path` and its progress.
    Open {
        /// The name it is opened by.
        name: String,
        /// The file.
        path: PathBuf,
    },
    /// Run block `block` of `book` (already allowed and, when needed,
    /// confirmed).
    Run {
        /// The runbook as shown.
        book: Box<Runbook>,
        /// The block's name.
        block: String,
        /// The operator confirmed.
        confirmed: bool,
    },
    /// Tick (or untick) check `key` of the runbook at `path`.
    Tick {
        /// The runbook file.
        path: PathBuf,
        /// The runbook (to find the check).
        book: Box<Runbook>,
        /// [`crate::runbook::Check::key`].
        key: String,
        /// Ticked or not.
        ticked: bool,
    },
}

/// What comes back from a [`RunbookJob`].
#[derive(Debug, Clone)]
pub enum RunbookMsg {
    /// A runbook was loaded (or why not).
    Opened(Result<Box<OpenRunbook>, String>),
    /// A line of a block's output.
    Output {
        /// The block.
        block: String,
        /// The line (control sequences removed, secrets redacted).
        line: String,
    },
    /// A block finished (or could not start).
    Done {
        /// The block.
        block: String,
        /// Its result in words (`exit 0`, `timed out after 30s`, why not run).
        text: String,
        /// Succeeded.
        ok: bool,
        /// A PromQL block's answer.
        table: Option<Result<QueryTable, String>>,
        /// The progress after it.
        progress: Result<Progress, String>,
    },
    /// The progress after a tick.
    Progress(Result<Progress, String>),
}

impl App {
    /// Opens the runbook `wanted` names (a name, a file name, a URL or path
    /// ending in one), searching the configured runbooks.
    pub fn open_runbook(&mut self, wanted: &str) -> Vec<Out> {
        if let Some(e) = &self.desk.runbooks_error {
            self.flash = Some(format!("runbooks: {e}"));
            return Vec::new();
        }
        match crate::runbook::find(&self.desk.runbooks, wanted) {
            Some(e) => vec![Out::Runbook(RunbookJob::Open {
                name: e.name.clone(),
                path: e.path.clone(),
            })],
            None => {
                let names: Vec<&str> = self.desk.runbooks.iter().map(|e| e.name.as_str()).collect();
                self.flash = Some(if names.is_empty() {
                    format!("no runbook `{wanted}`: no [runbooks] dirs configured")
                } else {
                    format!("no runbook `{wanted}` (runbooks: {})", names.join(", "))
                });
                Vec::new()
            }
        }
    }

    /// The answer to a [`RunbookJob`].
    pub fn on_runbook_msg(&mut self, m: RunbookMsg) -> Vec<Out> {
        self.dirty = true;
        match m {
            RunbookMsg::Opened(Ok(o)) => {
                let text = format!("opened runbook {}", o.name);
                self.flash = Some(text.clone());
                self.desk.runbook = Some(*o);
                self.focus = Pane::Runbook;
                let op = self.operator.clone();
                return self.record_entry(Kind::Runbook, text, op);
            }
            RunbookMsg::Opened(Err(e)) => self.flash = Some(e),
            RunbookMsg::Output { block, line } => {
                self.logs_mut().push(LogLine {
                    ts: self.now,
                    source: LogSource::Action(block.clone()),
                    level: Level::Info,
                    text: line.clone(),
                });
                if let Some(o) = &mut self.desk.runbook {
                    let q = o.output.entry(block).or_default();
                    q.push_back(line);
                    while q.len() > OUTPUT_LINES {
                        q.pop_front();
                    }
                }
            }
            RunbookMsg::Done {
                block,
                text,
                ok,
                table,
                progress,
            } => {
                let name = self.desk.runbook.as_ref().map(|o| o.name.clone());
                // A shell block's run reaches the timeline from the audit
                // log (also when run headless); a query is not audited.
                let query = table.is_some();
                if let Some(o) = &mut self.desk.runbook {
                    o.running.remove(&block);
                    if let Some(t) = table {
                        o.tables.insert(block.clone(), t);
                    }
                    match progress {
                        Ok(p) => {
                            o.progress = p;
                            o.error = None;
                        }
                        Err(e) => o.error = Some(e),
                    }
                }
                let words = format!(
                    "{} › {block}: {} — {text}",
                    name.unwrap_or_default(),
                    if ok { "ok" } else { "FAILED" }
                );
                self.logs_mut().push(LogLine {
                    ts: self.now,
                    source: LogSource::Rolldeck,
                    level: if ok { Level::Info } else { Level::Error },
                    text: format!("runbook {words}"),
                });
                if query {
                    let op = self.operator.clone();
                    return self.record_entry(Kind::Block, words, op);
                }
            }
            RunbookMsg::Progress(r) => {
                if let Some(o) = &mut self.desk.runbook {
                    match r {
                        Ok(p) => {
                            o.progress = p;
                            o.error = None;
                        }
                        Err(e) => o.error = Some(e),
                    }
                }
            }
        }
        Vec::new()
    }

    /// Runs block `name` of the open runbook: refused (with the reason)
    /// for observers, read-only, a block that is not runnable or lacks a
    /// variable; the confirmation popup first when the block is marked
    /// `confirm` or (a shell block) the environment is protected.
    pub fn run_runbook_block(&mut self, name: &str, confirmed: bool) -> Vec<Out> {
        let Some(o) = &self.desk.runbook else {
            return Vec::new();
        };
        let Some(b) = o.book.block(name) else {
            return Vec::new();
        };
        if o.running.contains(name) {
            self.flash = Some(format!("{name} is running"));
            return Vec::new();
        }
        let read_only = matches!(self.role, Role::ReadOnly | Role::Observer(_));
        let policy = RunPolicy {
            read_only,
            protected: self.protected.then(|| self.environment.clone()),
            confirmed,
            default_timeout: self.desk.runbook_timeout,
        };
        let mut vars = VarSources::new(None, &o.progress, &BTreeMap::new());
        vars.config = self.desk.runbook_vars.clone();
        match prepare(&o.book, b, &vars, &policy, &self.redactor) {
            Ok(_) => {
                let job = RunbookJob::Run {
                    book: Box::new(o.book.clone()),
                    block: name.to_string(),
                    confirmed,
                };
                if let Some(o) = &mut self.desk.runbook {
                    o.running.insert(name.to_string());
                    o.output.remove(name);
                }
                self.flash = Some(format!("running {name}"));
                vec![Out::Runbook(job)]
            }
            Err(Refusal::NeedsConfirmation { reason, shown }) => {
                let (title, type_to_confirm) = match reason {
                    ConfirmReason::Marked => {
                        (format!("Run runbook block `{name}` (marked confirm)"), None)
                    }
                    ConfirmReason::Protected { environment } => (
                        format!("Run runbook block `{name}` in {environment}"),
                        Some(environment),
                    ),
                };
                self.popup = Some(Popup::Confirm(Box::new(Confirm {
                    intent: Intent::RunBlock(name.to_string()),
                    title,
                    will_run: vec![shown],
                    type_to_confirm,
                    typed: String::new(),
                    reason: String::new(),
                    field: 0,
                    down: Vec::new(),
                })));
                Vec::new()
            }
            Err(Refusal::ReadOnly) => {
                self.flash = Some(match &self.role {
                    Role::ReadOnly => "refused: read-only mode runs nothing".into(),
                    _ => "refused: an observer runs nothing (the runbook is shown)".into(),
                });
                Vec::new()
            }
            Err(e) => {
                self.flash = Some(format!("{name}: {e}"));
                Vec::new()
            }
        }
    }

    fn record_entry(&mut self, kind: Kind, text: String, operator: String) -> Vec<Out> {
        self.desk_record(kind, text, operator)
    }

    /// Keys of the pane while a runbook is open. `None`: not handled here.
    pub fn on_runbook_action(&mut self, a: Action) -> Option<Vec<Out>> {
        let o = self.desk.runbook.as_mut()?;
        let steps = o.steps();
        let n = steps.len();
        let cur = o.focus.min(n.saturating_sub(1));
        match a {
            Action::RunbookNext | Action::Down => o.focus = (cur + 1).min(n.saturating_sub(1)),
            Action::RunbookPrev | Action::Up => o.focus = cur.saturating_sub(1),
            Action::PageDown => o.focus = (cur + 5).min(n.saturating_sub(1)),
            Action::PageUp => o.focus = cur.saturating_sub(5),
            Action::Top => o.focus = 0,
            Action::Bottom => o.focus = n.saturating_sub(1),
            Action::Back if !self.zoom => {
                let name = o.name.clone();
                self.desk.runbook = None;
                self.flash = Some(format!("closed runbook {name} (its progress is kept)"));
            }
            Action::RunbookRun | Action::Select => match o.focused() {
                Some(Step::Block(i)) => {
                    let name = o.book.blocks[i].name.clone();
                    return Some(self.run_runbook_block(&name, false));
                }
                Some(Step::Check(_)) => return self.on_runbook_action(Action::RunbookTick),
                None => {}
            },
            Action::RunbookTick => match o.focused() {
                Some(Step::Check(i)) => {
                    if matches!(self.role, Role::ReadOnly | Role::Observer(_)) {
                        self.flash = Some("refused: observers and read-only tick nothing".into());
                        return Some(Vec::new());
                    }
                    let c = &o.book.checks[i];
                    let ticked = !o.progress.ticked(c);
                    let job = RunbookJob::Tick {
                        path: o.store.runbook().to_path_buf(),
                        book: Box::new(o.book.clone()),
                        key: c.key.clone(),
                        ticked,
                    };
                    // Shown at once; the file's answer confirms it.
                    let op = self.operator.clone();
                    o.progress.tick(c, ticked, &op);
                    let words = format!(
                        "{} › [{}] {}",
                        o.name,
                        if ticked { "x" } else { " " },
                        c.text
                    );
                    let mut outs = vec![Out::Runbook(job)];
                    outs.extend(self.record_entry(Kind::Check, words, op));
                    return Some(outs);
                }
                _ => self.flash = Some("Space ticks a check; this step is a block".into()),
            },
            _ => return None,
        }
        Some(Vec::new())
    }
}

/// What [`RunbookCtx::perform`] needs: the executor for shell blocks, the
/// Prometheus source for PromQL blocks, where progress is kept, the
/// config's variables and default timeout.
#[derive(Clone)]
pub struct RunbookCtx {
    /// Runs shell blocks (audited); `None` in read-only mode.
    pub executor: Option<crate::exec::Executor>,
    /// For PromQL blocks.
    pub prometheus: Result<crate::sources::prometheus::Prometheus, String>,
    /// The service+environment's state paths (progress files, journal).
    pub paths: crate::runtime::StatePaths,
    /// The config (variables, protected environment, timeouts).
    pub cfg: std::sync::Arc<crate::config::Config>,
    /// Observer or read-only.
    pub read_only: bool,
}

impl RunbookCtx {
    /// Does `job` in its own task, answering on `tx`.
    pub fn perform(&self, job: RunbookJob, tx: tokio::sync::mpsc::Sender<Msg>) {
        let ctx = self.clone();
        tokio::spawn(async move {
            let send = |m: RunbookMsg| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(Msg::Runbook(m)).await;
                }
            };
            match job {
                RunbookJob::Open { name, path } => {
                    let r = tokio::task::spawn_blocking(move || ctx.load(name, &path))
                        .await
                        .unwrap_or_else(|e| Err(format!("loading the runbook failed: {e}")));
                    send(RunbookMsg::Opened(r.map(Box::new))).await;
                }
                RunbookJob::Tick {
                    path,
                    book,
                    key,
                    ticked,
                } => {
                    let op = ctx.operator();
                    let paths = ctx.paths.clone();
                    let r = tokio::task::spawn_blocking(move || {
                        let store = crate::runbook::checklist::store_for(&paths, &path)
                            .map_err(|e| e.to_string())?;
                        let Some(c) = book.checks.iter().find(|c| c.key == key) else {
                            return Err(format!("no check `{key}`"));
                        };
                        store
                            .update(|p| p.tick(c, ticked, &op))
                            .map_err(|e| e.to_string())?;
                        store.load().map_err(|e| e.to_string())
                    })
                    .await
                    .unwrap_or_else(|e| Err(format!("ticking failed: {e}")));
                    send(RunbookMsg::Progress(r)).await;
                }
                RunbookJob::Run {
                    book,
                    block,
                    confirmed,
                } => {
                    let msg = ctx.run(&book, &block, confirmed, tx.clone()).await;
                    send(msg).await;
                }
            }
        });
    }

    fn operator(&self) -> String {
        self.executor.as_ref().map_or_else(
            || crate::exec::Operator::current().to_string(),
            |e| e.operator().to_string(),
        )
    }

    fn load(&self, name: String, path: &std::path::Path) -> Result<OpenRunbook, String> {
        let book = Runbook::load(path).map_err(|e| e.to_string())?;
        let store =
            crate::runbook::checklist::store_for(&self.paths, path).map_err(|e| e.to_string())?;
        let (progress, error) = match store.load() {
            Ok(p) => (p, None),
            Err(e) => (Progress::new(store.runbook()), Some(e.to_string())),
        };
        // The first step not done yet has the focus.
        let mut o = OpenRunbook {
            name,
            book,
            store,
            progress,
            focus: 0,
            output: BTreeMap::new(),
            tables: BTreeMap::new(),
            running: Default::default(),
            error,
        };
        o.focus = o
            .steps()
            .iter()
            .position(|s| match s {
                Step::Block(i) => {
                    o.book.blocks[*i].runnable()
                        && !matches!(o.progress.state(&o.book.blocks[*i]), BlockState::Ok)
                }
                Step::Check(i) => !o.progress.ticked(&o.book.checks[*i]),
            })
            .unwrap_or(0);
        Ok(o)
    }

    async fn run(
        &self,
        book: &Runbook,
        name: &str,
        confirmed: bool,
        tx: tokio::sync::mpsc::Sender<Msg>,
    ) -> RunbookMsg {
        let done = |text: String, ok: bool, table, progress| RunbookMsg::Done {
            block: name.to_string(),
            text,
            ok,
            table,
            progress,
        };
        let Some(path) = book.path.clone() else {
            return done(
                "the runbook has no file".into(),
                false,
                None,
                Err("no file".into()),
            );
        };
        let store = match crate::runbook::checklist::store_for(&self.paths, &path) {
            Ok(s) => s,
            Err(e) => return done(format!("not run: {e}"), false, None, Err(e.to_string())),
        };
        let progress = match store.load() {
            Ok(p) => p,
            Err(e) => return done(format!("not run: {e}"), false, None, Err(e.to_string())),
        };
        let Some(block) = book.block(name) else {
            return done(format!("no block `{name}`"), false, None, Ok(progress));
        };
        let vars = VarSources::new(Some(&self.cfg), &progress, &BTreeMap::new());
        let policy = RunPolicy::from_config(&self.cfg, self.read_only, confirmed);
        let redactor = crate::redact::Redactor::new(self.cfg.secrets.clone());
        let prepared = match prepare(book, block, &vars, &policy, &redactor) {
            Ok(p) => p,
            Err(e) => return done(format!("not run: {e}"), false, None, Ok(progress)),
        };
        let reload = |store: &ProgressStore| store.load().map_err(|e| e.to_string());
        match block.kind {
            BlockKind::Promql => {
                let r = match &self.prometheus {
                    Ok(p) => crate::runbook::run::query_table(p, &prepared).await,
                    Err(e) => Err(e.clone()),
                };
                let (state, text) = match &r {
                    Ok(t) => (BlockState::Ok, format!("{} series", t.rows.len())),
                    Err(e) => (BlockState::Failed { exit_code: None }, e.clone()),
                };
                let ok = r.is_ok();
                let op = self.operator();
                let saved = store.update(|p| p.set_state(block, state, &text, 0.0, &op));
                let progress = match saved {
                    Ok(_) => reload(&store),
                    Err(e) => Err(e.to_string()),
                };
                done(text, ok, Some(r), progress)
            }
            _ => {
                let Some(exec) = &self.executor else {
                    return done(
                        "refused: read-only mode runs nothing".into(),
                        false,
                        None,
                        Ok(progress),
                    );
                };
                let (otx, mut orx) = tokio::sync::mpsc::channel::<crate::exec::OutputLine>(256);
                let fwd_tx = tx.clone();
                let block_name = name.to_string();
                let fwd = tokio::spawn(async move {
                    while let Some(l) = orx.recv().await {
                        let _ = fwd_tx
                            .send(Msg::Runbook(RunbookMsg::Output {
                                block: block_name.clone(),
                                line: l.line,
                            }))
                            .await;
                    }
                });
                let r = crate::runbook::run::run_recorded(
                    &store,
                    exec,
                    block,
                    &prepared,
                    otx,
                    std::future::pending::<()>(),
                )
                .await;
                let _ = fwd.await;
                match r {
                    Ok(out) => done(out.detail.clone(), out.ok, None, reload(&store)),
                    Err((Some(out), e)) => {
                        done(out.detail.clone(), out.ok, None, Err(e.to_string()))
                    }
                    Err((None, e)) => {
                        done(format!("not run: {e}"), false, None, Err(e.to_string()))
                    }
                }
            }
        }
    }
}

/// A block's state as a mark and words, with its style.
fn state_mark(app: &App, s: &BlockState) -> (String, ratatui::style::Style) {
    let t = &app.theme;
    match s {
        BlockState::NotRun => ("○ not run".into(), t.muted),
        BlockState::Running { .. } => ("◐ running".into(), t.warn),
        BlockState::Ok => ("✓ ok".into(), t.ok),
        BlockState::Failed { exit_code: Some(c) } => (format!("✗ failed (exit {c})"), t.crit),
        BlockState::Failed { exit_code: None } => ("✗ failed".into(), t.crit),
        BlockState::Skipped => ("– skipped".into(), t.muted),
    }
}

/// Draws an open runbook: sections, blocks with their state, output and
/// tables, checks; scrolled so the focused step shows.
fn draw_open(f: &mut Frame, app: &App, o: &OpenRunbook, area: Rect) {
    let t = &app.theme;
    let w = area.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    let focused = o.focused();
    let mut focus_line = 0usize;
    let steps = o.steps();
    let done = steps
        .iter()
        .filter(|s| match s {
            Step::Block(i) => matches!(o.state(*i), BlockState::Ok | BlockState::Skipped),
            Step::Check(i) => o.progress.ticked(&o.book.checks[*i]),
        })
        .count();
    // The title line stays while the steps scroll.
    let mut head = vec![Line::styled(
        fit(
            &format!(
                "{} — {done}/{} steps done · Enter run · Space tick · n/p step · Esc close",
                o.book.display_name(),
                steps.len()
            ),
            w,
        ),
        t.muted,
    )];
    if let Some(e) = &o.error {
        head.push(Line::styled(fit(&format!("progress: {e}"), w), t.crit));
    }
    let [head_area, area] =
        Layout::vertical([Constraint::Length(head.len() as u16), Constraint::Min(0)]).areas(area);
    f.render_widget(Paragraph::new(head), head_area);
    for item in &o.book.items {
        match item {
            Item::Section { index } => {
                let s = &o.book.sections[*index];
                if s.level == 1 && Some(&s.title) == o.book.title.as_ref() {
                    continue;
                }
                lines.push(Line::styled(
                    fit(&format!("{} {}", "#".repeat(s.level as usize), s.title), w),
                    t.title,
                ));
            }
            Item::Block { index } => {
                let b = &o.book.blocks[*index];
                let me = focused == Some(Step::Block(*index));
                if me {
                    focus_line = lines.len();
                }
                let pointer = if me { "▸ " } else { "  " };
                let lang = b.language.clone().unwrap_or_else(|| "text".into());
                let confirm = if b.attributes.confirm { " confirm" } else { "" };
                let (mark, style) = if b.runnable() {
                    state_mark(app, &o.state(*index))
                } else {
                    ("· shown".into(), t.muted)
                };
                let head = format!("{pointer}{} [{lang}{confirm}] ", b.name);
                let row = Line::from(vec![
                    Span::styled(
                        head.clone(),
                        if me {
                            t.selection
                        } else {
                            t.text.add_modifier(Modifier::BOLD)
                        },
                    ),
                    Span::styled(fit(&mark, w.saturating_sub(head.chars().count())), style),
                ]);
                lines.push(row);
                let code: Vec<&str> = b.code.lines().collect();
                for l in code.iter().take(if me { 6 } else { 2 }) {
                    lines.push(Line::styled(fit(&format!("    {l}"), w), t.muted));
                }
                if code.len() > if me { 6 } else { 2 } {
                    lines.push(Line::styled(
                        format!("    … {} more lines", code.len() - if me { 6 } else { 2 }),
                        t.muted,
                    ));
                }
                if let Some(r) = o.progress.record(b)
                    && !r.detail.is_empty()
                    && b.runnable()
                {
                    lines.push(Line::styled(fit(&format!("    → {}", r.detail), w), style));
                }
                if let Some(out) = o.output.get(&b.name) {
                    let skip = out.len().saturating_sub(OUTPUT_SHOWN);
                    for l in out.iter().skip(skip) {
                        lines.push(Line::styled(fit(&format!("    │ {l}"), w), t.text));
                    }
                }
                match o.tables.get(&b.name) {
                    Some(Ok(tbl)) if tbl.rows.is_empty() => {
                        lines.push(Line::styled("    no series", t.muted));
                    }
                    Some(Ok(tbl)) => {
                        let widths: Vec<usize> = (0..tbl.columns.len())
                            .map(|c| {
                                tbl.rows
                                    .iter()
                                    .map(|r| r.get(c).map_or(0, |x| x.chars().count()))
                                    .chain([tbl.columns[c].chars().count()])
                                    .max()
                                    .unwrap_or(0)
                                    .min(30)
                            })
                            .collect();
                        let fmt_row = |cells: &[String]| {
                            let parts: Vec<String> = cells
                                .iter()
                                .zip(&widths)
                                .map(|(c, w)| format!("{:<w$}", fit(c, *w), w = *w))
                                .collect();
                            format!("    {}", parts.join(" │ "))
                        };
                        lines.push(Line::styled(fit(&fmt_row(&tbl.columns), w), t.title));
                        for r in tbl.rows.iter().take(10) {
                            lines.push(Line::styled(fit(&fmt_row(r), w), t.text));
                        }
                        if tbl.rows.len() > 10 || tbl.truncated {
                            lines.push(Line::styled(
                                format!("    … {} series", tbl.rows.len()),
                                t.muted,
                            ));
                        }
                    }
                    Some(Err(e)) => {
                        lines.push(Line::styled(fit(&format!("    query: {e}"), w), t.crit))
                    }
                    None => {}
                }
            }
            Item::Check { index } => {
                let c = &o.book.checks[*index];
                let me = focused == Some(Step::Check(*index));
                if me {
                    focus_line = lines.len();
                }
                let ticked = o.progress.ticked(c);
                let text = format!(
                    "{}[{}] {}",
                    if me { "▸ " } else { "  " },
                    if ticked { "x" } else { " " },
                    c.text
                );
                lines.push(Line::styled(
                    fit(&text, w),
                    if me {
                        t.selection
                    } else if ticked {
                        t.ok
                    } else {
                        t.text
                    },
                ));
            }
            Item::Text { .. } => {}
        }
    }
    let h = area.height as usize;
    let scroll = focus_line
        .saturating_sub(h / 3)
        .min(lines.len().saturating_sub(h));
    f.render_widget(Paragraph::new(lines).scroll((scroll as u16, 0)), area);
}

/// Draws pane 5: the open incident's line, the firing alerts (when an
/// alerts source is configured), then the action history.
pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let mut extra = match app.incident() {
        Some(i) => format!(" · {} {}", i.severity, i.id),
        None => String::new(),
    };
    if let Some(o) = &app.desk.runbook {
        extra.push_str(&format!(" · runbook {}", o.name));
        let b = block(app, Pane::Runbook, extra);
        let inner = b.inner(area);
        f.render_widget(b, area);
        draw_open(f, app, o, inner);
        return;
    }
    let b = block(app, Pane::Runbook, extra);
    let inner = b.inner(area);
    f.render_widget(b, area);
    let mut top: Vec<Line> = Vec::new();
    if let Some(i) = app.incident() {
        let last = i.entries.last().map_or(String::new(), |e| {
            format!(" · last: {} {}", e.kind.words(), e.text)
        });
        top.push(Line::from(vec![
            Span::styled(
                format!("● {} {} ", i.severity, i.title),
                t.crit.add_modifier(Modifier::BOLD),
            ),
            Span::styled(
                fit(
                    &format!("{} entries{last}", i.entries.len()),
                    (inner.width as usize).saturating_sub(i.title.chars().count() + 6),
                ),
                t.muted,
            ),
        ]));
    }
    if !app.desk.runbooks.is_empty() {
        let names: Vec<&str> = app.desk.runbooks.iter().map(|e| e.name.as_str()).collect();
        top.push(Line::styled(
            fit(
                &format!("runbooks (:runbook NAME): {}", names.join(", ")),
                inner.width as usize,
            ),
            t.muted,
        ));
    }
    if let Some(e) = &app.desk.runbooks_error {
        top.push(Line::styled(
            fit(&format!("runbooks: {e}"), inner.width as usize),
            t.crit,
        ));
    }
    if let Some(e) = &app.desk.timeline_error {
        top.push(Line::styled(
            fit(&format!("timeline: {e}"), inner.width as usize),
            t.crit,
        ));
    }
    let alerts: &[FiringAlert] = match &app.desk.alerts {
        Some(Ok(list)) => list,
        _ => &[],
    };
    match &app.desk.alerts {
        Some(Err(e)) => top.push(Line::styled(
            fit(&format!("alerts down: {e}"), inner.width as usize),
            t.crit,
        )),
        Some(Ok(list)) if list.is_empty() => {
            top.push(Line::styled("no alerts firing", t.muted));
        }
        Some(Ok(_)) | None => {}
    }
    let [head, list] =
        Layout::vertical([Constraint::Length(top.len() as u16), Constraint::Min(0)]).areas(inner);
    f.render_widget(Paragraph::new(top), head);
    if alerts.is_empty() && app.actions.is_empty() {
        f.render_widget(
            Paragraph::new(Line::styled("no actions yet", t.muted)),
            list,
        );
        return;
    }
    let what_w = 22usize;
    let who_w = 12usize;
    let time_w = app
        .actions
        .iter()
        .map(|a| a.at)
        .chain(alerts.iter().map(|a| a.since))
        .map(|at| app.clock_time(at).chars().count())
        .max()
        .unwrap_or(8);
    let detail_w = (list.width as usize).saturating_sub(1 + time_w + what_w + who_w + 3);
    let mut rows: Vec<Row> = alerts
        .iter()
        .map(|a| {
            let book = if a.runbook_url.is_some() {
                "↵ runbook · "
            } else {
                ""
            };
            Row::new(vec![
                Cell::from(Span::styled(app.clock_time(a.since), t.muted)),
                Cell::from(Span::styled(fit(&format!("▲ {}", a.name), what_w), t.crit)),
                Cell::from(Span::styled(
                    fit(a.severity.as_deref().unwrap_or("-"), who_w),
                    t.warn,
                )),
                Cell::from(Span::styled(
                    fit(
                        &format!("{book}{}", a.summary.as_deref().unwrap_or("")),
                        detail_w,
                    ),
                    t.text,
                )),
            ])
        })
        .collect();
    rows.extend(app.actions.iter().rev().map(|a| {
        let (mark, style) = if a.ok { ("✓", t.ok) } else { ("✗", t.crit) };
        Row::new(vec![
            Cell::from(Span::styled(app.clock_time(a.at), t.muted)),
            Cell::from(Span::styled(
                fit(&format!("{mark} {}", a.what), what_w),
                style,
            )),
            Cell::from(Span::styled(fit(&a.who, who_w), t.muted)),
            Cell::from(Span::styled(fit(&a.detail, detail_w), t.muted)),
        ])
    }));
    let n = rows.len();
    let widths = [
        Constraint::Length(time_w as u16),
        Constraint::Length(what_w as u16),
        Constraint::Length(who_w as u16),
        Constraint::Min(8),
    ];
    let selected = if alerts.is_empty() {
        app.selected_action.min(n - 1)
    } else {
        app.desk.selected.min(n - 1)
    };
    let mut state =
        TableState::default().with_selected((app.focus == Pane::Runbook).then_some(selected));
    f.render_stateful_widget(
        selectable(app, Table::new(rows, widths).column_spacing(1)),
        list,
        &mut state,
    );
}
