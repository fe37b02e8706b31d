//! The runtime around the pure engine: the driver lock, the journal, the
//! event loop that performs the engine's effects (actions, measurements,
//! probes) as tokio tasks, signals, and the headless output.
//!
//! Exit codes ([`exit`]): 0 promoted, 1 error (also: preflight refused,
//! protected environment not confirmed), 2 rollback failed, 3 rolled back,
//! 4 paused for a human (only with `--exit-on-pause`), 5 aborted, 6 left
//! unfinished (quit in the cockpit), 130 interrupted by a signal. Every
//! code but 0 means "not promoted".

use crate::config::Config;
use crate::exec::{ActionRequest, AuditLog, Executor, Operator, OutputLine, strip_control};
use crate::redact::Redactor;
use crate::release::engine::{
    Command, Effect, Event, Issued, Notice, Outcome, Phase, ProbeKind, Release,
};
use crate::release::journal::{self, Record};
use crate::release::plan::{Plan, Trigger};
use crate::sources::{SourceStatus, Sources};
use crate::store::{Store, encode_name};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// Process exit codes.
pub mod exit {
    /// Every step passed.
    pub const PROMOTED: i32 = 0;
    /// Config error, lock held, preflight failure, I/O error.
    pub const ERROR: i32 = 1;
    /// The rollback itself failed.
    pub const ROLLBACK_FAILED: i32 = 2;
    /// Rolled back.
    pub const ROLLED_BACK: i32 = 3;
    /// Paused for a human (approval, inconclusive limit, interrupted step)
    /// and left unwatched: only with `--exit-on-pause`; without it a
    /// headless run keeps watching the rollback triggers while it waits.
    pub const PAUSED: i32 = 4;
    /// Aborted without rollback.
    pub const ABORTED: i32 = 5;
    /// Left unfinished: the operator quit the cockpit while the release was
    /// running, paused or waiting; the canary stays where it was with
    /// nobody watching, the journal is intact and `rolldeck run` resumes.
    pub const LEFT_UNFINISHED: i32 = 6;
    /// Interrupted by SIGINT/SIGTERM/SIGHUP (headless or cockpit) while the
    /// release was unfinished; the journal is intact, `rolldeck run` resumes.
    pub const INTERRUPTED: i32 = 130;
    /// Handed to a background driver (`rolldeck run --detach`): the
    /// release goes on without this process and is not finished yet;
    /// `rolldeck status` or `rolldeck attach` follow it.
    pub const DETACHED: i32 = 7;
}

/// The exit code for an outcome.
pub fn exit_code(o: Outcome) -> i32 {
    match o {
        Outcome::Promoted => exit::PROMOTED,
        Outcome::RolledBack => exit::ROLLED_BACK,
        Outcome::Aborted => exit::ABORTED,
        Outcome::Failed => exit::ROLLBACK_FAILED,
    }
}

/// Where one service+environment keeps its state.
#[derive(Debug, Clone, PartialEq)]
pub struct StatePaths {
    /// `STATE_DIR/<service>@<environment>/`, both names percent-encoded
    /// ([`encode_name`]): `pay/api` and `pay_api` get different directories.
    pub dir: PathBuf,
    /// The journal: `releases/<release-id>.jsonl` and the `current` pointer.
    pub store: Store,
    /// `audit.jsonl`
    pub audit: PathBuf,
    /// `driver.lock`
    pub lock: PathBuf,
}

impl StatePaths {
    /// Resolves the state directory: `explicit` (`--state-dir`), then the
    /// config's `state_dir`, then the user state dir (`directories`).
    /// Errors when none is available (no home directory).
    pub fn resolve(cfg: &Config, explicit: Option<&Path>) -> Result<Self, String> {
        let base = explicit
            .map(Path::to_path_buf)
            .or_else(|| cfg.state_dir.clone())
            .or_else(|| default_state_root(cfg))
            .ok_or(
                "no state directory: there is no home directory; pass --state-dir or set state_dir",
            )?;
        Ok(Self::in_base(&base, &cfg.service, &cfg.environment.name))
    }

    /// The paths of `service` in `environment` under state directory `base`.
    pub fn in_base(base: &Path, service: &str, environment: &str) -> Self {
        let dir = base.join(format!(
            "{}@{}",
            encode_name(service),
            encode_name(environment)
        ));
        Self {
            store: Store::new(&dir),
            audit: dir.join("audit.jsonl"),
            lock: dir.join("driver.lock"),
            dir,
        }
    }
}

/// The system-wide state directory, used by default when it exists (an
/// administrator creates it group-writable, e.g. `install -d -m 2775 -g
/// rolldeck /var/lib/rolldeck`).
pub const SYSTEM_STATE_DIR: &str = "/var/lib/rolldeck";

/// The default state directory root, so that one service+environment has
/// one driver on a host whoever runs rolldeck: [`SYSTEM_STATE_DIR`] when it
/// exists; else `.rolldeck/` beside the config file when it exists or can
/// be created there (every user of that config file shares it); else the
/// user's own state dir (`~/.local/state/rolldeck`), which only keeps one
/// user's drivers apart (see [`StatePaths::private_warning`]). A shared dir
/// that exists is used even when this user may not write it: the driver
/// lock then still says who drives, and driving fails with the permission
/// error instead of silently using a private dir.
pub fn default_state_root(cfg: &Config) -> Option<PathBuf> {
    let writable =
        |p: &Path| p.is_dir() && nix::unistd::access(p, nix::unistd::AccessFlags::W_OK).is_ok();
    let system = Path::new(SYSTEM_STATE_DIR);
    if system.is_dir() {
        return Some(system.to_path_buf());
    }
    if let Some(dir) = cfg.source_path.as_deref().and_then(Path::parent).map(|d| {
        if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        }
    }) {
        let beside = dir.join(".rolldeck");
        if beside.is_dir() || (!beside.exists() && writable(dir)) {
            return Some(beside);
        }
    }
    crate::config::project_dirs().map(|d| {
        d.state_dir()
            .unwrap_or_else(|| d.data_local_dir())
            .to_path_buf()
    })
}

impl StatePaths {
    /// For a protected environment: a warning when the state directory (or
    /// the nearest existing parent) is private to one user — another user
    /// on this host would get a state dir of their own and could drive the
    /// same service+environment at the same time. `None` when shared
    /// (group- or world-writable) or not protected.
    pub fn private_warning(&self, protected: bool) -> Option<String> {
        use std::os::unix::fs::MetadataExt as _;
        if !protected {
            return None;
        }
        let meta = self
            .dir
            .ancestors()
            .find_map(|d| std::fs::metadata(d).ok())?;
        (meta.mode() & 0o022 == 0).then(|| {
            format!(
                "state dir {} is private to one user: another user on this host gets their own and can drive this protected environment at the same time; set state_dir to a shared group-writable directory (e.g. {SYSTEM_STATE_DIR})",
                self.dir.display()
            )
        })
    }
}

/// Creates `dir` (and missing parents) shared with the group: new
/// directories get mode `2775` (setgid, so files inherit the group).
fn create_shared_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    std::fs::create_dir_all(dir)?;
    for d in missing {
        let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o2775));
    }
    Ok(())
}

/// Who holds the driver lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    /// User name.
    pub user: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// Since when (RFC 3339 UTC).
    pub since: Timestamp,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}@{} (pid {}) since {}",
            self.user, self.host, self.pid, self.since
        )
    }
}

/// The driver lock: an exclusive advisory lock (`flock`) on `driver.lock`,
/// released when the process ends, even by `kill -9`.
#[derive(Debug)]
pub struct DriverLock {
    _file: File,
    /// Our holder record.
    pub holder: Holder,
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process drives this service+environment.
    #[error("another rolldeck drives this release: {0}")]
    Held(Holder),
    /// Another process holds the lock and its record is unreadable.
    #[error("another rolldeck drives this release (lock {0} held; holder unknown)")]
    HeldUnknown(PathBuf),
    /// I/O error.
    #[error("driver lock {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl DriverLock {
    /// Takes the lock without waiting.
    pub fn acquire(path: &Path) -> Result<Self, LockError> {
        let io = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(d) = path.parent() {
            create_shared_dir(d).map_err(io)?;
        }
        let existed = path.exists();
        let mut file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
        {
            Ok(f) => f,
            // Another user's lock file we may not write: still tell whether
            // (and by whom) it is held.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                let f = File::open(path).map_err(|_| io(e))?;
                return Err(match f.try_lock() {
                    Err(std::fs::TryLockError::WouldBlock) => match Self::holder(path) {
                        Some(h) => LockError::Held(h),
                        None => LockError::HeldUnknown(path.to_path_buf()),
                    },
                    _ => LockError::Io {
                        path: path.to_path_buf(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::PermissionDenied,
                            "cannot write the lock file (ask for group write access to the state dir)",
                        ),
                    },
                });
            }
            Err(e) => return Err(io(e)),
        };
        if !existed {
            use std::os::unix::fs::PermissionsExt as _;
            let _ = file.set_permissions(std::fs::Permissions::from_mode(0o664));
        }
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(match Self::holder(path) {
                    Some(h) => LockError::Held(h),
                    None => LockError::HeldUnknown(path.to_path_buf()),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let op = Operator::current();
        let holder = Holder {
            user: op.user,
            host: op.host,
            pid: std::process::id(),
            since: Timestamp::now(),
        };
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(
            serde_json::to_string(&holder)
                .unwrap_or_default()
                .as_bytes(),
        )
        .map_err(io)?;
        file.sync_data().map_err(io)?;
        Ok(Self {
            _file: file,
            holder,
        })
    }

    /// Reads the holder record of a lock file, whether or not it is held.
    pub fn holder(path: &Path) -> Option<Holder> {
        let mut s = String::new();
        File::open(path).ok()?.read_to_string(&mut s).ok()?;
        serde_json::from_str(&s).ok()
    }

    /// Whether some process holds the lock now (tries and releases it).
    pub fn is_held(path: &Path) -> bool {
        match File::open(path) {
            Ok(f) => match f.try_lock_shared() {
                Ok(()) => {
                    let _ = f.unlock();
                    false
                }
                Err(_) => true,
            },
            Err(_) => false,
        }
    }
}

/// How events are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// One JSON object per line: `ts`, `event`, fields.
    Json,
    /// Readable text lines.
    Text,
}

/// Options of `rolldeck run` (and the demo).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Plan name (`--plan`).
    pub plan: Option<String>,
    /// Version override (`--version`).
    pub version: Option<String>,
    /// Approvals pass (`--yes`); in a protected environment it also
    /// confirms starting (or `--resume`-ing) without typing its name.
    pub yes: bool,
    /// Start even when the preflight finds a source the plan needs down
    /// (`--force`).
    pub force: bool,
    /// Headless: exit 4 as soon as the release waits for a human, leaving
    /// it unwatched (`--exit-on-pause`); by default the run keeps watching
    /// the rollback triggers while it waits.
    pub exit_on_pause: bool,
    /// Resume a paused release (`--resume`).
    pub resume: bool,
    /// State dir override (`--state-dir`).
    pub state_dir: Option<PathBuf>,
    /// Output.
    pub output: OutputMode,
}

/// Writes headless output lines (JSON or text) to stdout, redacted.
pub struct Reporter {
    mode: OutputMode,
    redactor: Redactor,
    release: String,
}

impl Reporter {
    /// A reporter in `mode`, masking with `redactor`.
    pub fn new(mode: OutputMode, redactor: Redactor) -> Self {
        Self {
            mode,
            redactor,
            release: String::new(),
        }
    }

    fn emit_value(&self, mut v: serde_json::Value) {
        let now = Timestamp::now();
        let ts = now.to_string();
        let line = match self.mode {
            OutputMode::Json => {
                if let Some(o) = v.as_object_mut() {
                    let mut m = serde_json::Map::new();
                    m.insert("ts".into(), ts.into());
                    m.insert("release".into(), self.release.clone().into());
                    m.extend(std::mem::take(o));
                    *o = m;
                }
                // Masked field by field: a secret such as `true` or `5`
                // cannot break the JSON line.
                self.redactor.redact_value(&mut v);
                v.to_string()
            }
            // For people: local time to the second, with the zone.
            OutputMode::Text => {
                let local = now
                    .to_zoned(jiff::tz::TimeZone::system())
                    .strftime("%H:%M:%S %Z")
                    .to_string();
                self.redactor.redact(&format!("{local} {}", text_line(&v)))
            }
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// Reports an engine notice.
    pub fn notice(&self, n: &Notice) {
        self.emit_value(serde_json::to_value(n).unwrap_or_default());
    }

    /// Reports one line of action output.
    pub fn output(&self, l: &OutputLine) {
        let mut v = serde_json::to_value(l).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("event".into(), "action_output".into());
        }
        self.emit_value(v);
    }

    /// Reports the preflight of plan `plan`: every source it needs and
    /// whether it answered (`{"event":"preflight","ok":…,"sources":[…]}`).
    pub fn preflight(&self, plan: &str, statuses: &[SourceStatus]) {
        self.emit_value(serde_json::json!({
            "event": "preflight", "plan": plan,
            "ok": statuses.iter().all(|s| s.ok), "sources": statuses,
        }));
    }

    /// Reports that the release waits for a human while this process keeps
    /// watching it (`{"event":"waiting","watching":[…],"hint":…}`).
    pub fn waiting(&self, r: &Release) {
        self.emit_value(serde_json::json!({
            "event": "waiting",
            "weight": r.weight,
            "watching": trigger_names(r),
            "hint": format!(
                "waiting for a human; this process (pid {}) keeps watching the rollback triggers. \
                 To take over, stop it (SIGTERM or Ctrl-C) and run `rolldeck run --resume` or open the cockpit",
                std::process::id()
            ),
        }));
    }

    /// Reports a paused/interrupted end of this process's run.
    pub fn finished(&self, outcome: &str, reason: &str, duration_s: f64) {
        self.emit_value(serde_json::json!({
            "event": "release_finished", "outcome": outcome, "reason": reason, "duration_s": duration_s
        }));
    }
}

fn text_line(v: &serde_json::Value) -> String {
    let g = |k: &str| {
        v.get(k)
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| x.to_string())
            })
            .unwrap_or_default()
    };
    match g("event").as_str() {
        "release_started" => format!(
            "release {} started: plan {} ({} steps)",
            g("release"),
            g("plan"),
            g("steps")
        ),
        "step_started" => format!(
            "{}step {} {} started",
            if v["rollback"] == true {
                "rollback "
            } else {
                ""
            },
            g("step"),
            g("name")
        ),
        "step_finished" => format!(
            "{}step {} {} {}: {}",
            if v["rollback"] == true {
                "rollback "
            } else {
                ""
            },
            g("step"),
            g("name"),
            g("status"),
            g("detail")
        ),
        "verdict" => {
            // A `query` trigger's synthetic check (`rollback_when[0]`) is
            // named as people wrote it: the first rollback trigger.
            let check = g("check");
            let label = match check
                .strip_prefix("rollback_when[")
                .and_then(|i| i.strip_suffix(']'))
                .and_then(|i| i.parse::<usize>().ok())
            {
                Some(i) => format!("rollback trigger {}", i + 1),
                None => check,
            };
            format!("[{label}] {}", g("reason"))
        }
        "health" => format!(
            "health {}: {} ({})",
            g("target"),
            if v["ok"] == true { "ok" } else { "FAILING" },
            g("detail")
        ),
        "traffic" => format!("traffic weight now {}% canary", g("weight")),
        "approval_required" => format!("approval required: {}", g("message")),
        "paused" => format!("PAUSED: {}", g("reason")),
        "preflight" => {
            let list = v["sources"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|s| {
                            format!(
                                "{} {}",
                                s["source"].as_str().unwrap_or("?"),
                                if s["ok"] == true { "ok" } else { "DOWN" }
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            if list.is_empty() {
                format!("preflight of plan {}: it needs no source", g("plan"))
            } else {
                format!("preflight of plan {}: {}", g("plan"), list)
            }
        }
        "waiting" => g("hint"),
        "resumed" => format!("resumed by {}", g("by")),
        // `ROLLBACK by alice: …`, not `ROLLBACK: rollback by alice: …`.
        "rollback_started" => match g("reason").strip_prefix("rollback ") {
            Some(rest) => format!("ROLLBACK {rest}"),
            None => format!("ROLLBACK: {}", g("reason")),
        },
        "release_finished" => format!(
            "release finished: {}",
            crate::units::led(&g("outcome").replace('_', " "), &g("reason"))
        ),
        "action_output" => format!("  {} | {}", g("action"), g("line")),
        "manual_action" => format!(
            "manual action {}: {} ({})",
            g("action"),
            if v["ok"] == true { "ok" } else { "FAILED" },
            g("detail")
        ),
        other => format!("{other} {v}"),
    }
}

/// The display names of a release's rollback triggers.
fn trigger_names(r: &Release) -> Vec<String> {
    r.plan
        .triggers
        .iter()
        .map(|t| match t {
            Trigger::Check { name, .. } | Trigger::Health { name, .. } => name.clone(),
        })
        .collect()
}

/// What nobody watches once this process stops driving `r`, in words with
/// the actual numbers: "canary stays at 25 % with nobody watching (rollback
/// triggers not evaluated: …); `rolldeck run` resumes". Shown by the
/// cockpit's quit confirmation and printed when a run leaves it unfinished.
pub fn left_unwatched(r: &Release) -> String {
    let triggers = trigger_names(r);
    format!(
        "canary stays at {} % with nobody watching{}; `rolldeck run` resumes",
        r.weight,
        if triggers.is_empty() {
            String::new()
        } else {
            format!(
                " (rollback triggers not evaluated: {})",
                triggers.join(", ")
            )
        }
    )
}

/// `SERVICE-YYYYmmdd-HHMMSS-PID` (pid in hex, low 16 bits); a second
/// release this process starts within the same second (`:start` right
/// after one finished) gets `-2`, `-3`, … so its journal is its own.
fn new_release_id(service: &str) -> String {
    static LAST: std::sync::Mutex<Option<(String, u32)>> = std::sync::Mutex::new(None);
    let now = Timestamp::now();
    let stamp = now.strftime("%Y%m%d-%H%M%S").to_string();
    let base = format!("{service}-{stamp}-{:04x}", std::process::id() & 0xffff);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    let n = match last.as_ref() {
        Some((prev, n)) if *prev == base => n + 1,
        _ => 1,
    };
    *last = Some((base.clone(), n));
    if n == 1 { base } else { format!("{base}-{n}") }
}

/// What the driver reports while it runs a release.
#[derive(Debug, Clone)]
pub enum DriverEvent {
    /// An engine notice (step, verdict, traffic, …).
    Notice(Notice),
    /// A line of action output.
    Output(OutputLine),
    /// The release state after a change.
    State(Box<Release>),
    /// This process stops driving an unfinished release: paused for a
    /// human (headless `--exit-on-pause`), interrupted by a signal, or left
    /// by a quit in the cockpit (or the cockpit's driver crashed).
    Stopped {
        /// `paused`, `interrupted`, `left_unfinished` (or `crashed`).
        outcome: String,
        /// Why.
        reason: String,
        /// Seconds since the release started.
        duration_s: f64,
    },
}

/// How [`drive`] behaves.
#[derive(Debug, Clone, Default)]
pub struct DriveMode {
    /// Return (exit 4, saying what is left unwatched) as soon as the
    /// release waits for a human (headless `--exit-on-pause`); otherwise
    /// keep driving it: triggers are still evaluated and may start the
    /// rollback while it waits for commands or a signal.
    pub exit_when_waiting: bool,
}

/// Why a driver stops before its release ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A signal (`SIGINT`, `SIGTERM`, `SIGHUP`): exit 130.
    Signal(&'static str),
    /// The operator quit the cockpit: exit 6 ([`exit::LEFT_UNFINISHED`]).
    Quit,
}

impl Stop {
    /// The exit code of a driver stopped this way with its release unfinished.
    pub fn exit_code(self) -> i32 {
        match self {
            Stop::Signal(_) => exit::INTERRUPTED,
            Stop::Quit => exit::LEFT_UNFINISHED,
        }
    }
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Signal(s) => f.write_str(s),
            Stop::Quit => f.write_str("quit"),
        }
    }
}

/// Asks for the environment's name on the terminal (stdin, prompt on
/// stderr) before `what` in a protected environment. Errors, saying why,
/// when stdin is not a terminal (pass `--yes`) or the name does not match.
fn confirm_on_terminal(env: &str, what: &str) -> Result<(), String> {
    use std::io::{BufRead, IsTerminal};
    if !std::io::stdin().is_terminal() {
        return Err(format!(
            "refusing to {what} in protected environment `{env}`: no terminal to type its name on; \
             run it from a terminal, or pass --yes to confirm non-interactively (CI)"
        ));
    }
    eprint!("{what} in protected environment `{env}`: type `{env}` to confirm: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("not confirmed: cannot read the terminal: {e}"))?;
    if line.trim_end_matches(['\r', '\n']) == env {
        Ok(())
    } else {
        Err(format!(
            "not confirmed: typed `{}`, not `{env}`; nothing was changed",
            strip_control(line.trim_end())
        ))
    }
}

/// Before [`drive`] starts a new release: the preflight (every source the
/// plan needs must answer, unless `--force`) and, in a protected
/// environment, the environment name typed on the terminal (unless
/// `--yes`); resuming a paused release (`--resume`) there asks too.
/// Returns the exit code to stop with (1, after saying why on stderr), or
/// `None` to go on. Resuming an interrupted release asks nothing: driving
/// it again is the safe direction.
pub async fn gate(
    cfg: &Config,
    opts: &RunOptions,
    paths: &StatePaths,
    reporter: &Reporter,
) -> anyhow::Result<Option<i32>> {
    let latest = paths.store.latest()?;
    let what = match latest.as_ref().filter(|r| !r.is_finished()) {
        Some(r) if opts.resume && matches!(r.phase, Phase::Paused { .. }) => {
            "resume the paused release"
        }
        Some(_) => return Ok(None),
        None => {
            let plan = Plan::from_config(cfg, opts.plan.as_deref()).map_err(anyhow::Error::msg)?;
            let statuses = crate::preflight::probe(cfg, Some(&plan)).await;
            reporter.preflight(&plan.name, &statuses);
            let down = crate::preflight::down_lines(&statuses);
            if !down.is_empty() {
                let list: String = down
                    .iter()
                    .map(|l| format!("\n  {}", reporter.redactor.redact(&strip_control(l))))
                    .collect();
                let n = down.len();
                let are = if n == 1 {
                    "source it needs is"
                } else {
                    "sources it needs are"
                };
                if !opts.force {
                    eprintln!(
                        "rolldeck: refusing to start plan `{}`: {n} {are} down; nothing was changed \
                         (--force starts anyway):{list}",
                        plan.name
                    );
                    return Ok(Some(exit::ERROR));
                }
                eprintln!(
                    "rolldeck: --force: starting plan `{}` although {n} {are} down:{list}",
                    plan.name
                );
            }
            "start a release"
        }
    };
    if cfg.environment.protected && !opts.yes {
        let env = cfg.environment.name.clone();
        let asked = tokio::task::spawn_blocking(move || confirm_on_terminal(&env, what)).await?;
        if let Err(e) = asked {
            eprintln!("rolldeck: {e}");
            return Ok(Some(exit::ERROR));
        }
    }
    Ok(None)
}

/// Runs (or resumes) a release headless; returns the exit code.
pub async fn run(cfg: &Config, opts: &RunOptions) -> anyhow::Result<i32> {
    let paths = StatePaths::resolve(cfg, opts.state_dir.as_deref()).map_err(anyhow::Error::msg)?;
    let lock = match DriverLock::acquire(&paths.lock) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("rolldeck: {e}");
            return Ok(exit::ERROR);
        }
    };
    let redactor = Redactor::new(cfg.secrets.clone());
    let mut reporter = Reporter {
        mode: opts.output,
        redactor,
        release: String::new(),
    };
    if let Some(code) = gate(cfg, opts, &paths, &reporter).await? {
        return Ok(code);
    }
    let (_keep, mut commands) = mpsc::channel::<Issued>(1);
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let stop = async move {
        Stop::Signal(tokio::select! {
            _ = sigint.recv() => "SIGINT",
            _ = sigterm.recv() => "SIGTERM",
            _ = sighup.recv() => "SIGHUP",
        })
    };
    // Whether the current wait for a human was announced.
    let mut announced = false;
    let keep_watching = !opts.exit_on_pause;
    drive(
        cfg,
        opts,
        &paths,
        lock,
        &mut commands,
        DriveMode {
            exit_when_waiting: opts.exit_on_pause,
        },
        stop,
        &mut |e| match e {
            DriverEvent::Notice(n) => {
                if let Notice::ReleaseStarted { release, .. } = &n {
                    reporter.release = release.clone();
                }
                reporter.notice(&n)
            }
            DriverEvent::Output(l) => reporter.output(&l),
            DriverEvent::State(r) => {
                if reporter.release.is_empty() {
                    reporter.release = r.id.clone();
                }
                // Say once per wait that this process keeps watching.
                let waits = r.waits_for_human();
                if keep_watching && waits && !announced {
                    reporter.waiting(&r);
                }
                announced = waits;
            }
            DriverEvent::Stopped {
                outcome,
                reason,
                duration_s,
            } => reporter.finished(&outcome, &reason, duration_s),
        },
    )
    .await
}

/// Drives the release of `cfg` (resuming the unfinished one in the journal,
/// else starting `opts.plan`) until it finishes, waits for a human (with
/// `mode.exit_when_waiting`: exit 4), or `stop` resolves (running actions
/// are killed; exit 130 for a signal, 6 for a quit: [`Stop::exit_code`]).
/// While the release waits for a human the loop goes on: rollback triggers
/// are still evaluated and may start the rollback. Operator commands arrive on `commands`;
/// everything that happens goes to `sink`. Holding `lock` is the caller's
/// proof of being the driver. Returns the exit code ([`exit`]).
#[allow(clippy::too_many_arguments)]
pub async fn drive(
    cfg: &Config,
    opts: &RunOptions,
    paths: &StatePaths,
    lock: DriverLock,
    commands: &mut mpsc::Receiver<Issued>,
    mode: DriveMode,
    stop: impl std::future::Future<Output = Stop> + Send,
    sink: &mut (dyn FnMut(DriverEvent) + Send),
) -> anyhow::Result<i32> {
    let _lock = lock;
    let redactor = Redactor::new(cfg.secrets.clone());
    let latest = paths.store.latest()?;
    let mut journal = paths.store.open(redactor.clone());
    let audit = AuditLog::open(&paths.audit)?;
    // An action started by a driver that was killed may still run: never
    // start anything (nor run it again) until it has ended.
    match audit.settle_unfinished()? {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            "{n} action run(s) of an earlier rolldeck ended without a result; audited as outcome unknown"
        ),
        Err(live) => anyhow::bail!("{live}"),
    }
    let operator = Operator::current();
    let executor = Executor::new(audit, operator.clone(), redactor.clone());
    let sources = Sources::new(cfg);
    let scrapers = sources.spawn_scrapers();

    let now = Timestamp::now();
    let (mut release, first_event, first_fx) = match latest.filter(|r| !r.is_finished()) {
        Some(mut r) => {
            journal::check_owner(&r, &cfg.service, &cfg.environment.name)
                .map_err(anyhow::Error::msg)?;
            let ev = Event::Resumed;
            let fx = r.apply(&ev, now);
            (r, ev, fx)
        }
        None => {
            let plan = Plan::from_config(cfg, opts.plan.as_deref()).map_err(anyhow::Error::msg)?;
            let ev = Event::Start {
                id: new_release_id(&cfg.service),
                service: cfg.service.clone(),
                environment: cfg.environment.name.clone(),
                version: opts.version.clone().or_else(|| cfg.version.clone()),
                plan: Box::new(plan),
            };
            let (r, fx) = Release::start(&ev, now).expect("start event");
            (r, ev, fx)
        }
    };
    journal.append(&Record {
        ts: now,
        release: release.id.clone(),
        event: first_event,
    })?;

    let (tx, mut rx) = mpsc::channel::<Event>(256);
    let (out_tx, mut out_rx) = mpsc::channel::<OutputLine>(1024);
    let mut running: HashMap<u64, RunningAction> = HashMap::new();
    let ctx = EffectCtx {
        cfg,
        executor: &executor,
        sources: &sources,
        tx: &tx,
        out_tx: &out_tx,
        operator: &operator,
        release: release.id.clone(),
        state_dir: &paths.dir,
    };
    let mut pending_fx = first_fx;
    if opts.resume && matches!(release.phase, Phase::Paused { .. }) {
        let ev = Event::Command(Issued {
            command: Command::Resume,
            operator: operator.to_string(),
            reason: Some("rolldeck run --resume".into()),
        });
        let fx = release.apply(&ev, now);
        journal.append(&Record {
            ts: now,
            release: release.id.clone(),
            event: ev,
        })?;
        pending_fx.extend(fx);
    }
    sink(DriverEvent::State(Box::new(release.clone())));
    tokio::pin!(stop);
    let mut commands_open = true;

    let code = loop {
        for e in pending_fx.drain(..) {
            ctx.perform(e, sink, &mut running);
        }
        if let Phase::Finished { outcome, .. } = release.phase {
            // Output of actions that finished just before.
            while let Ok(l) = out_rx.try_recv() {
                sink(DriverEvent::Output(l));
            }
            break exit_code(outcome);
        }
        let auto = if opts.yes
            && matches!(release.phase, Phase::WaitingApproval { .. })
            && release.waits_for_human()
        {
            Some(Event::Command(Issued {
                command: Command::Approve,
                operator: operator.to_string(),
                reason: Some("--yes".into()),
            }))
        } else {
            None
        };
        // A checklist step waits for people like an approval; --yes never passes it.
        let checklist = crate::runbook::checklist::waiting(&release);
        if auto.is_none()
            && (release.waits_for_human() || checklist.is_some())
            && mode.exit_when_waiting
        {
            let reason = match (&release.phase, &checklist) {
                (Phase::Paused { reason, .. }, _) => reason.clone(),
                (Phase::WaitingApproval { message }, _) => {
                    format!("waiting for approval: {message} (pass --yes to approve headless)")
                }
                (_, Some(file)) => format!(
                    "waiting for checklist {file}: tick its checks and pass its blocks (rolldeck runbook FILE --tick/--run, or the cockpit); --yes never ticks a check"
                ),
                _ => String::new(),
            };
            sink(DriverEvent::Stopped {
                outcome: "paused".into(),
                reason: format!(
                    "{reason}; --exit-on-pause: left unwatched: {}",
                    left_unwatched(&release)
                ),
                duration_s: secs(release.started_at, Timestamp::now()),
            });
            break exit::PAUSED;
        }
        let ev = if let Some(ev) = auto {
            ev
        } else {
            let now = Timestamp::now();
            let sleep_for = release
                .next_wakeup()
                .map(|t| {
                    Duration::from_millis(
                        (t.as_millisecond() - now.as_millisecond()).clamp(0, 1000) as u64,
                    )
                })
                .unwrap_or(Duration::from_secs(1));
            tokio::select! {
                Some(ev) = rx.recv() => ev,
                Some(line) = out_rx.recv() => { sink(DriverEvent::Output(line)); continue; }
                c = commands.recv(), if commands_open => match c {
                    Some(issued) => Event::Command(issued),
                    None => { commands_open = false; continue; }
                },
                _ = tokio::time::sleep(sleep_for) => Event::Tick,
                why = &mut stop => {
                    // Cancel the actions and wait until their process groups are gone.
                    stop_actions(running.drain().map(|(_, r)| r).collect()).await;
                    sink(DriverEvent::Stopped {
                        outcome: match why {
                            Stop::Signal(_) => "interrupted",
                            Stop::Quit => "left_unfinished",
                        }.into(),
                        reason: format!(
                            "{why}: stopped driving; the journal is intact; {}",
                            left_unwatched(&release)
                        ),
                        duration_s: secs(release.started_at, Timestamp::now()),
                    });
                    break why.exit_code();
                }
            }
        };
        if let Event::ActionFinished { run, .. } = &ev {
            running.remove(run);
        }
        let now = Timestamp::now();
        let before = release.clone();
        let fx = release.apply(&ev, now);
        let changed = !before.same_state(&release);
        if changed || !matches!(ev, Event::Tick) {
            journal.append(&Record {
                ts: now,
                release: release.id.clone(),
                event: ev,
            })?;
        }
        if changed {
            sink(DriverEvent::State(Box::new(release.clone())));
        }
        pending_fx = fx;
    };
    sink(DriverEvent::State(Box::new(release.clone())));
    for h in scrapers {
        h.abort();
    }
    Ok(code)
}

/// An action task and the way to cancel it.
struct RunningAction {
    handle: tokio::task::JoinHandle<()>,
    cancel: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The audited actions of a `migration` step on `source`: `upgrade`, or
/// `upgrade`, `downgrade`, `upgrade` for a round trip (each named
/// `migration SOURCE upgrade|downgrade` in the audit log, with the source's
/// `run_timeout` and the source's `database_url` as `DATABASE_URL`).
/// Errors: no such source, no `upgrade`/`downgrade` argv.
fn migration_parts(
    cfg: &Config,
    source: &str,
    round_trip: bool,
) -> Result<Vec<(String, crate::exec::ActionSpec)>, String> {
    let src = cfg
        .sources
        .migrations
        .iter()
        .find(|m| m.name == source)
        .ok_or_else(|| format!("no migration source named `{source}`"))?;
    // The command gets the source's URL as DATABASE_URL (a secret: the
    // redactor masks it in every text; `{` doubled so it stays literal).
    let env: std::collections::BTreeMap<String, String> = src
        .database_url
        .iter()
        .map(|u| ("DATABASE_URL".to_string(), u.replace('{', "{{")))
        .collect();
    let spec = |argv: &Option<Vec<String>>, what: &str| {
        argv.clone()
            .map(|argv| crate::exec::ActionSpec {
                argv: Some(argv),
                env: env.clone(),
                timeout: src.run_timeout,
                description: Some(format!("{what} migrations of {source}")),
                ..Default::default()
            })
            .ok_or_else(|| format!("migration source `{source}` has no `{what}` command"))
    };
    let up = (
        format!("migration {source} upgrade"),
        spec(&src.upgrade, "upgrade")?,
    );
    if !round_trip {
        return Ok(vec![up]);
    }
    let down = (
        format!("migration {source} downgrade"),
        spec(&src.downgrade, "downgrade")?,
    );
    Ok(vec![up.clone(), down, up])
}

/// Cancels every action and waits (bounded) until each has stopped its
/// process group; a task still running after that is aborted (which kills
/// its group with `SIGKILL`).
async fn stop_actions(list: Vec<RunningAction>) {
    let limit = crate::exec::CANCEL_GRACE + Duration::from_secs(6);
    for mut r in list {
        if let Some(c) = r.cancel.take() {
            let _ = c.send(());
        }
        if tokio::time::timeout(limit, &mut r.handle).await.is_err() {
            r.handle.abort();
        }
    }
}

fn secs(a: Timestamp, b: Timestamp) -> f64 {
    (b.as_millisecond() - a.as_millisecond()) as f64 / 1000.0
}

struct EffectCtx<'a> {
    cfg: &'a Config,
    executor: &'a Executor,
    sources: &'a Sources,
    tx: &'a mpsc::Sender<Event>,
    out_tx: &'a mpsc::Sender<OutputLine>,
    operator: &'a Operator,
    release: String,
    /// `StatePaths::dir` (checklist progress lives under it).
    state_dir: &'a Path,
}

impl EffectCtx<'_> {
    fn perform(
        &self,
        e: Effect,
        sink: &mut (dyn FnMut(DriverEvent) + Send),
        running: &mut HashMap<u64, RunningAction>,
    ) {
        match e {
            Effect::Notify(n) => {
                tracing::trace!("{}", self.executor.redactor().redact(&format!("{n:?}")));
                sink(DriverEvent::Notice(n))
            }
            Effect::Measure { check, epoch } => {
                let s = self.sources.clone();
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let mut m = s.measure(&check).await;
                    // Text from a source (an error page, a lying server) is
                    // shown on screen: it must not be able to drive the terminal.
                    for r in [&mut m.canary, &mut m.baseline] {
                        if let Err(e) = r {
                            *e = strip_control(e);
                        }
                    }
                    let epoch = Some(epoch);
                    let _ = tx
                        .send(Event::Measured {
                            measurement: m,
                            epoch,
                        })
                        .await;
                });
            }
            Effect::Probe { target } => {
                let s = self.sources.clone();
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let (ok, kind, detail) = match s.probe_target(&target).await {
                        Ok(d) => (true, ProbeKind::Plain, d),
                        Err((kind, d)) => (false, kind, d),
                    };
                    let detail = strip_control(&detail);
                    let _ = tx
                        .send(Event::Probed {
                            target,
                            ok,
                            detail,
                            kind,
                        })
                        .await;
                });
            }
            Effect::RunAction {
                run,
                step_name,
                action,
                mut vars,
                reason,
                ..
            } => {
                let tx = self.tx.clone();
                vars.insert("operator".into(), self.operator.to_string());
                let (cancel_tx, cancel_rx) = tokio::sync::oneshot::channel::<()>();
                let cancelled = async move {
                    if cancel_rx.await.is_err() {
                        std::future::pending::<()>().await;
                    }
                };
                let ex = self.executor.clone();
                let out = self.out_tx.clone();
                let release = self.release.clone();
                // A `checklist` step: passes once its checks and blocks are done.
                if let Some(file) = crate::runbook::checklist::parse_step_action(&action) {
                    let file = PathBuf::from(file);
                    let store =
                        crate::runbook::ProgressStore::for_release(self.state_dir, &file, &release);
                    let h = tokio::spawn(async move {
                        let (ok, detail) =
                            crate::runbook::checklist::wait(file, store, step_name, out, cancelled)
                                .await;
                        let _ = tx
                            .send(Event::ActionFinished {
                                run,
                                ok,
                                detail,
                                unaudited: false,
                            })
                            .await;
                    });
                    running.insert(
                        run,
                        RunningAction {
                            handle: h,
                            cancel: Some(cancel_tx),
                        },
                    );
                    return;
                }
                // A `migration` step: its parts, each an audited action.
                let (action, parts, gated) = if let Some((src, round_trip)) =
                    crate::migrations::parse_step_action(&action)
                {
                    match migration_parts(self.cfg, src, round_trip) {
                        Ok(p) => (action.clone(), p, None),
                        Err(e) => {
                            let _ = tx.try_send(Event::ActionFinished {
                                run,
                                ok: false,
                                detail: e,
                                unaudited: false,
                            });
                            return;
                        }
                    }
                } else {
                    // A traffic step requiring migrations at head: raising
                    // the weight waits for the check; 0 always runs.
                    let (real, gated) = match crate::migrations::parse_gate_action(&action) {
                        Some(real) => {
                            let raise = vars.get("weight").is_some_and(|w| w != "0");
                            (
                                real.to_string(),
                                raise.then(|| self.cfg.sources.migrations.clone()),
                            )
                        }
                        None => (action.clone(), None),
                    };
                    let Some(spec) = self.cfg.actions.get(&real).cloned() else {
                        let _ = tx.try_send(Event::ActionFinished {
                            run,
                            ok: false,
                            detail: format!("no action named `{real}` in the config"),
                            unaudited: false,
                        });
                        return;
                    };
                    (real.clone(), vec![(real, spec)], gated)
                };
                let migration = crate::migrations::parse_step_action(&action)
                    .and_then(|(src, _)| self.cfg.sources.migrations.iter().find(|m| m.name == src))
                    .cloned();
                let h = tokio::spawn(async move {
                    if let Some(sources) = gated
                        && let Err(why) = crate::migrations::gate(&sources).await
                    {
                        let _ = tx
                            .send(Event::ActionFinished {
                                run,
                                ok: false,
                                detail: strip_control(&format!("refused to shift traffic: {why}")),
                                unaudited: false,
                            })
                            .await;
                        return;
                    }
                    let cancelled = futures::FutureExt::shared(Box::pin(cancelled));
                    let several = parts.len() > 1 || migration.is_some();
                    let mut said = Vec::new();
                    let mut result = (true, false);
                    // Answers only once each action (its whole process group) has ended.
                    for (name, spec) in parts {
                        let req = ActionRequest {
                            name: name.clone(),
                            spec,
                            vars: vars.clone(),
                            reason: reason.clone(),
                            release: Some(release.clone()),
                            step: Some(step_name.clone()),
                        };
                        let o = ex.run_until(req, out.clone(), cancelled.clone()).await;
                        said.push(if several {
                            format!("{name}: {}", o.detail)
                        } else {
                            o.detail.clone()
                        });
                        if !o.ok || o.unaudited {
                            result = (false, o.unaudited);
                            break;
                        }
                    }
                    // Then the database must be at head and clean.
                    if result.0
                        && let Some(src) = migration
                    {
                        match crate::migrations::read(&src).await.at_head_and_clean() {
                            Ok(()) => said.push(format!("`{}` at head", src.name)),
                            Err(e) => {
                                said.push(e);
                                result.0 = false;
                            }
                        }
                    }
                    let _ = tx
                        .send(Event::ActionFinished {
                            run,
                            ok: result.0,
                            detail: strip_control(&said.join("; ")),
                            unaudited: result.1,
                        })
                        .await;
                });
                running.insert(
                    run,
                    RunningAction {
                        handle: h,
                        cancel: Some(cancel_tx),
                    },
                );
            }
            Effect::CancelAction { run } => {
                // The action's task answers `ActionFinished` once its process
                // group is gone, never before.
                if let Some(c) = running.get_mut(&run).and_then(|r| r.cancel.take()) {
                    let _ = c.send(());
                }
            }
        }
    }
}

/// `rolldeck status`: the latest release in the journal.
pub fn status(
    cfg: &Config,
    state_dir: Option<&Path>,
) -> anyhow::Result<Option<(Release, Option<Holder>)>> {
    let paths = StatePaths::resolve(cfg, state_dir).map_err(anyhow::Error::msg)?;
    let latest = paths.store.latest()?;
    let holder = if DriverLock::is_held(&paths.lock) {
        DriverLock::holder(&paths.lock)
    } else {
        None
    };
    Ok(latest.map(|r| (r, holder)))
}

/// `rolldeck history`: every release in the journal, oldest first.
pub fn history(cfg: &Config, state_dir: Option<&Path>) -> anyhow::Result<Vec<Release>> {
    let paths = StatePaths::resolve(cfg, state_dir).map_err(anyhow::Error::msg)?;
    Ok(paths.store.all()?)
}

#[cfg(test)]
mod release_id_tests {
    use super::new_release_id;

    #[test]
    fn release_ids_of_one_process_never_repeat_within_a_second() {
        let ids: Vec<String> = (0..5).map(|_| new_release_id("svc")).collect();
        let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{ids:?}");
        assert!(ids.iter().all(|id| id.starts_with("svc-")), "{ids:?}");
    }
}

#[cfg(test)]
mod text_line_tests {
    use super::text_line;

    /// Headless text lines say each thing once and name no internal key.
    #[test]
    fn text_lines_read_as_words() {
        let v = serde_json::json!({"event": "verdict", "check": "rollback_when[0]",
            "reason": "pass: canary 0.2, baseline 0.1"});
        assert_eq!(
            text_line(&v),
            "[rollback trigger 1] pass: canary 0.2, baseline 0.1"
        );
        let v =
            serde_json::json!({"event": "rollback_started", "reason": "rollback by alice: slow"});
        assert_eq!(text_line(&v), "ROLLBACK by alice: slow");
        let v = serde_json::json!({"event": "release_finished", "outcome": "rolled_back",
            "reason": "trigger `errors`: check `error-rate` failed: canary 12 %"});
        let line = text_line(&v);
        assert_eq!(
            line,
            "release finished: rolled back: trigger `errors`: check `error-rate` failed: canary 12 %"
        );
        let v = serde_json::json!({"event": "release_finished", "outcome": "aborted",
            "reason": "aborted by alice"});
        assert_eq!(text_line(&v), "release finished: aborted by alice");
        for v in [
            serde_json::json!({"event": "verdict", "check": "rollback_when[2]", "reason": "x"}),
            serde_json::json!({"event": "release_finished", "outcome": "rolled_back", "reason": "rollback by bob"}),
        ] {
            assert_eq!(crate::units::text_flaw(&text_line(&v)), None);
        }
    }
}
