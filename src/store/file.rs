//! One journal file: reading with exact line numbers, repairing a torn tail
//! before appending, appending with fsync.
//!
//! A record is complete when its line ends with `\n`. What follows the last
//! newline is a **torn tail** (a crash or a full disk mid-write): readers
//! ignore it, and the writer copies it to `<file>.torn-<time>` and cuts it
//! off before appending, so a fragment can never glue itself to the next
//! record. A last complete line that does not decode is torn the same way.
//! Anything else that does not decode — a bad line in the middle, a
//! whitespace-only line in the middle, bytes that are not UTF-8 — is
//! corruption, reported with its 1-based line number.

use crate::release::journal::{self, DecodeError, Record};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

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
    /// A line that is not a journal record (other than a torn tail).
    #[error("journal {}:{line}: {message}", .path.display())]
    Corrupt {
        /// The journal file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A record written by a newer rolldeck.
    #[error("journal {}:{line}: {message}", .path.display())]
    Version {
        /// The journal file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Names the version.
        message: String,
    },
}

/// What a journal file holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scan {
    /// Every complete record, in order.
    pub records: Vec<Record>,
    /// Byte offset just past the last complete record.
    pub end: u64,
    /// A torn tail: `(offset, length)` in bytes.
    pub torn: Option<(u64, u64)>,
}

/// Scans the bytes of a journal file (see the module docs for the rules).
pub fn scan(path: &Path, bytes: &[u8]) -> Result<Scan, JournalError> {
    let (records, end, torn) = scan_lines(path, bytes, journal::decode)?;
    Ok(Scan { records, end, torn })
}

/// Scans the bytes of any append-only JSON-lines file by the journal's
/// rules (see the module docs), decoding each line with `decode`: returns
/// the complete records in order, the byte offset just past the last one,
/// and a torn tail as `(offset, length)`. Used by the journal and by the
/// incident timeline ([`crate::incident`]).
///
/// # Errors
///
/// [`JournalError::Version`] for a line `decode` finds too new,
/// [`JournalError::Corrupt`] for a bad line that is not the last.
#[allow(clippy::type_complexity)]
pub fn scan_lines<T>(
    path: &Path,
    bytes: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
) -> Result<(Vec<T>, u64, Option<(u64, u64)>), JournalError> {
    let mut out = Scanned {
        records: Vec::new(),
        end: 0,
        torn: None,
    };
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let body = &bytes[..complete];
    let lines: Vec<&[u8]> = if body.is_empty() {
        Vec::new()
    } else {
        body[..body.len() - 1].split(|&b| b == b'\n').collect()
    };
    let tail_len = (bytes.len() - complete) as u64;
    let mut offset = 0u64;
    for (i, line) in lines.iter().enumerate() {
        let last = i + 1 == lines.len() && tail_len == 0;
        let res = if line.iter().all(u8::is_ascii_whitespace) {
            Err(DecodeError::Invalid("a blank line".into()))
        } else {
            decode(line)
        };
        match res {
            Ok(r) => out.records.push(r),
            Err(e @ DecodeError::Version(_)) => {
                return Err(JournalError::Version {
                    path: path.to_path_buf(),
                    line: i + 1,
                    message: e.to_string(),
                });
            }
            Err(_) if last => {
                out.end = offset;
                out.torn = Some((offset, bytes.len() as u64 - offset));
                return Ok((out.records, out.end, out.torn));
            }
            Err(e) => {
                return Err(JournalError::Corrupt {
                    path: path.to_path_buf(),
                    line: i + 1,
                    message: e.to_string(),
                });
            }
        }
        offset += line.len() as u64 + 1;
    }
    out.end = complete as u64;
    if tail_len > 0 {
        out.torn = Some((complete as u64, tail_len));
    }
    Ok((out.records, out.end, out.torn))
}

struct Scanned<T> {
    records: Vec<T>,
    end: u64,
    torn: Option<(u64, u64)>,
}

/// Reads a journal file. A missing file is an empty journal.
pub fn read_scan(path: &Path) -> Result<Scan, JournalError> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => f
            .read_to_end(&mut bytes)
            .map_err(|source| JournalError::Io {
                path: path.to_path_buf(),
                source,
            })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Scan::default()),
        Err(source) => {
            return Err(JournalError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    scan(path, &bytes)
}

/// Every complete record of a journal file (a torn tail is ignored).
pub fn read(path: &Path) -> Result<Vec<Record>, JournalError> {
    Ok(read_scan(path)?.records)
}

/// A journal file opened for appending.
#[derive(Debug)]
pub struct JournalFile {
    path: PathBuf,
    file: File,
    len: u64,
}

impl JournalFile {
    /// Opens (creating it and its directories) the file at `path`. A torn
    /// tail is copied to `<path>.torn-<UTC time>` (fsynced) and cut off, so
    /// the next record starts on a line of its own. Returns the file and
    /// what it held.
    pub fn open(path: &Path) -> Result<(Self, Scan), JournalError> {
        let io = |source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let scan = scan(path, &bytes)?;
        if let Some((at, len)) = scan.torn {
            let torn = &bytes[at as usize..(at + len) as usize];
            let side = set_aside_torn(path, &file, at, torn).map_err(io)?;
            tracing::warn!(
                "journal {}: cut off a torn last record ({len} bytes, kept in {})",
                path.display(),
                side.display()
            );
        }
        Ok((
            Self {
                path: path.to_path_buf(),
                file,
                len: scan.end,
            },
            scan,
        ))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `line` and a newline, then flushes and fsyncs. When the write
    /// fails part-way (disk full), the fragment is cut off again before the
    /// error is returned.
    pub fn append_line(&mut self, line: &str) -> Result<(), JournalError> {
        let io = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        append_synced(&self.path, &self.file, self.len, &buf).map_err(io)?;
        self.len += buf.len() as u64;
        Ok(())
    }
}

/// Appends `buf` (whole lines) to `file`, whose length is `len_before`, then
/// flushes and fsyncs (`sync_data`). When the write fails part-way (disk
/// full), the fragment is cut off again before the error is returned, so a
/// later record never glues onto it; if even that cut fails, the next open
/// sets the fragment aside ([`set_aside_torn`]). Shared by the journal and
/// the audit log.
///
/// # Errors
///
/// The write's or the fsync's I/O error.
pub fn append_synced(path: &Path, file: &File, len_before: u64, buf: &[u8]) -> std::io::Result<()> {
    let mut f = file;
    let res = f
        .write_all(buf)
        .and_then(|()| f.flush())
        .and_then(|()| f.sync_data());
    if let Err(e) = res {
        if let Err(cut) = file.set_len(len_before).and_then(|()| file.sync_data()) {
            tracing::warn!(
                "{}: could not cut back a failed append ({cut}); the next open sets the fragment aside",
                path.display()
            );
        }
        return Err(e);
    }
    Ok(())
}

/// Copies the torn tail `torn` (the bytes of `file` from offset `at` to its
/// end) to a new `<path>.torn-<UTC time>` (fsynced), then cuts `file` back
/// to `at` (fsynced), so the next record starts on a line of its own and
/// nothing is lost. Returns the side file's path. Shared by the journal and
/// the audit log.
///
/// # Errors
///
/// I/O errors writing the side file or cutting `file`; `file` is cut only
/// after the side file is on disk.
pub fn set_aside_torn(path: &Path, file: &File, at: u64, torn: &[u8]) -> std::io::Result<PathBuf> {
    let side = torn_path(path);
    let mut s = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&side)?;
    s.write_all(torn)?;
    s.sync_all()?;
    file.set_len(at)?;
    file.sync_all()?;
    Ok(side)
}

/// `<path>.torn-<UTC time with nanoseconds>`.
fn torn_path(path: &Path) -> PathBuf {
    let ts = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.9fZ");
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".torn-{ts}"));
    path.with_file_name(name)
}
