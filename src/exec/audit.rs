//! The append-only audit log of action runs (JSON lines).

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
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
    /// at `path` for appending. A new file gets mode `0640`.
    ///
    /// # Errors
    ///
    /// Any I/O error creating the directories or opening the file.
    pub fn open(path: &Path) -> io::Result<Self> {
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)?;
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
        let mut line =
            serde_json::to_vec(rec).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        line.push(b'\n');
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        file.write_all(&line)?;
        file.flush()?;
        file.sync_data()
    }

    /// Reads every record in the log at `path`, oldest first. A missing file
    /// reads as no records; a torn last line (no newline at the end, e.g.
    /// after a crash mid-write) that does not parse is skipped.
    ///
    /// # Errors
    ///
    /// I/O errors, or `InvalidData` naming the line number of a line that is
    /// not a valid record.
    pub fn read_all(path: &Path) -> io::Result<Vec<AuditRecord>> {
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
            match serde_json::from_str::<AuditRecord>(line) {
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
