//! Where a runbook stands: block states, ticked checks, given variable
//! values. One versioned JSON file per runbook under the state directory,
//! replaced atomically (temporary file, fsync, rename, fsync of the
//! directory) under an exclusive `flock` on a `.lock` file beside it, so a
//! cockpit and `rolldeck runbook --run` on the same runbook do not lose each
//! other's updates.
//!
//! ```text
//! <state>/<service>@<environment>/runbooks/<encoded absolute path>.json
//! {"version":1,"runbook":"/srv/runbooks/db-pool.md","updated":"2026-…Z",
//!  "blocks":{"check-pool":{"state":"failed","exit_code":2,"detail":"exit 2",
//!            "code_hash":"…","at":"…","operator":"ana@10.0.0.5 pts/3",
//!            "duration_s":0.41}},
//!  "checks":{"Told the team":{"ticked":true,"at":"…","operator":"…"}},
//!  "vars":{"NAMESPACE":"prod"}}
//! ```
//!
//! A file that cannot be read or parsed (torn, corrupt, a newer version) is
//! a [`ProgressError`], never silently treated as "nothing done": the
//! caller shows it; [`ProgressStore::set_aside`] moves it away on an
//! operator's request.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Block, Check};

/// The progress file format version written.
pub const VERSION: u32 = 1;

/// Largest progress file read, in bytes.
pub const MAX_PROGRESS_BYTES: u64 = 4 * 1024 * 1024;

/// The state of one block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BlockState {
    /// Never run (or its code changed since it ran).
    NotRun,
    /// Running now, in process `pid` (a record whose process is gone reads
    /// as failed, "interrupted").
    Running {
        /// The rolldeck process running it.
        pid: u32,
    },
    /// Exit 0 (a query: answered).
    Ok,
    /// A non-zero exit, a timeout, a refusal to start, an interruption.
    Failed {
        /// The exit code, `None` when it did not exit normally.
        exit_code: Option<i32>,
    },
    /// Skipped by the operator (with a reason in `detail`).
    Skipped,
}

impl BlockState {
    /// `not run`, `running`, `ok`, `failed (exit 2)`, `failed`, `skipped`.
    pub fn label(&self) -> String {
        match self {
            BlockState::NotRun => "not run".into(),
            BlockState::Running { .. } => "running".into(),
            BlockState::Ok => "ok".into(),
            BlockState::Failed { exit_code: Some(c) } => format!("failed (exit {c})"),
            BlockState::Failed { exit_code: None } => "failed".into(),
            BlockState::Skipped => "skipped".into(),
        }
    }
}

/// What is recorded for a block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockRecord {
    /// The state.
    #[serde(flatten)]
    pub state: BlockState,
    /// A few words: `exit 0`, `timed out after 30s; process group killed`,
    /// a skip reason (redacted).
    #[serde(default)]
    pub detail: String,
    /// [`Block::code_hash`] of the code that ran.
    pub code_hash: String,
    /// When (UTC, RFC 3339).
    pub at: String,
    /// Who ([`crate::exec::Operator`] as text).
    pub operator: String,
    /// Duration in seconds (0 while running).
    #[serde(default)]
    pub duration_s: f64,
}

/// What is recorded for a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// Ticked (false: un-ticked again).
    pub ticked: bool,
    /// When (UTC, RFC 3339).
    pub at: String,
    /// Who.
    pub operator: String,
}

/// The progress of one runbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    /// [`VERSION`].
    pub version: u32,
    /// The runbook file (absolute).
    pub runbook: String,
    /// Last change (UTC, RFC 3339).
    #[serde(default)]
    pub updated: Option<String>,
    /// By block name.
    #[serde(default)]
    pub blocks: BTreeMap<String, BlockRecord>,
    /// By [`Check::key`].
    #[serde(default)]
    pub checks: BTreeMap<String, CheckRecord>,
    /// Variable values the operator gave (never names that look secret).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// A checklist step skipped on purpose (confirmed and audited,
    /// [`super::checklist::skip`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<SkipRecord>,
}

/// Who skipped a checklist, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkipRecord {
    /// When (UTC, RFC 3339).
    pub at: String,
    /// Who.
    pub operator: String,
    /// Why (required).
    pub reason: String,
}

impl Progress {
    /// Nothing done yet.
    pub fn new(runbook: &Path) -> Self {
        Self {
            version: VERSION,
            runbook: runbook.to_string_lossy().into_owned(),
            updated: None,
            blocks: BTreeMap::new(),
            checks: BTreeMap::new(),
            vars: BTreeMap::new(),
            skipped: None,
        }
    }

    /// The block's state now: [`BlockState::NotRun`] without a record or
    /// when its code changed since; a `running` record whose process is
    /// gone reads as `failed` (interrupted).
    pub fn state(&self, block: &Block) -> BlockState {
        match self.blocks.get(&block.name) {
            Some(r) if r.code_hash == block.code_hash() => match r.state {
                BlockState::Running { pid } if !process_alive(pid) => {
                    BlockState::Failed { exit_code: None }
                }
                ref s => s.clone(),
            },
            _ => BlockState::NotRun,
        }
    }

    /// The block's record when it applies to the current code.
    pub fn record(&self, block: &Block) -> Option<&BlockRecord> {
        self.blocks
            .get(&block.name)
            .filter(|r| r.code_hash == block.code_hash())
    }

    /// Whether the check is ticked (in this progress; a `[x]` in the file
    /// does not count).
    pub fn ticked(&self, check: &Check) -> bool {
        self.checks.get(&check.key).is_some_and(|r| r.ticked)
    }

    /// Ticks or un-ticks a check.
    pub fn tick(&mut self, check: &Check, ticked: bool, operator: &str) {
        self.checks.insert(
            check.key.clone(),
            CheckRecord {
                ticked,
                at: now(),
                operator: operator.to_string(),
            },
        );
    }

    /// Records a block's state.
    pub fn set_state(
        &mut self,
        block: &Block,
        state: BlockState,
        detail: &str,
        duration_s: f64,
        operator: &str,
    ) {
        self.blocks.insert(
            block.name.clone(),
            BlockRecord {
                state,
                detail: detail.to_string(),
                code_hash: block.code_hash(),
                at: now(),
                operator: operator.to_string(),
                duration_s,
            },
        );
    }

    /// Records a variable value the operator gave. Returns false (and
    /// records nothing) for a name that looks secret
    /// ([`crate::config::is_secret_name`]): keep such a value in memory
    /// for the session instead.
    pub fn set_var(&mut self, name: &str, value: &str) -> bool {
        if crate::config::is_secret_name(name) {
            return false;
        }
        self.vars.insert(name.to_string(), value.to_string());
        true
    }

    /// Forgets block states and ticks (keeps variable values): start the
    /// runbook over.
    pub fn reset(&mut self) {
        self.blocks.clear();
        self.checks.clear();
    }
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        Ok(()) => true,
        Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}

/// Errors reading or writing a progress file.
#[derive(Debug, thiserror::Error)]
pub enum ProgressError {
    /// I/O on the file, its directory or its lock.
    #[error("runbook progress {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid progress JSON (torn write, hand edit, another program).
    #[error(
        "runbook progress {path} is corrupt at line {line} column {column}: {message}; it was not reset — move it away (the cockpit offers to) to start this runbook over"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde's message.
        message: String,
    },
    /// Written by a newer rolldeck.
    #[error(
        "runbook progress {path} has version {found}; this rolldeck reads version {VERSION} — use a newer rolldeck"
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u64,
    },
    /// Larger than [`MAX_PROGRESS_BYTES`].
    #[error("runbook progress {path} is larger than {MAX_PROGRESS_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// Belongs to another runbook (a hash collision of long paths, or a
    /// copied state directory).
    #[error("runbook progress {path} belongs to {found}, not {wanted}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// The runbook it names.
        found: String,
        /// The runbook asked for.
        wanted: String,
    },
}

/// The progress file of one runbook.
#[derive(Debug, Clone)]
pub struct ProgressStore {
    path: PathBuf,
    runbook: PathBuf,
}

impl ProgressStore {
    /// The progress of `runbook` kept in `dir` (usually
    /// `StatePaths::dir.join("runbooks")`, see [`ProgressStore::in_state`]).
    /// The runbook path is made absolute (canonical when it exists), so
    /// the same file opened by different relative paths shares progress.
    pub fn new(dir: &Path, runbook: &Path) -> Self {
        let abs = std::fs::canonicalize(runbook).unwrap_or_else(|_| {
            std::path::absolute(runbook).unwrap_or_else(|_| runbook.to_path_buf())
        });
        let file = format!("{}.json", crate::store::encode_name(&abs.to_string_lossy()));
        Self {
            path: dir.join(file),
            runbook: abs,
        }
    }

    /// The progress of `runbook` as the checklist of release `release`:
    /// kept apart from the runbook's everyday progress and from other
    /// releases (`<dir>/runbooks/<encoded path>@<encoded release>.json`), so
    /// last week's ticks never pass this week's checklist.
    pub fn for_release(state_dir: &Path, runbook: &Path, release: &str) -> Self {
        let mut s = Self::in_state(state_dir, runbook);
        let stem = s
            .path
            .file_stem()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        s.path.set_file_name(format!(
            "{stem}@{}.json",
            crate::store::encode_name(release)
        ));
        s
    }

    /// The progress of `runbook` in a service+environment's state directory
    /// (`runtime::StatePaths::dir`): `<dir>/runbooks/…json`.
    pub fn in_state(state_dir: &Path, runbook: &Path) -> Self {
        Self::new(&state_dir.join("runbooks"), runbook)
    }

    /// The progress file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The runbook (absolute).
    pub fn runbook(&self) -> &Path {
        &self.runbook
    }

    /// Reads the progress; a missing file is a fresh [`Progress`].
    ///
    /// # Errors
    ///
    /// [`ProgressError`] for an unreadable, corrupt, too large, newer or
    /// mismatched file — never a silent reset.
    pub fn load(&self) -> Result<Progress, ProgressError> {
        use std::io::Read as _;
        let io = |source| ProgressError::Io {
            path: self.path.clone(),
            source,
        };
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Progress::new(&self.runbook));
            }
            Err(e) => return Err(io(e)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_PROGRESS_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > MAX_PROGRESS_BYTES {
            return Err(ProgressError::TooLarge {
                path: self.path.clone(),
            });
        }
        let corrupt = |e: serde_json::Error| ProgressError::Corrupt {
            path: self.path.clone(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        };
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(corrupt)?;
        match value.get("version").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(VERSION) => {}
            Some(found) => {
                return Err(ProgressError::Version {
                    path: self.path.clone(),
                    found,
                });
            }
            None => {
                return Err(ProgressError::Corrupt {
                    path: self.path.clone(),
                    line: 1,
                    column: 1,
                    message: "no `version` number".into(),
                });
            }
        }
        let p: Progress = serde_json::from_value(value).map_err(corrupt)?;
        let wanted = self.runbook.to_string_lossy();
        if p.runbook != wanted {
            return Err(ProgressError::Mismatch {
                path: self.path.clone(),
                found: p.runbook,
                wanted: wanted.into_owned(),
            });
        }
        Ok(p)
    }

    /// Writes `p` atomically (temporary file in the same directory, fsync,
    /// rename, fsync of the directory), creating the directory.
    ///
    /// # Errors
    ///
    /// [`ProgressError::Io`]; the previous file is then unchanged.
    pub fn save(&self, p: &Progress) -> Result<(), ProgressError> {
        let io = |source| ProgressError::Io {
            path: self.path.clone(),
            source,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        let mut p = p.clone();
        p.updated = Some(now());
        let json = serde_json::to_vec_pretty(&p).map_err(|e| io(std::io::Error::other(e)))?;
        tmp.write_all(&json).map_err(io)?;
        tmp.write_all(b"\n").map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(&self.path).map_err(|e| io(e.error))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        Ok(())
    }

    /// Reads, changes and writes the progress under an exclusive lock, so
    /// concurrent updates from another rolldeck are not lost. Returns the
    /// progress as written.
    ///
    /// # Errors
    ///
    /// As [`ProgressStore::load`] and [`ProgressStore::save`]; nothing is
    /// written when loading fails.
    pub fn update<R>(
        &self,
        change: impl FnOnce(&mut Progress) -> R,
    ) -> Result<(Progress, R), ProgressError> {
        let _lock = self.lock()?;
        let mut p = self.load()?;
        let r = change(&mut p);
        self.save(&p)?;
        Ok((p, r))
    }

    fn lock(&self) -> Result<nix::fcntl::Flock<std::fs::File>, ProgressError> {
        let io = |source| ProgressError::Io {
            path: self.path.clone(),
            source,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut lock_path = self.path.clone().into_os_string();
        lock_path.push(".lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io)?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| io(std::io::Error::from(e)))
    }

    /// Moves an unreadable progress file aside (`….corrupt-<timestamp>`) so
    /// the runbook can start over; returns where it went. Only on an
    /// operator's request.
    ///
    /// # Errors
    ///
    /// [`ProgressError::Io`].
    pub fn set_aside(&self) -> Result<PathBuf, ProgressError> {
        let _lock = self.lock()?;
        let mut to = self.path.clone().into_os_string();
        to.push(format!(
            ".corrupt-{}",
            jiff::Timestamp::now().as_millisecond()
        ));
        let to = PathBuf::from(to);
        std::fs::rename(&self.path, &to).map_err(|source| ProgressError::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let rbfile = dir.path().join("rb.md");
        std::fs::write(&rbfile, "- [ ] a\n```sh\necho hi\n```\n").unwrap();
        let rb = super::super::Runbook::load(&rbfile).unwrap();
        let store = ProgressStore::in_state(dir.path(), &rbfile);
        assert_eq!(store.load().unwrap().blocks.len(), 0);
        store
            .update(|p| {
                p.tick(&rb.checks[0], true, "ana");
                p.set_state(&rb.blocks[0], BlockState::Ok, "exit 0", 0.1, "ana");
                assert!(p.set_var("NS", "prod"));
                assert!(!p.set_var("DB_PASSWORD", "x"));
            })
            .unwrap();
        let p = store.load().unwrap();
        assert!(p.ticked(&rb.checks[0]));
        assert_eq!(p.state(&rb.blocks[0]), BlockState::Ok);
        assert_eq!(p.vars.len(), 1);

        // Code changed: the old state does not apply.
        let mut changed = rb.blocks[0].clone();
        changed.code.push_str("echo more\n");
        assert_eq!(p.state(&changed), BlockState::NotRun);

        let bytes = std::fs::read(store.path()).unwrap();
        std::fs::write(store.path(), &bytes[..bytes.len() / 2]).unwrap();
        let e = store.load().unwrap_err();
        assert!(matches!(e, ProgressError::Corrupt { .. }), "{e}");
        assert!(store.update(|_| ()).is_err());
        // Still torn: update did not overwrite it.
        assert_eq!(std::fs::read(store.path()).unwrap().len(), bytes.len() / 2);
        let aside = store.set_aside().unwrap();
        assert!(aside.exists());
        assert!(store.load().unwrap().blocks.is_empty());
    }

    #[test]
    fn a_dead_runner_reads_as_failed() {
        let rb = super::super::parse("```sh\necho\n```\n");
        let mut p = Progress::new(Path::new("/x.md"));
        p.set_state(
            &rb.blocks[0],
            BlockState::Running { pid: u32::MAX - 1 },
            "",
            0.0,
            "ana",
        );
        assert_eq!(
            p.state(&rb.blocks[0]),
            BlockState::Failed { exit_code: None }
        );
    }
}
