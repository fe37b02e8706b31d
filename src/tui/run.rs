//! The cockpit's event loop: one tokio loop over crossterm's `EventStream`,
//! the driver's events (or, as observer, the journal), source probes and a
//! 1 s tick → [`App::update`] → draw only when something changed.
//!
//! The UI never waits on the network or a command: the driver, the source
//! probes and the journal reader are their own tasks. The terminal is
//! restored on exit, on panic (ratatui's hook), and on SIGINT, SIGTERM and
//! SIGHUP.

use super::app::{App, Msg, Out, Role};
use super::keymap::Keymap;
use super::screen::LeanBackend;
use super::theme::Theme;
use crate::config::Config;
use crate::exec::Operator;
use crate::redact::Redactor;
use crate::release::engine::Issued;
use crate::runtime::{self, DriveMode, DriverEvent, DriverLock, RunOptions, StatePaths, Stop};
use crate::sources::Sources;
use futures::StreamExt;
use jiff::Timestamp;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Options of the cockpit.
#[derive(Debug, Clone, Default)]
pub struct TuiOptions {
    /// Watch only (k9s `readOnly`): never drive, refuse actions.
    pub read_only: bool,
    /// Theme name or file (`--theme`), over the config's.
    pub theme: Option<String>,
    /// A line shown in the logs at start (the demo's URLs).
    pub banner: Vec<String>,
    /// Start a release at once when nothing is to be resumed (`rolldeck run`,
    /// the demo); otherwise the cockpit opens idle and `:start` starts one.
    pub start: bool,
    /// How often metrics are scraped, when rolldeck cannot read it from
    /// the config (the demo knows its Prometheus's), for "waiting for
    /// first data (scrape every 1 s)".
    pub scrape_every: Option<Duration>,
    /// `rolldeck attach`: open on the background driver's release even
    /// when it was killed (else attaching happens only to a running one).
    pub attach: bool,
    /// Hand the release to a background driver when the terminal hangs up
    /// mid-release (`on_hangup`); off for the demo, whose services die
    /// with it.
    pub hand_off: bool,
}

/// How often an observer checks that its driver still holds the lock.
const LOCK_PROBE: Duration = Duration::from_secs(2);

/// How often the header's sources are probed.
const SOURCE_POLL: Duration = Duration::from_secs(5);

/// Opens the cockpit over the release of `cfg`: drives it when the driver
/// lock is free (starting or resuming the release), else watches the journal
/// as observer. A new release starts only after the preflight found every
/// source its plan needs up and, in a protected environment, after the
/// start confirmation (unless `--force` / `--yes`); otherwise the cockpit
/// opens idle with the start confirmation listing the down sources.
///
/// Returns the exit code: the release's outcome code if it ended while
/// driven here; 6 ([`runtime::exit::LEFT_UNFINISHED`]) when the operator
/// quit while it was unfinished; 130 on a signal; 1 if the driver failed;
/// else 0 (idle, observer, read-only).
pub async fn run_tui(cfg: Config, run: RunOptions, opts: TuiOptions) -> anyhow::Result<i32> {
    let theme = Theme::select(
        opts.theme.as_deref().or(cfg.theme.as_deref()),
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
    )
    .map_err(|e| anyhow::anyhow!("theme: {e}"))?;
    let mut keymap = Keymap::default_map();
    if let Some(keys) = &cfg.keys {
        keymap = keymap
            .with_overrides(keys)
            .map_err(|e| anyhow::anyhow!("[keys]: {e}"))?;
    }
    let paths = StatePaths::resolve(&cfg, run.state_dir.as_deref()).map_err(anyhow::Error::msg)?;
    let redactor = Redactor::new(cfg.secrets.clone());
    let operator = Operator::current();

    // A background driver drives: attach (commands over its socket).
    let attached = super::attach::target(&paths, opts.read_only, opts.attach)?;
    // `rolldeck attach` with no background driver never drives: it shows.
    let (lock, role) = if opts.read_only || (opts.attach && attached.is_none()) {
        (None, Role::ReadOnly)
    } else if let Some(b) = &attached {
        (None, Role::Attached(super::attach::describe(b)))
    } else {
        match DriverLock::acquire(&paths.lock) {
            Ok(l) => (Some(l), Role::Driver),
            Err(runtime::LockError::Held(h)) => (None, Role::Observer(Some(h))),
            Err(runtime::LockError::HeldUnknown(_)) => (None, Role::Observer(None)),
            Err(e) => return Err(e.into()),
        }
    };

    let mut app = App::new(
        cfg.service.clone(),
        cfg.environment.name.clone(),
        cfg.environment.protected,
        role,
        keymap,
        theme,
        cfg.actions.clone(),
        redactor.clone(),
        operator.to_string(),
        Timestamp::now(),
    );
    // Direct scrape: the fastest target's interval; Prometheus: its own
    // schedule, known only when the caller says (the demo).
    let scrape_every = opts.scrape_every.or_else(|| {
        cfg.sources
            .prometheus
            .is_none()
            .then(|| cfg.sources.scrape.iter().map(|s| s.interval).min())
            .flatten()
    });
    app.data_cadence = scrape_every.map(|d| format!("scrape every {} s", d.as_secs_f64()));
    app.plans = cfg
        .plans
        .iter()
        .map(|(name, p)| (name.clone(), p.steps.iter().map(step_words).collect()))
        .collect();
    app.default_plan = cfg
        .default_plan
        .clone()
        .or_else(|| cfg.plans.contains_key("default").then(|| "default".into()));
    app.plan_sources = cfg
        .plans
        .keys()
        .filter_map(|name| {
            let plan = crate::release::plan::Plan::from_config(&cfg, Some(name)).ok()?;
            Some((name.clone(), crate::preflight::needs(&cfg, &plan)))
        })
        .collect();
    let (msg_tx, mut msg_rx) = mpsc::channel::<Msg>(4096);
    let logs = app.logs.clone();
    let (log_tx, log_lines) = tokio::sync::watch::channel(0u64);
    let _ = super::logs::init_tracing(logs, Some(log_tx));
    for b in &opts.banner {
        tracing::info!("{b}");
    }

    let cfg = Arc::new(cfg);
    // The driver, or the journal reader.
    let (cmd_tx, cmd_rx) = mpsc::channel::<Issued>(COMMAND_QUEUE);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(None::<Stop>);
    let mut starter = Starter {
        cfg: cfg.clone(),
        run,
        paths: paths.clone(),
        cmd_tx,
        cmd_rx: Some(cmd_rx),
        stop_rx,
        tx: msg_tx.clone(),
        driving: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        handle: None,
    };
    if let Some(b) = &attached {
        starter.cmd_tx = super::attach::forwarder(b.socket.clone(), msg_tx.clone());
    }
    // Opening the cockpit (`rolldeck` alone) never starts a release: with
    // nothing to resume it stays idle until `:start`. An unreadable journal
    // is shown as an error, never as an idle screen.
    let resumable = match paths.store.latest() {
        Ok(latest) => latest.is_some_and(|r| !r.is_finished()),
        Err(e) => {
            app.update(Msg::JournalError(Some(e.to_string())));
            false
        }
    };
    // `rolldeck run` starting a new release: the preflight first (before
    // any traffic changes); down sources or a protected environment open
    // the start confirmation instead of starting.
    let mut ask_start: Option<String> = None;
    if opts.start && !resumable && lock.is_some() {
        let plan = crate::release::plan::Plan::from_config(&cfg, starter.run.plan.as_deref())
            .map_err(anyhow::Error::msg)?;
        eprintln!(
            "rolldeck: preflight: probing the sources plan `{}` needs…",
            plan.name
        );
        let statuses = crate::preflight::probe(&cfg, Some(&plan)).await;
        let down = statuses.iter().any(|s| !s.ok);
        app.update(Msg::Sources(statuses, Timestamp::now()));
        if (down && !starter.run.force) || (cfg.environment.protected && !starter.run.yes) {
            ask_start = Some(plan.name.clone());
        }
    }
    match lock {
        Some(lock) if (opts.start || resumable) && ask_start.is_none() => starter.spawn(lock),
        other => {
            if other.is_some() {
                app.role = Role::Idle;
            }
            drop(other);
            // Observer / idle: the journal's latest release, followed until
            // this process drives.
            tokio::spawn(follow_journal(
                paths.store.clone(),
                msg_tx.clone(),
                starter.driving.clone(),
            ));
        }
    }
    // Observer: probe the driver lock every LOCK_PROBE; a free lock means
    // the driver is gone (a killed driver's lock dies with it).
    {
        let lock = paths.lock.clone();
        let driving = starter.driving.clone();
        let tx = msg_tx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(LOCK_PROBE);
            loop {
                tick.tick().await;
                if driving.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let gone = !DriverLock::is_held(&lock) && lock.exists();
                if tx.send(Msg::DriverGone(gone)).await.is_err() {
                    break;
                }
            }
        });
    }
    // The action history: the audit log, re-read when it grows.
    tokio::spawn(follow_file(
        paths.audit.clone(),
        msg_tx.clone(),
        |p| {
            Some(match crate::exec::AuditLog::read_all(p) {
                Ok(records) => Msg::Audit(records),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Msg::Audit(Vec::new()),
                Err(e) => Msg::Log(super::logs::LogLine::new(
                    super::logs::LogSource::Rolldeck,
                    super::logs::Level::Error,
                    format!("audit log {}: {e}", p.display()),
                )),
            })
        },
        FALLBACK_POLL,
    ));
    // The Migrations pane: each source re-read every (shortest) interval.
    app.migrations_configured = !cfg.sources.migrations.is_empty();
    if app.migrations_configured {
        tokio::spawn(poll_migrations(
            cfg.sources.migrations.clone(),
            msg_tx.clone(),
        ));
    }
    // Container logs into the Logs pane (tagged by container name; the
    // Logs filter matches the name), followed while each container runs.
    // The Containers pane: the watcher's state sent on each change (the
    // event stream), so a container that dies shows at once.
    app.docker_configured = cfg.sources.docker.is_some();
    if let Some(d) = &cfg.sources.docker {
        let watch = crate::docker::DockerWatch::new(d);
        let _watcher = watch.spawn();
        tokio::spawn(crate::docker::forward_views(
            watch.clone(),
            msg_tx.clone(),
            Msg::Containers,
        ));
        tokio::spawn(crate::docker::logs::follow_selected(
            watch,
            d.host.clone(),
            d.timeout,
            100,
            app.logs.clone(),
        ));
    }
    // Pane 5: the firing alerts (on the header's schedule) and the
    // incident timeline (written by one thread, read back by a follower).
    app.desk.writes = app.role != Role::ReadOnly;
    app.desk.alerts_configured = cfg.sources.prometheus.is_some();
    if let Some(p) = &cfg.sources.prometheus {
        let src = crate::sources::alerts::AlertSource::new(p);
        tokio::spawn(super::desk::poll_alerts(src, SOURCE_POLL, msg_tx.clone()));
    }
    // Pane 5's runbooks: found once in `[runbooks] dirs`, run through an
    // executor of their own (audited like every action).
    match crate::runbook::discover(&cfg.runbooks.dirs) {
        Ok(list) => app.desk.runbooks = list,
        Err(e) => app.desk.runbooks_error = Some(e),
    }
    app.desk.runbook_vars = cfg.runbooks.vars.clone();
    app.desk.runbook_timeout = Some(cfg.runbooks.timeout);
    let runbooks = super::runbook::RunbookCtx {
        executor: match (app.desk.writes, crate::exec::AuditLog::open(&paths.audit)) {
            (true, Ok(audit)) => Some(crate::exec::Executor::new(
                audit,
                operator.clone(),
                redactor.clone(),
            )),
            (true, Err(e)) => {
                app.desk.runbooks_error = Some(format!("audit log {}: {e}", paths.audit.display()));
                None
            }
            (false, _) => None,
        },
        prometheus: match &cfg.sources.prometheus {
            Some(p) => crate::sources::prometheus::Prometheus::new(p),
            None => Err("no [sources.prometheus] configured: PromQL blocks cannot run".into()),
        },
        paths: paths.clone(),
        cfg: cfg.clone(),
        read_only: !app.desk.writes,
    };
    let timeline_path = crate::incident::timeline::path_in(&paths.dir);
    let timeline = super::desk::spawn_timeline_writer(
        timeline_path.clone(),
        redactor.clone(),
        app.desk.writes,
        msg_tx.clone(),
    );
    tokio::spawn(follow_file(
        timeline_path,
        msg_tx.clone(),
        |p| {
            Some(Msg::Timeline(
                crate::incident::timeline::read(p).map_err(|e| e.to_string()),
            ))
        },
        FALLBACK_POLL,
    ));
    // Header dots.
    {
        let sources = Sources::new(&cfg);
        let tx = msg_tx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SOURCE_POLL);
            loop {
                tick.tick().await;
                // Each round in its own task: a panicking poller is shown as
                // down and the next round starts afresh.
                let s = sources.clone();
                let list = match tokio::spawn(async move { s.status_all().await }).await {
                    Ok(list) => list,
                    Err(e) => vec![crate::sources::SourceStatus {
                        source: "sources".into(),
                        ok: false,
                        detail: format!("source poller failed ({e}); restarted"),
                        latency_ms: None,
                    }],
                };
                if tx.send(Msg::Sources(list, Timestamp::now())).await.is_err() {
                    break;
                }
            }
        });
    }

    let mut terminal = init_terminal()?;
    // ratatui's hook restores the terminal on a panic. Only a panic of the
    // UI itself (the main thread) ends the cockpit; a background task's
    // panic is caught where it runs and shown as down.
    let restore_and_report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some("main") {
            restore_and_report(info);
        }
    }));
    if let Some(plan) = ask_start {
        app.confirm_start(Some(plan));
    }
    let result = event_loop(
        &mut terminal,
        &mut app,
        &mut msg_rx,
        log_lines,
        &mut starter,
        (timeline, runbooks),
    )
    .await;
    // `ratatui::restore` prints (and so panics) when the terminal is gone.
    let _ = ratatui::try_restore();

    // An error of the UI itself stops the driver like a quit.
    let stop = *result.as_ref().unwrap_or(&Stop::Quit);
    let _ = stop_tx.send(Some(stop));
    let drove = starter.handle.is_some();
    let code = match starter.handle.take() {
        // Observer, read-only or idle: this process left nothing behind.
        None => match stop {
            Stop::Signal(_) => runtime::exit::INTERRUPTED,
            Stop::Quit => runtime::exit::PROMOTED,
        },
        Some(d) => match tokio::time::timeout(Duration::from_secs(10), d).await {
            Ok(Ok(Ok(c))) => c,
            Ok(Ok(Err(e))) => {
                eprintln!("rolldeck: driver: {e:#}");
                runtime::exit::ERROR
            }
            Ok(Err(e)) => {
                eprintln!("rolldeck: driver task failed: {e}");
                runtime::exit::ERROR
            }
            Err(_) => {
                eprintln!("rolldeck: the driver did not stop within 10 s");
                runtime::exit::ERROR
            }
        },
    };
    // The terminal hung up mid-release: a background driver takes over.
    // So does `:detach` (without on_hangup's command).
    let code = if drove
        && opts.hand_off
        && stop == Stop::Signal("SIGHUP")
        && code == runtime::exit::INTERRUPTED
    {
        super::attach::hand_off(&starter.cfg, &starter.paths, Some(&app.operator)).await
    } else if drove && app.detach_requested && code == runtime::exit::LEFT_UNFINISHED {
        super::attach::hand_off(&starter.cfg, &starter.paths, None).await
    } else {
        code
    };
    if matches!(
        code,
        runtime::exit::LEFT_UNFINISHED | runtime::exit::INTERRUPTED
    ) && let Some(r) = app.release.as_ref().filter(|r| !r.is_finished())
    {
        eprintln!(
            "rolldeck: left release {} unfinished ({stop}): {}",
            r.id,
            runtime::left_unwatched(r)
        );
    }
    result?;
    Ok(code)
}

/// Reads every migration source each (shortest) `interval`, sending the
/// statuses; a read that panics is shown as every source down.
async fn poll_migrations(sources: Vec<crate::config::MigrationSource>, tx: mpsc::Sender<Msg>) {
    let every = sources
        .iter()
        .map(|s| s.interval)
        .min()
        .unwrap_or(Duration::from_secs(15));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let s = sources.clone();
        let list = match tokio::spawn(async move { crate::migrations::read_all(&s).await }).await {
            Ok(list) => list,
            Err(e) => sources
                .iter()
                .map(|s| {
                    let mut st = crate::migrations::Status::new(&s.name, s.tool);
                    st.ok = false;
                    st.error = Some(format!("migrations poller failed ({e}); restarted"));
                    st
                })
                .collect(),
        };
        if tx.send(Msg::Migrations(list)).await.is_err() {
            break;
        }
    }
}

/// The cockpit's terminal: ratatui over [`LeanBackend`] on stdout.
type Term = ratatui::Terminal<LeanBackend<std::io::Stdout>>;

/// Like `ratatui::init`, with [`LeanBackend`]: raw mode, the alternate
/// screen, and a panic hook that restores the terminal first.
fn init_terminal() -> std::io::Result<Term> {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = ratatui::try_restore();
        report(info);
    }));
    crossterm::terminal::enable_raw_mode()?;
    crossterm::execute!(std::io::stdout(), crossterm::terminal::EnterAlternateScreen)?;
    ratatui::Terminal::new(LeanBackend::new(std::io::stdout()))
}

async fn event_loop(
    terminal: &mut Term,
    app: &mut App,
    msg_rx: &mut mpsc::Receiver<Msg>,
    log_lines: tokio::sync::watch::Receiver<u64>,
    starter: &mut Starter,
    (timeline, runbooks): (
        Option<std::sync::mpsc::Sender<crate::incident::Entry>>,
        super::runbook::RunbookCtx,
    ),
) -> anyhow::Result<Stop> {
    let msg_tx = starter.tx.clone();
    let mut keys = crossterm::event::EventStream::new();
    let mut pacer = Pacer::default();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut log_lines = Some(log_lines);
    loop {
        let now = tokio::time::Instant::now();
        if app.dirty && pacer.due().is_none_or(|d| d <= now) {
            // rolldeck's own tracing into the `:debug` view (tui-logger's
            // mover thread is not started: see logs::init_tracing).
            tui_logger::move_events();
            terminal.draw(|f| super::ui::draw(f, app))?;
            app.dirty = false;
            pacer.drawn(now);
        }
        // Sleep until a drawn clock changes (never a fixed tick), or until a
        // batched redraw is due.
        let clock_at = super::ui::next_clock_change(app).map(|at| {
            let wait = at.duration_since(Timestamp::now());
            now + Duration::try_from(wait).unwrap_or(Duration::ZERO)
        });
        let draw_at = pacer.due().filter(|_| app.dirty);
        let msg = tokio::select! {
            _ = sleep_until(draw_at), if draw_at.is_some() => continue,
            changed = async { log_lines.as_mut()?.changed().await.ok() }, if log_lines.is_some() => {
                match changed {
                    // rolldeck's own events went straight to the log buffer.
                    Some(()) => {
                        app.dirty = true;
                        pacer.changed(tokio::time::Instant::now(), false);
                    }
                    None => log_lines = None,
                }
                continue;
            }
            ev = keys.next() => match ev {
                Some(Ok(crossterm::event::Event::Key(k))) if k.kind == crossterm::event::KeyEventKind::Press => Msg::Key(k),
                Some(Ok(crossterm::event::Event::Resize(_, _))) => Msg::Resize,
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    if e.raw_os_error() == Some(nix::libc::EIO) {
                        silence_dead_terminal();
                    }
                    return Err(e.into());
                }
                // The terminal is gone, as on a hang-up.
                None => {
                    silence_dead_terminal();
                    return Ok(Stop::Signal("SIGHUP"));
                }
            },
            Some(m) = msg_rx.recv() => m,
            _ = sleep_until(clock_at), if clock_at.is_some() => Msg::Tick(Timestamp::now()),
            _ = sigterm.recv() => return Ok(Stop::Signal("SIGTERM")),
            _ = sighup.recv() => {
                silence_dead_terminal();
                return Ok(Stop::Signal("SIGHUP"));
            }
            _ = sigint.recv() => return Ok(Stop::Signal("SIGINT")),
        };
        // A key or resize is drawn at once; data at most every DRAW_BATCH.
        let urgent = matches!(msg, Msg::Key(_) | Msg::Resize);
        let mut outs = app.update(msg);
        // Drain what else is queued before drawing once.
        while let Ok(m) = msg_rx.try_recv() {
            outs.extend(app.update(m));
        }
        if app.dirty {
            pacer.changed(tokio::time::Instant::now(), urgent);
        }
        for o in outs {
            match o {
                Out::Quit => return Ok(Stop::Quit),
                Out::Issue(i) => {
                    if starter.cmd_tx.try_send(i).is_err() {
                        app.flash = Some("the driver is not accepting commands".into());
                    }
                }
                Out::Start(plan) => {
                    match starter.start(plan).await {
                        Ok(()) => app.role = Role::Driver,
                        Err(runtime::LockError::Held(h)) => {
                            app.flash = Some(format!("cannot start: {h} drives this release"));
                            app.role = Role::Observer(Some(h));
                        }
                        Err(e) => app.flash = Some(format!("cannot start: {e}")),
                    }
                    app.dirty = true;
                }
                Out::Takeover if matches!(app.role, Role::Attached(_)) => {
                    let (cfg, paths) = (starter.cfg.clone(), starter.paths.clone());
                    if let Some(tx) = super::attach::resume(app, &cfg, &paths, &starter.tx).await {
                        starter.cmd_tx = tx;
                    }
                }
                Out::Takeover => {
                    match DriverLock::acquire(&starter.paths.lock) {
                        Ok(lock) => {
                            starter.spawn(lock);
                            app.role = Role::Driver;
                            app.driver_gone = false;
                            app.flash = Some("took over: driving, resumed from the journal".into());
                        }
                        Err(runtime::LockError::Held(h)) => {
                            app.flash = Some(format!("cannot take over: {h} drives this release"));
                            app.role = Role::Observer(Some(h));
                            app.driver_gone = false;
                        }
                        Err(e) => app.flash = Some(format!("cannot take over: {e}")),
                    }
                    app.dirty = true;
                }
                Out::Timeline(e) => {
                    let sent = timeline.as_ref().is_some_and(|t| t.send(e).is_ok());
                    if !sent {
                        app.timeline_write_failed("the timeline writer is not running".into());
                    }
                }
                Out::Runbook(job) => runbooks.perform(job, msg_tx.clone()),
                Out::ExportTimeline(path) => {
                    let text = app
                        .last_incident()
                        .map(|i| crate::incident::export::markdown(i, app.now, &app.time_zone));
                    app.flash = Some(match text.map(|t| std::fs::write(&path, t)) {
                        Some(Ok(())) => format!("timeline saved to {}", path.display()),
                        Some(Err(e)) => format!("timeline export failed: {e}"),
                        None => "no incident to export".into(),
                    });
                    app.dirty = true;
                }
                Out::SaveLogs(path) => {
                    let r = app.logs.lock().map(|l| l.save(&path));
                    app.flash = Some(match r {
                        Ok(Ok(n)) => format!("saved {n} lines to {}", path.display()),
                        Ok(Err(e)) => format!("save failed: {e}"),
                        Err(_) => "save failed: log buffer unavailable".into(),
                    });
                    app.dirty = true;
                }
            }
        }
    }
}

/// Commands queued for the driver (keys are slower than the driver).
const COMMAND_QUEUE: usize = 16;

/// The longest a data change waits to be drawn: changes arriving within
/// it (two checks' verdicts, a burst of log lines) are drawn together,
/// once. Keys and resizes are drawn at once.
pub const DRAW_BATCH: Duration = Duration::from_millis(250);

/// When the cockpit draws: at once after a key or resize, and for data at
/// most once per [`DRAW_BATCH`].
#[derive(Debug, Default, Clone)]
pub struct Pacer {
    last: Option<tokio::time::Instant>,
    due: Option<tokio::time::Instant>,
}

impl Pacer {
    /// Something shown changed at `now`; `urgent` for the operator's own
    /// input (a key, a resize).
    pub fn changed(&mut self, now: tokio::time::Instant, urgent: bool) {
        let at = match self.last {
            Some(last) if !urgent => now.max(last + DRAW_BATCH),
            _ => now,
        };
        self.due = Some(self.due.map_or(at, |d| d.min(at)));
    }

    /// When the pending draw is due (`None`: nothing pending).
    pub fn due(&self) -> Option<tokio::time::Instant> {
        self.due
    }

    /// A frame was drawn at `now`.
    pub fn drawn(&mut self, now: tokio::time::Instant) {
        self.last = Some(now);
        self.due = None;
    }
}

/// Sleeps until `at` (forever when `None`: the `select!` branch is then
/// disabled by its precondition anyway).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Starts the driver: at once, or later on `:start`.
struct Starter {
    cfg: Arc<Config>,
    run: RunOptions,
    paths: StatePaths,
    /// Commands for the driver (a new channel for each release started).
    cmd_tx: mpsc::Sender<Issued>,
    /// The receiving end, until a driver takes it.
    cmd_rx: Option<mpsc::Receiver<Issued>>,
    stop_rx: tokio::sync::watch::Receiver<Option<Stop>>,
    tx: mpsc::Sender<Msg>,
    driving: Arc<std::sync::atomic::AtomicBool>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<i32>>>,
}

impl Starter {
    /// Drives the release with `lock` held: a task that runs
    /// [`runtime::drive`] and restarts it from the journal if it panics.
    fn spawn(&mut self, lock: DriverLock) {
        let Some(cmd_rx) = self.cmd_rx.take() else {
            return;
        };
        self.driving
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let cfg = self.cfg.clone();
        let run = self.run.clone();
        let paths = self.paths.clone();
        let stop_rx = self.stop_rx.clone();
        let tx = self.tx.clone();
        self.handle = Some(tokio::spawn(async move {
            use futures::FutureExt;
            let mut cmd_rx = cmd_rx;
            let mut lock = Some(lock);
            let mut attempt = 0;
            loop {
                attempt += 1;
                let Some(held) = lock.take() else {
                    break Ok(runtime::exit::ERROR);
                };
                let mut quit = stop_rx.clone();
                let stop = async move {
                    match quit.wait_for(|q| q.is_some()).await {
                        Ok(why) => why.unwrap_or(Stop::Quit),
                        // The cockpit is gone without a word: as a quit.
                        Err(_) => Stop::Quit,
                    }
                };
                let sink_tx = tx.clone();
                let mut sink = move |e: DriverEvent| {
                    let _ = sink_tx.try_send(Msg::Driver(e));
                };
                let driving = runtime::drive(
                    &cfg,
                    &run,
                    &paths,
                    held,
                    &mut cmd_rx,
                    DriveMode {
                        exit_when_waiting: false,
                    },
                    stop,
                    &mut sink,
                );
                // A crashed driver is shown, never hidden, and restarted
                // from the journal (a few times at most).
                let stopped = |reason: String| {
                    let _ = tx.try_send(Msg::Driver(DriverEvent::Stopped {
                        outcome: "crashed".into(),
                        reason,
                        duration_s: 0.0,
                    }));
                };
                match std::panic::AssertUnwindSafe(driving).catch_unwind().await {
                    Ok(Ok(code)) => break Ok(code),
                    Ok(Err(e)) => {
                        stopped(format!("driver error: {e:#}"));
                        break Err(e);
                    }
                    Err(p) => {
                        let why = panic_text(&*p);
                        if attempt >= 3 || stop_rx.borrow().is_some() {
                            stopped(format!("driver panicked {attempt} times, last: {why}"));
                            break Ok(runtime::exit::ERROR);
                        }
                        let _ = tx.try_send(Msg::Log(super::logs::LogLine::new(
                            super::logs::LogSource::Rolldeck,
                            super::logs::Level::Error,
                            format!("driver panicked ({why}); restarting from the journal"),
                        )));
                        // The unwinding dropped our lock; take it again.
                        match DriverLock::acquire(&paths.lock) {
                            Ok(l) => lock = Some(l),
                            Err(e) => {
                                stopped(format!("driver panicked ({why}); cannot restart: {e}"));
                                break Ok(runtime::exit::ERROR);
                            }
                        }
                    }
                }
            }
        }));
    }

    /// `:start`: takes the driver lock and starts a release of `plan`. After
    /// a release this cockpit drove has finished, its driver task (which
    /// returns at once and lets go of the lock) is awaited first, and the
    /// new driver gets a fresh command channel.
    async fn start(&mut self, plan: Option<String>) -> Result<(), runtime::LockError> {
        if let Some(previous) = self.handle.take() {
            match tokio::time::timeout(Duration::from_secs(10), previous).await {
                Ok(Ok(Ok(code))) => tracing::info!("the last release's driver ended (exit {code})"),
                Ok(Ok(Err(e))) => tracing::warn!("the last release's driver ended: {e:#}"),
                Ok(Err(e)) => tracing::warn!("the last release's driver task failed: {e}"),
                Err(_) => tracing::warn!("the last release's driver did not stop within 10 s"),
            }
        }
        if self.cmd_rx.is_none() {
            let (tx, rx) = mpsc::channel::<Issued>(COMMAND_QUEUE);
            self.cmd_tx = tx;
            self.cmd_rx = Some(rx);
        }
        let lock = DriverLock::acquire(&self.paths.lock)?;
        self.run.plan = plan;
        self.spawn(lock);
        Ok(())
    }
}

/// A plan step in words for the start confirmation: `traffic 25%`, `analysis 5m`.
fn step_words(s: &crate::config::StepSpec) -> String {
    let kind = crate::config::kind_name(s.kind);
    let what = match (&s.name, s.weight, &s.action, s.duration) {
        (Some(n), ..) => n.clone(),
        (None, Some(w), ..) => format!("{w}%"),
        (None, None, Some(a), _) => a.clone(),
        (None, None, None, Some(d)) => humantime::format_duration(d).to_string(),
        _ => String::new(),
    };
    format!("{kind} {what}").trim().to_string()
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// How often a follower re-checks its file when file-change notification
/// is unavailable (it is not polled otherwise).
const FALLBACK_POLL: Duration = Duration::from_secs(1);

/// Wakes (a `()` on the returned channel) when a path that `wanted`
/// accepts changes in `dir` (and below it, `recursive`): by file-change
/// notification (`notify`; inotify on Linux), never by a timer. A failed or
/// overflowed notification wakes too: a re-read is always safe.
///
/// # Errors
///
/// When the platform offers no notification for `dir`.
fn watch_dir(
    dir: &std::path::Path,
    recursive: bool,
    wanted: impl Fn(&std::path::Path) -> bool + Send + 'static,
) -> notify::Result<(notify::RecommendedWatcher, mpsc::Receiver<()>)> {
    use notify::Watcher;
    let (wake_tx, wake_rx) = mpsc::channel::<()>(1);
    let mut watcher =
        notify::recommended_watcher(move |ev: notify::Result<notify::Event>| match ev {
            Ok(ev) if !ev.need_rescan() && !ev.paths.iter().any(|p| wanted(p)) => {}
            _ => {
                let _ = wake_tx.try_send(());
            }
        })?;
    let mode = if recursive {
        notify::RecursiveMode::Recursive
    } else {
        notify::RecursiveMode::NonRecursive
    };
    watcher.watch(dir, mode)?;
    Ok((watcher, wake_rx))
}

/// Waits for the next wake of a follower: a notification, or (without
/// one) the `fallback` poll.
async fn next_wake(wake: &mut Option<mpsc::Receiver<()>>, fallback: Duration) {
    match wake {
        Some(rx) => {
            if rx.recv().await.is_none() {
                // The watcher is gone: poll from now on.
                *wake = None;
            }
        }
        None => tokio::time::sleep(fallback).await,
    }
}

/// Re-reads `path` whenever its size changes and sends what `read` makes
/// of it (off the UI's thread); woken by file-change notification on its
/// directory, or every `fallback` when notification is unavailable. Stops
/// when the UI is gone.
async fn follow_file(
    path: std::path::PathBuf,
    tx: mpsc::Sender<Msg>,
    read: impl Fn(&std::path::Path) -> Option<Msg> + Send + Sync + 'static,
    fallback: Duration,
) {
    let read = Arc::new(read);
    let dir = path
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| ".".into());
    let _ = std::fs::create_dir_all(&dir);
    let want = path.clone();
    let (watcher, mut wake) = match watch_dir(&dir, false, move |p| p == want) {
        Ok((w, rx)) => (Some(w), Some(rx)),
        Err(e) => {
            tracing::warn!(
                "{}: no file-change notification ({e}); checking every {}",
                path.display(),
                humantime::format_duration(fallback)
            );
            (None, None)
        }
    };
    let mut last_len = None;
    loop {
        let len = match std::fs::metadata(&path) {
            Ok(m) => Some(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(0),
            // Unreadable now: try again on the next wake (the read below
            // reports the error).
            Err(_) => None,
        };
        if len.is_none() || len != last_len {
            last_len = len;
            let p = path.clone();
            let r = read.clone();
            let msg = tokio::task::spawn_blocking(move || r(&p))
                .await
                .ok()
                .flatten();
            if let Some(m) = msg
                && tx.send(m).await.is_err()
            {
                break;
            }
        }
        next_wake(&mut wake, fallback).await;
    }
    drop(watcher);
}

/// The terminal hung up (SIGHUP): point stdout and stderr at `/dev/null`,
/// so that nothing (`eprintln!`, a panic message) fails writing to it and
/// turns an orderly shutdown — stopping actions, the demo's Prometheus,
/// removing temp dirs — into an abort.
pub(crate) fn silence_dead_terminal() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
}

/// Follows the journal's current release as observer (by byte offset, see
/// [`crate::store::Follower`]): woken by file-change notification on the
/// state directory ([`watch_dir`]; an overflowed notification queue wakes
/// it too), or a 1 s poll when notification is unavailable. Sends each changed release, and
/// every read error (or its clearing) as [`Msg::JournalError`]. Stops when
/// the UI is gone or this process starts driving.
async fn follow_journal(
    store: crate::store::Store,
    tx: mpsc::Sender<Msg>,
    driving: Arc<std::sync::atomic::AtomicBool>,
) {
    let _ = std::fs::create_dir_all(store.releases_dir());
    let (watcher, mut wake) = match watch_dir(&store.dir, true, |_| true) {
        Ok((w, rx)) => (Some(w), Some(rx)),
        Err(e) => {
            tracing::warn!("journal: no file-change notification ({e}); polling every second");
            (None, None)
        }
    };
    let follower = Arc::new(std::sync::Mutex::new(crate::store::Follower::new(store)));
    let mut last_err: Option<String> = None;
    loop {
        if driving.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        let f = follower.clone();
        let res = tokio::task::spawn_blocking(move || match f.lock() {
            Ok(mut f) => f.poll().map_err(|e| e.to_string()),
            Err(_) => Err("journal follower poisoned".to_string()),
        })
        .await
        .unwrap_or_else(|e| Err(format!("journal reader failed: {e}")));
        let mut msgs = Vec::new();
        match res {
            Ok(changed) => {
                if last_err.take().is_some() {
                    msgs.push(Msg::JournalError(None));
                }
                if let Some(r) = changed {
                    msgs.push(Msg::Driver(DriverEvent::State(Box::new(r))));
                }
            }
            Err(e) => {
                if last_err.as_ref() != Some(&e) {
                    last_err = Some(e.clone());
                    msgs.push(Msg::JournalError(Some(e)));
                }
            }
        }
        for m in msgs {
            if tx.send(m).await.is_err() {
                return;
            }
        }
        next_wake(&mut wake, FALLBACK_POLL).await;
    }
    drop(watcher);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[test]
    fn keys_draw_at_once_data_at_most_every_batch() {
        let t0 = Instant::now();
        let mut p = Pacer::default();
        // The first change draws at once.
        p.changed(t0, false);
        assert_eq!(p.due(), Some(t0));
        p.drawn(t0);
        assert_eq!(p.due(), None);
        // Data right after a draw waits for the batch; more data in the
        // batch joins the same draw.
        let t1 = t0 + Duration::from_millis(10);
        p.changed(t1, false);
        p.changed(t1 + Duration::from_millis(100), false);
        assert_eq!(p.due(), Some(t0 + DRAW_BATCH));
        // A key does not wait.
        let t2 = t1 + Duration::from_millis(20);
        p.changed(t2, true);
        assert_eq!(p.due(), Some(t2));
        p.drawn(t2);
        // Data long after the last draw draws at once.
        let t3 = t2 + DRAW_BATCH * 4;
        p.changed(t3, false);
        assert_eq!(p.due(), Some(t3));
    }

    /// The audit follower is woken by file-change notification: with its
    /// fallback poll an hour away, appends still arrive, each read once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_audit_follower_is_woken_by_notification_not_a_timer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let (tx, mut rx) = mpsc::channel(8);
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = reads.clone();
        let task = tokio::spawn(follow_file(
            path.clone(),
            tx,
            move |p| {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let n = std::fs::read_to_string(p).map_or(0, |s| s.lines().count());
                Some(Msg::DriverGone(n > 0))
            },
            Duration::from_secs(3600),
        ));
        let next = async |rx: &mut mpsc::Receiver<Msg>| match tokio::time::timeout(
            Duration::from_secs(20),
            rx.recv(),
        )
        .await
        {
            Ok(Some(Msg::DriverGone(b))) => b,
            other => panic!("no wake: {other:?}"),
        };
        // The first read, at once: no file yet.
        assert!(!next(&mut rx).await);
        // The watch is set up before the first read; an append wakes it.
        std::fs::write(&path, "one\n").unwrap();
        assert!(next(&mut rx).await);
        let before = reads.load(std::sync::atomic::Ordering::SeqCst);
        // A file next to it changing does not cause a read.
        std::fs::write(dir.path().join("other"), "x").unwrap();
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"two\n").unwrap();
        assert!(next(&mut rx).await);
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), before + 1);
        task.abort();
    }
}
