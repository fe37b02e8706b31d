//! Starting and running the background driver (`rolldeck __driver`), and
//! `rolldeck ps`.
//!
//! Detaching re-executes this binary (`current_exe`) as `rolldeck __driver
//! …` with stdin from `/dev/null` and stdout/stderr appended to
//! `driver.log`; the child's first act is `setsid()` (nix, no `unsafe`), so
//! it has no controlling terminal and no hang-up reaches it; a `SIGHUP`
//! sent to it by hand is logged and ignored. `SIGTERM`/`SIGINT` stop it as
//! they stop a headless run (running actions killed, the journal intact,
//! exit 130).

use super::{Background, Liveness, server};
use crate::config::Config;
use crate::exec::{AuditLog, Operator};
use crate::redact::Redactor;
use crate::release::engine::Issued;
use crate::runtime::{
    self, DriveMode, DriverEvent, DriverLock, OutputMode, RunOptions, StatePaths, Stop, exit,
};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

/// The hidden subcommand of the background driver.
pub const SUBCOMMAND: &str = "__driver";

/// How long `run --detach` waits for the background driver to journal its
/// release (the preflight already ran in the caller).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a new background driver waits for the driver lock (a cockpit
/// handing off lets go of it just before).
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// The arguments of `rolldeck __driver`.
#[derive(clap::Parser, Debug)]
#[command(name = "rolldeck __driver")]
struct Args {
    #[arg(long)]
    config: PathBuf,
    #[arg(long)]
    state_dir: Option<PathBuf>,
    #[arg(long)]
    plan: Option<String>,
    #[arg(long = "release-version")]
    version: Option<String>,
    #[arg(long)]
    yes: bool,
    #[arg(long)]
    resume: bool,
    #[arg(long)]
    started_by: Option<String>,
    /// A command (JSON, as journaled) applied first, e.g. the pause of
    /// `on_hangup = "pause"`.
    #[arg(long)]
    command: Option<String>,
}

/// What to start in the background.
#[derive(Debug, Clone, Default)]
pub struct Start {
    /// The plan (a new release).
    pub plan: Option<String>,
    /// The version (a new release).
    pub version: Option<String>,
    /// Approve approval steps (`--yes`).
    pub yes: bool,
    /// Resume a paused release (`--resume`).
    pub resume: bool,
    /// A command the driver applies first (checked by the engine like any
    /// other): `on_hangup`'s pause or rollback.
    pub command: Option<Issued>,
}

/// Starts a background driver for the release of `cfg` in the state dir
/// `paths` and waits (at most [`START_TIMEOUT`]) until it has journaled its
/// release. The caller has run the preflight and the protected-environment
/// confirmation ([`runtime::gate`]); the driver does not ask again.
///
/// # Errors
///
/// No config file to hand on; the driver could not be started, exited
/// before journaling (its log's last lines are in the error), or did not
/// start in time.
pub fn spawn(cfg: &Config, paths: &StatePaths, start: &Start) -> Result<Background, String> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let config = cfg
        .source_path
        .as_deref()
        .ok_or("the background driver needs a config file (this config has none)")?;
    let config = std::fs::canonicalize(config).map_err(|e| format!("{}: {e}", config.display()))?;
    let base = paths
        .dir
        .parent()
        .ok_or("the state dir has no parent")?
        .to_path_buf();
    let base = std::fs::canonicalize(&base).unwrap_or(base);
    std::fs::create_dir_all(&paths.dir).map_err(|e| format!("{}: {e}", paths.dir.display()))?;
    let log_path = super::log_path(paths);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o660)
        .open(&log_path)
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log2 = log
        .try_clone()
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg(SUBCOMMAND)
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(&base)
        .arg("--started-by")
        .arg(Operator::current().to_string());
    if let Some(p) = &start.plan {
        cmd.arg("--plan").arg(p);
    }
    if let Some(v) = &start.version {
        cmd.arg("--release-version").arg(v);
    }
    if start.yes {
        cmd.arg("--yes");
    }
    if start.resume {
        cmd.arg("--resume");
    }
    if let Some(c) = &start.command {
        cmd.arg("--command")
            .arg(serde_json::to_string(c).map_err(|e| e.to_string())?);
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the background driver: {e}"))?;
    let pid = child.id();
    let t0 = std::time::Instant::now();
    loop {
        if let Ok(Some(b)) = Background::read(paths)
            && b.pid == pid
        {
            // Reaped by a thread of ours while this process lives on (a
            // cockpit); after it exits, by init.
            std::thread::spawn(move || child.wait());
            return Ok(b);
        }
        match child.try_wait() {
            Ok(Some(status)) => {
                return Err(format!(
                    "the background driver exited ({status}) before starting the release; the end of its log {}:\n{}",
                    log_path.display(),
                    tail(&log_path, 12)
                ));
            }
            Ok(None) => {}
            Err(e) => return Err(format!("background driver pid {pid}: {e}")),
        }
        if t0.elapsed() > START_TIMEOUT {
            std::thread::spawn(move || child.wait());
            return Err(format!(
                "the background driver (pid {pid}) did not start the release within {}s; it may still be starting: see {} and `rolldeck ps`",
                START_TIMEOUT.as_secs(),
                log_path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The last `n` lines of a log file (or why it cannot be read).
pub fn tail(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(b) => {
            let text = String::from_utf8_lossy(&b);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..]
                .iter()
                .map(|l| format!("  {}", crate::exec::strip_control(l)))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Err(e) => format!("  (cannot read it: {e})"),
    }
}

/// `rolldeck run --detach`: checks that nobody drives, runs the preflight
/// and the protected-environment confirmation here (on this terminal),
/// then hands the release to a background driver and prints its release
/// id and pid (`--headless`: one JSON line `{"event":"detached",…}`).
/// Returns [`exit::DETACHED`] (7: started, not finished), or 1.
///
/// # Errors
///
/// The state dir or the journal cannot be read.
pub async fn detach_run(cfg: &Config, opts: &RunOptions) -> anyhow::Result<i32> {
    let paths = StatePaths::resolve(cfg, opts.state_dir.as_deref()).map_err(anyhow::Error::msg)?;
    // Taken and let go at once: says who drives, or that we may not write.
    match DriverLock::acquire(&paths.lock) {
        Ok(l) => drop(l),
        Err(e) => {
            eprintln!("rolldeck: {e}");
            if let Ok(Liveness::Running(b)) = super::liveness(&paths) {
                eprintln!(
                    "rolldeck: it is background driver pid {} (release {}): `rolldeck attach` controls it",
                    b.pid, b.release
                );
            }
            return Ok(exit::ERROR);
        }
    }
    let reporter = runtime::Reporter::new(opts.output, Redactor::new(cfg.secrets.clone()));
    if let Some(code) = runtime::gate(cfg, opts, &paths, &reporter).await? {
        return Ok(code);
    }
    let start = Start {
        plan: opts.plan.clone(),
        version: opts.version.clone(),
        yes: opts.yes,
        resume: opts.resume,
        command: None,
    };
    let b = match tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        let paths = paths.clone();
        move || spawn(&cfg, &paths, &start)
    })
    .await?
    {
        Ok(b) => b,
        Err(e) => {
            eprintln!("rolldeck: {e}");
            return Ok(exit::ERROR);
        }
    };
    match opts.output {
        OutputMode::Json => println!(
            "{}",
            serde_json::json!({"event": "detached", "release": b.release, "pid": b.pid,
                "socket": b.socket, "log": b.log, "ts": jiff::Timestamp::now()})
        ),
        OutputMode::Text => {
            println!("{}", b.release);
            eprintln!(
                "rolldeck: release {} is driven in the background by pid {} (log {}); `rolldeck attach` opens the cockpit on it, `rolldeck ps` lists background drivers",
                b.release,
                b.pid,
                b.log.display()
            );
        }
    }
    Ok(exit::DETACHED)
}

/// `rolldeck __driver …`: the background driver's `main` (see the module
/// docs). Returns the exit code ([`exit`]).
pub fn driver_main(args: &[OsString]) -> i32 {
    // A session of our own: no controlling terminal, so no hang-up.
    let sid = nix::unistd::setsid();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ROLLDECK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = match <Args as clap::Parser>::try_parse_from(
        std::iter::once(OsString::from(SUBCOMMAND)).chain(args.iter().cloned()),
    ) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return exit::ERROR;
        }
    };
    eprintln!(
        "=== {} rolldeck background driver pid {} started by {} ===",
        jiff::Timestamp::now(),
        std::process::id(),
        args.started_by.as_deref().unwrap_or("?")
    );
    if let Err(e) = sid {
        eprintln!("rolldeck driver: setsid: {e} (a hang-up of the starting terminal may reach us)");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rolldeck driver: cannot start the async runtime: {e}");
            return exit::ERROR;
        }
    };
    let code = match rt.block_on(run_driver(args)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rolldeck driver: {e:#}");
            exit::ERROR
        }
    };
    eprintln!(
        "=== {} rolldeck background driver pid {} exits {code} ===",
        jiff::Timestamp::now(),
        std::process::id()
    );
    code
}

async fn acquire_waiting(path: &Path) -> Result<DriverLock, runtime::LockError> {
    let t0 = std::time::Instant::now();
    loop {
        match DriverLock::acquire(path) {
            Err(runtime::LockError::Held(_) | runtime::LockError::HeldUnknown(_))
                if t0.elapsed() < LOCK_WAIT =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

async fn run_driver(a: Args) -> anyhow::Result<i32> {
    let cfg = crate::config::load(&a.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let paths = StatePaths::resolve(&cfg, a.state_dir.as_deref()).map_err(anyhow::Error::msg)?;
    let lock = acquire_waiting(&paths.lock).await?;
    let redactor = Redactor::new(cfg.secrets.clone());
    let socket = super::socket_path(&paths);
    let (listener, ino) = server::bind(&socket)?;
    // A killed driver's record goes; ours is written once the release is known.
    let _ = std::fs::remove_file(super::record_path(&paths));
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<Issued>(16);
    let (driver_tx, driver_rx) = watch::channel(None::<Background>);
    let (state_tx, state_rx) = watch::channel(None);
    let (stopped_tx, stopped_rx) = watch::channel(None::<String>);
    let (out_tx, _) = broadcast::channel(256);
    if let Some(c) = &a.command {
        let issued: Issued = serde_json::from_str(c)
            .map_err(|e| anyhow::anyhow!("--command: not a command: {e}"))?;
        tracing::warn!("applying first: {}", serde_json::to_string(&issued)?);
        // The hang-up choice (pause / rollback) must not be lost silently.
        cmd_tx
            .try_send(issued)
            .map_err(|e| anyhow::anyhow!("--command: could not queue it: {e}"))?;
    }
    let audit = Arc::new(AuditLog::open(&paths.audit)?);
    let shared = Arc::new(server::Shared::new(
        paths.clone(),
        driver_rx,
        state_rx,
        stopped_rx,
        cmd_tx,
        out_tx.clone(),
        audit,
        redactor.clone(),
    ));
    let server = tokio::spawn(server::serve(listener, shared));

    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let stop = async move {
        loop {
            tokio::select! {
                _ = sigint.recv() => return Stop::Signal("SIGINT"),
                _ = sigterm.recv() => return Stop::Signal("SIGTERM"),
                _ = sighup.recv() => tracing::warn!("SIGHUP ignored: a background driver has no terminal to lose (SIGTERM stops it)"),
            }
        }
    };
    let opts = RunOptions {
        plan: a.plan,
        version: a.version,
        yes: a.yes,
        resume: a.resume,
        force: false,
        exit_on_pause: false,
        state_dir: a.state_dir,
        output: OutputMode::Json,
    };
    let started_by = a
        .started_by
        .unwrap_or_else(|| Operator::current().to_string());
    let log = super::log_path(&paths);
    let print = |mut v: serde_json::Value| {
        redactor.redact_value(&mut v);
        println!("{v}");
    };
    let mut written = false;
    let mut stopped_why: Option<String> = None;
    let result = runtime::drive(
        &cfg,
        &opts,
        &paths,
        lock,
        &mut cmd_rx,
        DriveMode::default(),
        stop,
        &mut |e| match e {
            DriverEvent::State(r) => {
                if !written {
                    written = true;
                    let b = Background {
                        pid: std::process::id(),
                        release: r.id.clone(),
                        started_by: started_by.clone(),
                        since: jiff::Timestamp::now(),
                        socket: socket.clone(),
                        log: log.clone(),
                    };
                    if let Err(e) = b.write(&paths) {
                        tracing::error!("cannot write background.json: {e}");
                    }
                    driver_tx.send_replace(Some(b));
                }
                state_tx.send_replace(Some(*r));
            }
            DriverEvent::Notice(n) => {
                print(serde_json::to_value(&n).unwrap_or_else(|e| serde_json::json!({"error": e.to_string()})))
            }
            DriverEvent::Output(l) => {
                print(serde_json::json!({"event": "action_output", "action": l.action, "line": l.line}));
                // An error only means no client is attached to hear it.
                let _ = out_tx.send(l);
            }
            DriverEvent::Stopped {
                outcome, reason, ..
            } => {
                print(serde_json::json!({"event": "stopped", "outcome": outcome, "reason": reason}));
                stopped_why = Some(format!("{outcome}: {reason}"));
            }
        },
    )
    .await;
    let why = match (&result, stopped_why) {
        (_, Some(w)) => w,
        (Ok(code), None) => format!("the release ended (exit {code})"),
        (Err(e), None) => format!("driver error: {e:#}"),
    };
    stopped_tx.send_replace(Some(why));
    // Event streams read the last records and say `end`.
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.abort();
    server::unbind(&socket, ino);
    if let Ok(Some(b)) = Background::read(&paths)
        && b.pid == std::process::id()
    {
        let _ = std::fs::remove_file(super::record_path(&paths));
    }
    result
}

/// One background driver as `ps` and `status` show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    /// `service@environment` (the state dir's name, decoded).
    pub key: String,
    /// `running` or `gone` (killed without finishing).
    pub state: &'static str,
    /// Its record.
    pub driver: Background,
    /// The current step's name (from the journal).
    pub step: Option<String>,
    /// The release's phase in words.
    pub phase: Option<String>,
    /// The canary's traffic weight, percent.
    pub weight: Option<u8>,
    /// Operators attached now (from the driver; empty when gone).
    pub attached: Vec<String>,
    /// Why the driver could not be asked (it still may run).
    pub error: Option<String>,
}

/// The background driver of one state dir, if one was started there.
pub async fn row(paths: &StatePaths) -> Result<Option<Row>, String> {
    let (state, driver) = match super::liveness(paths)? {
        Liveness::None => return Ok(None),
        Liveness::Running(b) => ("running", b),
        Liveness::Gone(b) => ("gone", b),
    };
    let latest = paths.store.latest().map_err(|e| e.to_string())?;
    let latest = latest.filter(|r| r.id == driver.release);
    let (mut attached, mut error) = (Vec::new(), None);
    if state == "running" {
        match super::client::status(&driver.socket).await {
            Ok(v) => match v["attached"].as_array() {
                Some(a) => {
                    attached = a
                        .iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                }
                None => error = Some("its status reply has no `attached` list".to_string()),
            },
            Err(e) => error = Some(e),
        }
    }
    let key = paths
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let key = percent_encoding::percent_decode_str(&key)
        .decode_utf8_lossy()
        .into_owned();
    Ok(Some(Row {
        key,
        state,
        step: latest
            .as_ref()
            .and_then(|r| r.current_step().map(|s| s.name.clone())),
        phase: latest.as_ref().map(|r| phase_word(&r.phase)),
        weight: latest.as_ref().map(|r| r.weight),
        driver,
        attached,
        error,
    }))
}

fn phase_word(p: &crate::release::Phase) -> String {
    use crate::release::Phase;
    match p {
        Phase::Running => "running".into(),
        Phase::Paused { .. } => "paused".into(),
        Phase::WaitingApproval { .. } => "waiting for approval".into(),
        Phase::RollingBack { .. } => "rolling back".into(),
        Phase::Finished { outcome, .. } => outcome.as_str().replace('_', " "),
    }
}

/// `rolldeck ps`: the background drivers of every service+environment in
/// the state dir `paths` is in. Exit 0.
///
/// # Errors
///
/// A record that cannot be read.
pub async fn ps(paths: &StatePaths, json: bool) -> anyhow::Result<i32> {
    let mut rows = Vec::new();
    for dir in super::sibling_dirs(paths) {
        if let Some(r) = row(&super::paths_of_dir(&dir))
            .await
            .map_err(anyhow::Error::msg)?
        {
            rows.push(r);
        }
    }
    if json {
        println!("{}", serde_json::to_string(&rows)?);
        return Ok(exit::PROMOTED);
    }
    if rows.is_empty() {
        println!(
            "no background drivers under {}",
            paths.dir.parent().unwrap_or(&paths.dir).display()
        );
        return Ok(exit::PROMOTED);
    }
    println!(
        "{:<8} {:<8} {:<24} {:<34} {:<22} {:<20} ATTACHED",
        "PID", "STATE", "SERVICE@ENV", "RELEASE", "STEP", "SINCE"
    );
    for r in rows {
        let since = r
            .driver
            .since
            .to_zoned(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string();
        let step = match (&r.step, &r.phase, r.weight) {
            (Some(s), Some(p), Some(w)) => format!("{s} ({p}, {w}%)"),
            (None, Some(p), _) => p.clone(),
            _ => "-".into(),
        };
        let attached = match (&r.error, r.state) {
            (_, "gone") => "DRIVER GONE (killed?): `rolldeck attach` offers to resume".to_string(),
            (Some(e), _) => format!("? ({e})"),
            (None, _) if r.attached.is_empty() => "-".into(),
            (None, _) => r.attached.join(", "),
        };
        println!(
            "{:<8} {:<8} {:<24} {:<34} {:<22} {:<20} {attached}",
            r.driver.pid, r.state, r.key, r.driver.release, step, since
        );
    }
    Ok(exit::PROMOTED)
}

/// A background driver in one line for `rolldeck status`.
pub fn row_words(r: &Row) -> String {
    match r.state {
        "gone" => format!(
            "background driver: pid {} is GONE (killed or crashed, release {} unfinished in the journal); `rolldeck attach` offers to resume it with a new background driver",
            r.driver.pid, r.driver.release
        ),
        _ => format!(
            "background driver: pid {} since {} (started by {}), log {}; attached: {}",
            r.driver.pid,
            r.driver.since,
            r.driver.started_by,
            r.driver.log.display(),
            match &r.error {
                Some(e) => format!("? ({e})"),
                None if r.attached.is_empty() => "nobody".into(),
                None => r.attached.join(", "),
            }
        ),
    }
}
