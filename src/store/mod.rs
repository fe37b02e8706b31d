//! Where the journal lives on disk: one file per release, a pointer to the
//! current one, and a follower for observers.
//!
//! Layout of one service+environment's state directory:
//! ```text
//! <state>/<service>@<environment>/   names percent-encoded ([`encode_name`])
//!   releases/<release-id>.jsonl      one journal file per release
//!   current                          the id of the latest release
//!   journal.jsonl                    the single journal of rolldeck before
//!                                    0.2 (read for history and resume)
//!   audit.jsonl, driver.lock
//! ```
//! Start-up, `status` and observers read only the current release's file;
//! `history` reads them all. The file format is [`crate::release::journal`];
//! torn tails and corruption are handled in [`file`].

pub mod file;
pub mod follow;

pub use file::{JournalError, JournalFile, Scan};
pub use follow::Follower;

use crate::redact::Redactor;
use crate::release::engine::{Event, Release};
use crate::release::journal::{self, Record};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Encodes a name (service, environment, release id) as one path component,
/// unambiguously: ASCII letters, digits, `-` and `_` stay, and `.` except
/// in first place; every other byte (including `%`, `/`, `@`) becomes `%XX`.
/// So `pay/api` → `pay%2Fapi` and `pay_api` stay apart, and no name becomes
/// `.`, `..` or a hidden file. A result longer than 200 bytes is cut and
/// suffixed with a hash of the whole name (`~` and 16 hex digits).
pub fn encode_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    if out.len() > 200 {
        // FNV-1a over the name's bytes.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let mut cut = 180;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str(&format!("~{h:016x}"));
    }
    out
}

/// The journal store of one service+environment (its state directory).
#[derive(Debug, Clone, PartialEq)]
pub struct Store {
    /// The state directory.
    pub dir: PathBuf,
}

impl Store {
    /// The store in state directory `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// `releases/`.
    pub fn releases_dir(&self) -> PathBuf {
        self.dir.join("releases")
    }

    /// The pointer to the current release: `current`.
    pub fn current_path(&self) -> PathBuf {
        self.dir.join("current")
    }

    /// The single journal of older versions: `journal.jsonl`.
    pub fn legacy_path(&self) -> PathBuf {
        self.dir.join("journal.jsonl")
    }

    /// The journal file of release `id`.
    pub fn release_path(&self, id: &str) -> PathBuf {
        self.releases_dir()
            .join(format!("{}.jsonl", encode_name(id)))
    }

    /// The current release's id, from the pointer; `None` when there is none.
    pub fn current_id(&self) -> Result<Option<String>, JournalError> {
        let p = self.current_path();
        match std::fs::read(&p) {
            Ok(b) => {
                let s = String::from_utf8(b).map_err(|_| JournalError::Corrupt {
                    path: p.clone(),
                    line: 1,
                    message: "the current-release pointer is not valid UTF-8".into(),
                })?;
                let id = s.strip_suffix('\n').unwrap_or(&s);
                if id.is_empty() {
                    return Err(JournalError::Corrupt {
                        path: p,
                        line: 1,
                        message: "the current-release pointer is empty".into(),
                    });
                }
                Ok(Some(id.to_string()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(JournalError::Io { path: p, source }),
        }
    }

    /// The file the latest release's records are in, and its scan.
    fn latest_scan(&self) -> Result<(PathBuf, Scan), JournalError> {
        let path = match self.current_id()? {
            Some(id) => self.release_path(&id),
            None => self.legacy_path(),
        };
        let scan = file::read_scan(&path)?;
        Ok((path, scan))
    }

    /// The latest release (reads only its own file, or the old single
    /// journal when there is no per-release file yet).
    pub fn latest(&self) -> Result<Option<Release>, JournalError> {
        Ok(journal::replay(&self.latest_scan()?.1.records).pop())
    }

    /// Every release, oldest first: the old single journal's and one per
    /// file in `releases/` (a release migrated from the old journal counts
    /// once, from its own file).
    pub fn all(&self) -> Result<Vec<Release>, JournalError> {
        let mut out = journal::replay(&file::read(&self.legacy_path())?);
        let dir = self.releases_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e
                .collect::<Result<Vec<_>, _>>()
                .map_err(|source| JournalError::Io {
                    path: dir.clone(),
                    source,
                })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(JournalError::Io { path: dir, source }),
        };
        for e in entries {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "jsonl") {
                continue;
            }
            for r in journal::replay(&file::read(&p)?) {
                out.retain(|x| x.id != r.id);
                out.push(r);
            }
        }
        out.sort_by_key(|r| r.started_at);
        Ok(out)
    }

    /// Opens the store for appending; records are masked by `redactor`.
    pub fn open(&self, redactor: Redactor) -> Journal {
        Journal {
            store: self.clone(),
            redactor,
            current: None,
        }
    }

    /// Points `current` at release `id` (written aside, fsynced, renamed).
    fn set_current(&self, id: &str) -> Result<(), JournalError> {
        let p = self.current_path();
        let tmp = self.dir.join("current.tmp");
        let io = |source| JournalError::Io {
            path: p.clone(),
            source,
        };
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(format!("{id}\n").as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &p).map_err(io)?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io)
    }
}

/// The journal, opened for appending: each record goes to its release's
/// file; the first record of a release points `current` at it.
#[derive(Debug)]
pub struct Journal {
    store: Store,
    redactor: Redactor,
    current: Option<(String, JournalFile)>,
}

impl Journal {
    /// The file the last record went to.
    pub fn path(&self) -> Option<&Path> {
        self.current.as_ref().map(|(_, f)| f.path())
    }

    /// Appends one record (secrets masked field by field) to its release's
    /// file, then flushes and fsyncs. A release found only in the old single
    /// journal is copied to its own file first.
    pub fn append(&mut self, rec: &Record) -> Result<(), JournalError> {
        if self
            .current
            .as_ref()
            .is_none_or(|(id, _)| *id != rec.release)
        {
            let path = self.store.release_path(&rec.release);
            let (mut f, scan) = JournalFile::open(&path)?;
            if scan.records.is_empty() && !matches!(rec.event, Event::Start { .. }) {
                for old in file::read(&self.store.legacy_path())?
                    .iter()
                    .filter(|r| r.release == rec.release)
                {
                    f.append_line(&journal::encode(old, &self.redactor))?;
                }
            }
            f.append_line(&journal::encode(rec, &self.redactor))?;
            if self.store.current_id()?.as_deref() != Some(rec.release.as_str()) {
                self.store.set_current(&rec.release)?;
            }
            self.current = Some((rec.release.clone(), f));
            return Ok(());
        }
        let (_, f) = self.current.as_mut().expect("checked above");
        f.append_line(&journal::encode(rec, &self.redactor))
    }
}

#[cfg(test)]
mod tests;
