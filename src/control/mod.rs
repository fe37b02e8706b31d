//! A release that outlives the terminal: the background driver and its
//! local control API.
//!
//! `rolldeck run --detach` starts `rolldeck __driver …` ([`background`]): a
//! process in a session of its own (`setsid`), stdin `/dev/null`, stdout and
//! stderr appended to `driver.log` in the state dir. It takes the driver
//! lock and drives the release with [`crate::runtime::drive`] exactly as a
//! cockpit or a headless run does (same journal, same audit log), and
//! serves the control API below on `control.sock` beside the journal.
//! `background.json` there says which process it is ([`Background`]).
//!
//! # The control protocol (JSON lines over a Unix socket)
//!
//! The socket is `STATE/<service>@<environment>/control.sock`, mode `0660`:
//! the owner and the state dir's group (the team: the state dir is setgid,
//! see [`crate::runtime::SYSTEM_STATE_DIR`]) may connect, nobody else. The
//! connecting OS user is taken from the socket's peer credentials
//! (`SO_PEERCRED`), never from what the client says.
//!
//! Each request is one JSON object on one line (at most [`MAX_REQUEST`]
//! bytes, UTF-8); `id` (any JSON value, optional) is echoed in every reply
//! line to it. Replies are one JSON object per line with `"ok": true` and
//! the fields below, or `"ok": false, "error": "why"`. A bad request (not
//! JSON, unknown `op`, too long) gets an error reply; a line longer than
//! [`MAX_REQUEST`] also closes the connection. Requests on one connection
//! are answered in order; an `events` stream runs alongside later requests.
//!
//! | request | reply |
//! |---|---|
//! | `{"op":"hello","operator":{"user":"alice","ssh_client":"10.0.0.5","tty":"/dev/pts/3"},"read_only":false}` | `{"ok":true,"operator":"deploy@bastion (says alice; ssh 10.0.0.5)","read_only":false}`: names this connection's operator for `command` and in `ps` (optional; without it the operator is the peer's OS user) |
//! | `{"op":"status"}` | `{"ok":true,"driver":{Background},"release":{Release}\|null,"attached":["alice@bastion …"],"stopped":null\|"why"}` |
//! | `{"op":"history"}` | `{"ok":true,"releases":[{"release","version","plan","started_at","finished_at","outcome","reason"}]}` oldest first |
//! | `{"op":"events","from":0}` | `{"ok":true,"release":"ID","from":0}`, then `{"offset":N,"record":{journal record}}` for every record of the release's journal from index `from` on (0-based, so a client that saw `N` resumes with `from: N+1`), `{"output":{"action","stream","line"}}` for action output while connected, and finally `{"end":"why"}` when the driver stops |
//! | `{"op":"command","command":"pause","reason":"why"}` | `{"ok":true,"accepted":true,"operator":"…"}` or `{"ok":false,"error":"why not"}` |
//!
//! `command` takes the engine's commands as the journal writes them
//! ([`crate::release::Command`]): `approve`, `pause`, `resume`, `promote`,
//! `promote_full`, `retry`, `rollback`, `abort`, and `set_weight` with
//! `"weight": 0..=100`. The driver refuses what [`Release::can`] refuses
//! now (the error says why) and what a `read_only` connection sends;
//! accepted commands are journaled with the operator's name (the engine
//! checks `can` again when it applies them: the event stream shows the
//! result) and every command, accepted or refused, gets an audit record
//! (`action` = `command NAME`) naming the operator.
//!
//! [`Release::can`]: crate::release::Release::can

pub mod background;
pub mod client;
pub mod server;

use crate::runtime::StatePaths;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What a driving cockpit does when its terminal hangs up (`SIGHUP`)
/// mid-release (`on_hangup` in the config). Whichever is chosen, the
/// release is never left with nobody watching: the cockpit stops its
/// driver (killing a running action, which the new driver never runs
/// twice: an interrupted step waits for a human) and a background driver
/// resumes from the journal, keeping the rollback triggers evaluated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnHangup {
    /// Hand off as it is: the release goes on in the background.
    #[default]
    Detach,
    /// Pause it (journaled as paused by the hang-up), then hand off: the
    /// background driver keeps watching the triggers while it waits.
    Pause,
    /// Start the rollback, then hand off: the background driver finishes it.
    Rollback,
}

/// The longest request line the driver reads, in bytes (64 KiB); a longer
/// one gets an error reply and the connection is closed.
pub const MAX_REQUEST: usize = 64 * 1024;

/// The longest reply line a client reads, in bytes (16 MiB: a status
/// carries the whole release state).
pub const MAX_REPLY: usize = 16 * 1024 * 1024;

/// The control socket of a state dir: `control.sock`.
pub fn socket_path(paths: &StatePaths) -> PathBuf {
    paths.dir.join("control.sock")
}

/// The background driver's record: `background.json`.
pub fn record_path(paths: &StatePaths) -> PathBuf {
    paths.dir.join("background.json")
}

/// The background driver's log (its stdout and stderr): `driver.log`.
pub fn log_path(paths: &StatePaths) -> PathBuf {
    paths.dir.join("driver.log")
}

/// Which background driver serves a state dir (`background.json`, written
/// once the release is known; left behind by a killed driver, so it is
/// only believed while the driver lock is held by the same pid).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Background {
    /// The driver's process id.
    pub pid: u32,
    /// The release it drives.
    pub release: String,
    /// Who started it (`alice@bastion (ssh …)`).
    pub started_by: String,
    /// Since when it drives (RFC 3339 UTC).
    pub since: Timestamp,
    /// The control socket.
    pub socket: PathBuf,
    /// Its log file.
    pub log: PathBuf,
}

impl Background {
    /// Reads `background.json`; `Ok(None)` when there is none.
    ///
    /// # Errors
    ///
    /// An unreadable or undecodable record, naming the file.
    pub fn read(paths: &StatePaths) -> Result<Option<Self>, String> {
        let p = record_path(paths);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| format!("{}: {e}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", p.display())),
        }
    }

    /// Writes `background.json` (aside, then renamed), mode 0664.
    ///
    /// # Errors
    ///
    /// I/O errors.
    pub fn write(&self, paths: &StatePaths) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let p = record_path(paths);
        let tmp = paths.dir.join("background.json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec(self).map_err(std::io::Error::other)?,
        )?;
        let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o664));
        std::fs::rename(&tmp, &p)
    }
}

/// Where a state dir's background driver stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Liveness {
    /// No background driver was started here (or it ended cleanly).
    None,
    /// It runs: the driver lock is held by its pid.
    Running(Background),
    /// Its record is there but the driver lock is not held by it: it was
    /// killed (`kill -9`, a crash) without finishing.
    Gone(Background),
}

/// Whether the background driver of `paths` runs ([`Liveness`]).
///
/// # Errors
///
/// An unreadable `background.json`.
pub fn liveness(paths: &StatePaths) -> Result<Liveness, String> {
    let Some(b) = Background::read(paths)? else {
        return Ok(Liveness::None);
    };
    let held = crate::runtime::DriverLock::is_held(&paths.lock);
    let holder = crate::runtime::DriverLock::holder(&paths.lock);
    if held && holder.is_some_and(|h| h.pid == b.pid) {
        return Ok(Liveness::Running(b));
    }
    // Gone only while its release is the journal's current one and
    // unfinished: a release someone finished since leaves a stale record.
    let latest = paths.store.latest().map_err(|e| e.to_string())?;
    Ok(
        match latest.filter(|r| r.id == b.release && !r.is_finished()) {
            Some(_) => Liveness::Gone(b),
            None => Liveness::None,
        },
    )
}

/// The state dirs of every service+environment under the base of `paths`
/// (its parent directory), sorted: `ps` lists their background drivers.
pub fn sibling_dirs(paths: &StatePaths) -> Vec<PathBuf> {
    let Some(base) = paths.dir.parent() else {
        return vec![paths.dir.clone()];
    };
    let mut out: Vec<PathBuf> = match std::fs::read_dir(base) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir() && p.join("background.json").exists())
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// The [`StatePaths`] of the state dir `dir` (as [`StatePaths::in_base`]
/// lays it out).
pub fn paths_of_dir(dir: &Path) -> StatePaths {
    StatePaths {
        store: crate::store::Store::new(dir),
        audit: dir.join("audit.jsonl"),
        lock: dir.join("driver.lock"),
        dir: dir.to_path_buf(),
    }
}

/// What a client says about its operator in `hello` (every field
/// optional, control characters removed, each cut to 128 characters).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// The name the client goes by (`SUDO_USER`, else `LOGNAME`, else `USER`).
    #[serde(default)]
    pub user: Option<String>,
    /// The SSH client's address (`SSH_CONNECTION`'s first field).
    #[serde(default)]
    pub ssh_client: Option<String>,
    /// The client's terminal.
    #[serde(default)]
    pub tty: Option<String>,
}

impl Claim {
    /// This process's claim: `SUDO_USER`, `LOGNAME`, `USER`; the SSH client
    /// and terminal as [`crate::exec::Operator::current`] finds them.
    pub fn current() -> Self {
        let op = crate::exec::Operator::current();
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Self {
            user: env("SUDO_USER")
                .or_else(|| env("LOGNAME"))
                .or(Some(op.user)),
            ssh_client: op.ssh_client,
            tty: op.tty,
        }
    }
}
