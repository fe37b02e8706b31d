//! The journal: every engine event of every release of one
//! service+environment, as JSON lines, flushed and fsynced before the
//! event's effects run. Replaying a release's events through the engine
//! rebuilds its state ([`replay`]); `status` and `history` read it.

use super::engine::{Event, Release};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When the event was applied (RFC 3339 UTC).
    pub ts: Timestamp,
    /// The release it belongs to.
    pub release: String,
    /// The event.
    pub event: Event,
}

/// Why the journal could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// File I/O.
    #[error("journal {}: {source}", .path.display())]
    Io {
        /// The journal file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A line that is not a journal record (other than a torn last line).
    #[error("journal {}:{line}: not a journal record: {message}", .path.display())]
    Corrupt {
        /// The journal file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The parse error.
        message: String,
    },
}

/// An append-only journal file.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    redactor: crate::redact::Redactor,
}

impl Journal {
    /// Opens (creating) the journal at `path`, creating parent directories.
    /// Every line written is passed through `redactor` first: secret values
    /// never reach the journal.
    pub fn open(path: &Path, redactor: crate::redact::Redactor) -> Result<Self, JournalError> {
        let io = |source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            redactor,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record, then flushes and fsyncs (`sync_data`).
    pub fn append(&mut self, rec: &Record) -> Result<(), JournalError> {
        let mut line = self
            .redactor
            .redact(&serde_json::to_string(rec).expect("journal records serialize"));
        line.push('\n');
        let io = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(line.as_bytes()).map_err(io)?;
        self.file.flush().map_err(io)?;
        self.file.sync_data().map_err(io)
    }
}

/// Reads every record. A torn last line (a crash mid-write) is ignored;
/// a bad line elsewhere is an error. A missing file is an empty journal.
pub fn read(path: &Path) -> Result<Vec<Record>, JournalError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(JournalError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let mut out = Vec::new();
    let n = lines.len();
    for (i, l) in lines.iter().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(l) {
            Ok(r) => out.push(r),
            Err(_) if i + 1 == n => break,
            Err(e) => {
                return Err(JournalError::Corrupt {
                    path: path.to_path_buf(),
                    line: i + 1,
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(out)
}

/// Rebuilds every release in the journal, oldest first.
pub fn replay(records: &[Record]) -> Vec<Release> {
    let mut out: Vec<Release> = Vec::new();
    for r in records {
        if let Event::Start { .. } = &r.event {
            if let Some((rel, _)) = Release::start(&r.event, r.ts) {
                out.push(rel);
            }
            continue;
        }
        if let Some(rel) = out.iter_mut().rev().find(|x| x.id == r.release) {
            rel.apply(&r.event, r.ts);
        }
    }
    out
}

/// The latest release, if it has not finished (the one to resume).
pub fn unfinished(releases: &[Release]) -> Option<&Release> {
    releases.last().filter(|r| !r.is_finished())
}
