//! The append-only audit log of action runs (JSON lines).
//!
//! Every run leaves up to three lines, tied together by `run_id`:
//!
//! 1. `{"event":"started",…}` ([`AuditMark`]) — written and fsynced *before*
//!    anything runs. If it cannot be written, the action does not run.
//! 2. `{"event":"spawned","pgid":…}` ([`AuditMark`]) — a command's process
//!    group, written right after the spawn, so a later rolldeck can tell
//!    whether an action started by a killed driver still runs
//!    ([`AuditLog::settle_unfinished`]).
//! 3. the result ([`AuditRecord`], no `event` field) — when it ended.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::Operator;

/// One audit log line (JSON), written and fsynced before
/// [`Executor::run`](super::Executor::run) returns. Every string in it is
/// redacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the run finished, RFC 3339 UTC (`2025-01-02T03:04:05.678Z`).
    pub ts: String,
    /// Who ran it.
    pub operator: Operator,
    /// The action's name.
    pub action: String,
    /// Release id, if run as part of a release.
    pub release: Option<String>,
    /// Plan step, if run by a step.
    pub step: Option<String>,
    /// What ran ([`Rendered::display`](super::Rendered::display), redacted);
    /// the unfilled template when rendering failed.
    pub rendered: String,
    /// The command's exit code.
    pub exit_code: Option<i32>,
    /// The HTTP response status.
    pub http_status: Option<u16>,
    /// Whether the action succeeded.
    pub ok: bool,
    /// Duration in seconds.
    pub duration_s: f64,
    /// [`ActionOutcome::detail`](super::ActionOutcome::detail).
    pub detail: String,
    /// The operator's reason.
    pub reason: Option<String>,
    /// Ties this result to its `started` / `spawned` lines ([`AuditMark`]);
    /// absent in logs written before rolldeck recorded starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// Which mark an [`AuditMark`] line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditStage {
    /// About to run: written (fsynced) before anything starts.
    Started,
    /// A command's process group exists (`pgid` set).
    Spawned,
}

/// A line written while an action runs (before its [`AuditRecord`]).
/// Every string in it is redacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditMark {
    /// `started` or `spawned`.
    pub event: AuditStage,
    /// When, RFC 3339 UTC.
    pub ts: String,
    /// Unique per run: `<driver pid>-<unix ms>-<counter>`.
    pub run_id: String,
    /// Who runs it.
    pub operator: Operator,
    /// The action's name.
    pub action: String,
    /// Release id, if run as part of a release.
    pub release: Option<String>,
    /// Plan step, if run by a step.
    pub step: Option<String>,
    /// What runs (redacted).
    pub rendered: String,
    /// The operator's reason.
    pub reason: Option<String>,
    /// The rolldeck process running the action.
    pub driver_pid: u32,
    /// The command's process group id (= the pid of its first process);
    /// `spawned` lines only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgid: Option<i32>,
    /// Start time of the group's first process, in clock ticks since boot
    /// (`/proc/PID/stat` field 22), to tell a reused pid from ours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_start: Option<u64>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq)]
pub enum AuditEntry {
    /// `started` / `spawned`.
    Mark(AuditMark),
    /// The result of a run.
    Finished(AuditRecord),
}

/// A run whose `started` line has no result line: the rolldeck running it
/// stopped (killed, crashed, power loss) before it finished.
#[derive(Debug, Clone, PartialEq)]
pub struct UnfinishedRun {
    /// The `started` line.
    pub started: AuditMark,
    /// The process group from the `spawned` line, if it got that far.
    pub pgid: Option<i32>,
    /// The group leader's start time (see [`AuditMark::leader_start`]).
    pub leader_start: Option<u64>,
}

impl UnfinishedRun {
    /// Whether its process group still has a live (non-zombie) process.
    pub fn alive(&self) -> bool {
        self.pgid.is_some_and(|g| group_alive(g, self.leader_start))
    }
}

/// An action started by an earlier rolldeck is still running: nothing may
/// drive this service+environment until it has ended.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "action `{action}`{step} started {ts} by rolldeck pid {driver_pid} (which stopped before it finished) is still running as process group {pgid} (pid {pgid}). \
     Do not run it again yet: see what it is doing (`ps -o pid,stat,etime,args -g {pgid}`), let it end or stop it (`kill -TERM -- -{pgid}`), \
     check what it changed (traffic weight, deployment), then run rolldeck again"
)]
pub struct StillRunning {
    /// The action's name.
    pub action: String,
    /// ` (step `NAME`)` or empty.
    pub step: String,
    /// When it started (RFC 3339).
    pub ts: String,
    /// The rolldeck that started it.
    pub driver_pid: u32,
    /// Its process group (and first process's pid).
    pub pgid: i32,
}

/// The audit log file: one JSON [`AuditRecord`] per line, append-only.
///
/// Appends from several tasks (or threads) are serialized by a mutex; each
/// record is a single `write` on an `O_APPEND` file, so separate rolldeck
/// processes appending to the same file do not interleave lines either.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl AuditLog {
    /// Opens (creating it and its parent directories if needed) the audit log
    /// at `path` for appending. A new file gets mode `0660` (the group of a
    /// shared state dir appends too; the umask may narrow it).
    ///
    /// # Errors
    ///
    /// Any I/O error creating the directories or opening the file.
    /// A torn last line (rolldeck killed mid-write) is moved to
    /// `PATH.torn-<UTC time>` (fsynced) and cut off, so the next record starts on a line
    /// of its own.
    pub fn open(path: &Path) -> io::Result<Self> {
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .mode(0o660)
            .open(path)?;
        cut_torn_tail(path, &file)?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// Appends one record as one line, then flushes and `fsync`s
    /// (`sync_data`) so the record is on disk when this returns. Blocking;
    /// safe to call from several tasks at once.
    ///
    /// # Errors
    ///
    /// Serialization (as `InvalidData`) or I/O errors.
    pub fn append(&self, rec: &AuditRecord) -> io::Result<()> {
        self.append_json(rec)
    }

    /// Appends a `started` / `spawned` line, like [`AuditLog::append`].
    ///
    /// # Errors
    ///
    /// Serialization (as `InvalidData`) or I/O errors.
    pub fn append_mark(&self, mark: &AuditMark) -> io::Result<()> {
        self.append_json(mark)
    }

    /// One line, fsynced. A write that fails part-way (disk full) is cut
    /// back off, so the log never holds a torn line before later records.
    fn append_json<T: Serialize>(&self, v: &T) -> io::Result<()> {
        let mut line =
            serde_json::to_vec(v).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        line.push(b'\n');
        let file = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let before = file.metadata()?.len();
        crate::store::file::append_synced(&self.path, &file, before, &line)
    }

    /// Reads every result record (one per finished run) in the log at
    /// `path`, oldest first; `started` / `spawned` lines are left out (see
    /// [`AuditLog::read_entries`]). A missing file reads as no records; a
    /// torn last line (no newline at the end, e.g. after a crash mid-write)
    /// that does not parse is skipped.
    ///
    /// # Errors
    ///
    /// I/O errors, or `InvalidData` naming the line number of a line that is
    /// not a valid record.
    pub fn read_all(path: &Path) -> io::Result<Vec<AuditRecord>> {
        Ok(Self::read_entries(path)?
            .into_iter()
            .filter_map(|e| match e {
                AuditEntry::Finished(r) => Some(r),
                AuditEntry::Mark(_) => None,
            })
            .collect())
    }

    /// Runs whose `started` line has no result (see [`UnfinishedRun`]),
    /// oldest first.
    ///
    /// # Errors
    ///
    /// As [`AuditLog::read_entries`].
    pub fn unfinished(path: &Path) -> io::Result<Vec<UnfinishedRun>> {
        let mut open: Vec<UnfinishedRun> = Vec::new();
        for e in Self::read_entries(path)? {
            match e {
                AuditEntry::Mark(m) => match m.event {
                    AuditStage::Started => {
                        open.retain(|u| u.started.run_id != m.run_id);
                        open.push(UnfinishedRun {
                            started: m,
                            pgid: None,
                            leader_start: None,
                        });
                    }
                    AuditStage::Spawned => {
                        if let Some(u) = open.iter_mut().find(|u| u.started.run_id == m.run_id) {
                            u.pgid = m.pgid;
                            u.leader_start = m.leader_start;
                        }
                    }
                },
                AuditEntry::Finished(r) => {
                    if let Some(id) = &r.run_id {
                        open.retain(|u| &u.started.run_id != id);
                    }
                }
            }
        }
        Ok(open)
    }

    /// Closes the runs an earlier rolldeck left without a result: while any
    /// of their process groups still lives, returns [`StillRunning`] for the
    /// oldest such (and writes nothing); otherwise appends a result line for
    /// each (`ok: false`, "outcome unknown …") and returns how many.
    /// Call it holding the driver lock, before running anything.
    ///
    /// # Errors
    ///
    /// `Ok(Err(StillRunning))` while one runs; `Err` on I/O errors.
    pub fn settle_unfinished(&self) -> io::Result<Result<usize, StillRunning>> {
        let open = Self::unfinished(&self.path)?;
        let me = std::process::id();
        let open: Vec<UnfinishedRun> = open
            .into_iter()
            .filter(|u| u.started.driver_pid != me)
            .collect();
        if let Some(u) = open.iter().find(|u| u.alive()) {
            return Ok(Err(StillRunning {
                action: u.started.action.clone(),
                step: u
                    .started
                    .step
                    .as_ref()
                    .map(|s| format!(" (step `{s}`)"))
                    .unwrap_or_default(),
                ts: u.started.ts.clone(),
                driver_pid: u.started.driver_pid,
                pgid: u.pgid.unwrap_or_default(),
            }));
        }
        for u in &open {
            let m = &u.started;
            let detail = match u.pgid {
                Some(g) => format!(
                    "outcome unknown: the rolldeck running it (pid {}) stopped before it finished; its process group {g} was gone when checked",
                    m.driver_pid
                ),
                None => format!(
                    "outcome unknown: the rolldeck running it (pid {}) stopped before it finished",
                    m.driver_pid
                ),
            };
            self.append(&AuditRecord {
                ts: jiff::Timestamp::now().to_string(),
                operator: m.operator.clone(),
                action: m.action.clone(),
                release: m.release.clone(),
                step: m.step.clone(),
                rendered: m.rendered.clone(),
                exit_code: None,
                http_status: None,
                ok: false,
                duration_s: 0.0,
                detail,
                reason: m.reason.clone(),
                run_id: Some(m.run_id.clone()),
            })?;
        }
        Ok(Ok(open.len()))
    }

    /// Reads every line of the log at `path` (marks and results), oldest
    /// first; same rules as [`AuditLog::read_all`].
    ///
    /// # Errors
    ///
    /// I/O errors, or `InvalidData` naming the line number of a line that is
    /// not a valid record.
    pub fn read_entries(path: &Path) -> io::Result<Vec<AuditEntry>> {
        let text = match std::fs::read(path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let complete = text.ends_with('\n');
        let lines: Vec<&str> = text.lines().collect();
        let mut out = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match parse_entry(line) {
                Ok(r) => out.push(r),
                Err(_) if !complete && i + 1 == lines.len() => {}
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}:{}: not an audit record: {e}", path.display(), i + 1),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn parse_entry(line: &str) -> serde_json::Result<AuditEntry> {
    let v: serde_json::Value = serde_json::from_str(line)?;
    if v.get("event").is_some() {
        serde_json::from_value(v).map(AuditEntry::Mark)
    } else {
        serde_json::from_value(v).map(AuditEntry::Finished)
    }
}

/// Moves a torn last line (no `\n` at the end) aside and cuts it off.
fn cut_torn_tail(path: &Path, file: &File) -> io::Result<()> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut f = file;
    let mut last = [0u8; 1];
    f.seek(SeekFrom::Start(len - 1))?;
    f.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(());
    }
    let data = std::fs::read(path)?;
    let keep = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let torn = crate::store::file::set_aside_torn(path, file, keep as u64, &data[keep..])?;
    tracing::warn!(path = %path.display(), torn = %torn.display(), "audit log ended in a torn line; moved it aside");
    Ok(())
}

/// One process's fields from `/proc/PID/stat`: (state, pgrp, starttime).
fn proc_stat(pid: i32) -> Option<(char, i32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((
        f.first()?.chars().next()?,
        f.get(2)?.parse().ok()?,
        f.get(19)?.parse().ok()?,
    ))
}

/// The start time (clock ticks since boot) of process `pid`, if it lives.
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    proc_stat(pid).map(|(_, _, t)| t)
}

/// Whether process group `pgid` has a live (not zombie) member. With
/// `leader_start`, a live process `pgid` started at another time is a
/// reused pid, not our group. Without `/proc`, asks the kernel (`kill -0`).
pub(crate) fn group_alive(pgid: i32, leader_start: Option<u64>) -> bool {
    if pgid <= 1 {
        return false;
    }
    if let Some((state, pgrp, start)) = proc_stat(pgid)
        && !matches!(state, 'Z' | 'X')
    {
        if leader_start.is_some_and(|s| s != start) {
            // The pid was reused: Linux hands out a pid only once no
            // process group has that id, so our group is gone.
            return false;
        }
        if pgrp == pgid {
            return true;
        }
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), None).is_ok();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(proc_stat)
        .any(|(state, pgrp, _)| pgrp == pgid && !matches!(state, 'Z' | 'X'))
}
