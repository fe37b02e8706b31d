//! Following the journal as an observer: by byte offset, so each change
//! costs a read of the new bytes, not the whole file.

use super::Store;
use super::file::{self, JournalError};
use crate::release::engine::Release;
use crate::release::journal;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

/// Follows the current release of a [`Store`].
#[derive(Debug)]
pub struct Follower {
    store: Store,
    /// The file followed and how far it was read (just past the last
    /// complete record).
    at: Option<(PathBuf, u64)>,
    release: Option<Release>,
}

impl Follower {
    /// A follower that has read nothing yet.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            at: None,
            release: None,
        }
    }

    /// The release as last read.
    pub fn release(&self) -> Option<&Release> {
        self.release.as_ref()
    }

    /// Reads what was appended since the last call. Returns the release when
    /// it changed (`Ok(None)`: nothing new). The current release changing,
    /// the file shrinking (a torn tail cut off) or a line that does not
    /// decode cause a full re-read of that one file, whose errors (with line
    /// numbers) are returned.
    pub fn poll(&mut self) -> Result<Option<Release>, JournalError> {
        let path = match self.store.current_id()? {
            Some(id) => self.store.release_path(&id),
            None => self.store.legacy_path(),
        };
        let len = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => return Err(JournalError::Io { path, source }),
        };
        match &self.at {
            Some((p, off)) if *p == path && *off == len => return Ok(None),
            Some((p, off)) if *p == path && *off < len => {
                if let Some(r) = self.incremental(&path, *off, len)? {
                    return Ok(r);
                }
            }
            _ => {}
        }
        self.full(path)
    }

    fn full(&mut self, path: PathBuf) -> Result<Option<Release>, JournalError> {
        let scan = file::read_scan(&path)?;
        let rel = journal::replay(&scan.records).pop();
        self.at = Some((path, scan.end));
        let changed = rel != self.release;
        self.release = rel;
        Ok(changed.then(|| self.release.clone()).flatten())
    }

    /// Applies complete new records: `Some(changed release or None)`, or
    /// `None` when a full re-read is needed.
    fn incremental(
        &mut self,
        path: &std::path::Path,
        off: u64,
        len: u64,
    ) -> Result<Option<Option<Release>>, JournalError> {
        let io = |source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut f = std::fs::File::open(path).map_err(io)?;
        f.seek(SeekFrom::Start(off)).map_err(io)?;
        let mut buf = Vec::new();
        f.take(len - off).read_to_end(&mut buf).map_err(io)?;
        let Some(last_nl) = buf.iter().rposition(|&b| b == b'\n') else {
            // Only a partial record so far: wait for its newline.
            return Ok(Some(None));
        };
        let mut records = Vec::new();
        for line in buf[..last_nl].split(|&b| b == b'\n') {
            match journal::decode(line) {
                Ok(r) => records.push(r),
                Err(_) => return Ok(None),
            }
        }
        let mut rels: Vec<Release> = self.release.take().into_iter().collect();
        for r in &records {
            journal::apply(&mut rels, r);
        }
        self.release = rels.pop();
        self.at = Some((path.to_path_buf(), off + last_nl as u64 + 1));
        Ok(Some(self.release.clone()))
    }
}
