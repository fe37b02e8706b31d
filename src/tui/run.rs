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

    let (lock, role) = if opts.read_only {
        (None, Role::ReadOnly)
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
    let _ = super::logs::init_tracing(logs, None);
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
    tokio::spawn(follow_file(paths.audit.clone(), msg_tx.clone(), |p| {
        crate::exec::AuditLog::read_all(p).ok().map(Msg::Audit)
    }));
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
    if let Some(d) = &cfg.sources.docker {
        let watch = crate::docker::DockerWatch::new(d);
        let _watcher = watch.spawn();
        tokio::spawn(crate::docker::logs::follow_selected(
            watch,
            d.host.clone(),
            d.timeout,
            100,
            app.logs.clone(),
        ));
    }
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

    let mut terminal = ratatui::init();
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
    let result = event_loop(&mut terminal, &mut app, &mut msg_rx, &mut starter).await;
    // `ratatui::restore` prints (and so panics) when the terminal is gone.
    let _ = ratatui::try_restore();

    // An error of the UI itself stops the driver like a quit.
    let stop = *result.as_ref().unwrap_or(&Stop::Quit);
    let _ = stop_tx.send(Some(stop));
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

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    msg_rx: &mut mpsc::Receiver<Msg>,
    starter: &mut Starter,
) -> anyhow::Result<Stop> {
    let mut keys = crossterm::event::EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    loop {
        if app.dirty {
            terminal.draw(|f| super::ui::draw(f, app))?;
            app.dirty = false;
        }
        let msg = tokio::select! {
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
            _ = tick.tick() => Msg::Tick(Timestamp::now()),
            _ = sigterm.recv() => return Ok(Stop::Signal("SIGTERM")),
            _ = sighup.recv() => {
                silence_dead_terminal();
                return Ok(Stop::Signal("SIGHUP"));
            }
            _ = sigint.recv() => return Ok(Stop::Signal("SIGINT")),
        };
        let mut outs = app.update(msg);
        // Drain what else is queued before drawing once.
        while let Ok(m) = msg_rx.try_recv() {
            outs.extend(app.update(m));
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

/// Re-reads `path` whenever its size changes (checked every second, off the
/// UI's thread) and sends what `read` makes of it; stops when the UI is gone.
async fn follow_file(
    path: std::path::PathBuf,
    tx: mpsc::Sender<Msg>,
    read: impl Fn(&std::path::Path) -> Option<Msg> + Send + Sync + 'static,
) {
    let read = Arc::new(read);
    let mut last_len = u64::MAX;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len == last_len {
            continue;
        }
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
/// state directory (`notify`), with a slow poll as a safety net, or a 1 s
/// poll when notification is unavailable. Sends each changed release, and
/// every read error (or its clearing) as [`Msg::JournalError`]. Stops when
/// the UI is gone or this process starts driving.
async fn follow_journal(
    store: crate::store::Store,
    tx: mpsc::Sender<Msg>,
    driving: Arc<std::sync::atomic::AtomicBool>,
) {
    use notify::Watcher;
    let (wake_tx, mut wake_rx) = mpsc::channel::<()>(1);
    let _ = std::fs::create_dir_all(store.releases_dir());
    let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if ev.is_ok() {
            let _ = wake_tx.try_send(());
        }
    })
    .and_then(|mut w| {
        w.watch(&store.dir, notify::RecursiveMode::Recursive)?;
        Ok(w)
    });
    let poll = match &watcher {
        Ok(_) => Duration::from_secs(10),
        Err(e) => {
            tracing::warn!("journal: no file-change notification ({e}); polling every second");
            Duration::from_secs(1)
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
        tokio::select! {
            Some(()) = wake_rx.recv() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
    drop(watcher);
}
