//! The timeline file: `<state>/timeline.jsonl`, one [`Entry`] per line
//! with the format version `v`, append-only.
//!
//! The rules are the journal's ([`crate::store::file`], reused, not
//! copied): a record is complete when its line ends with `\n`; each append
//! is flushed and fsynced before it returns, and a write that fails
//! part-way is cut back off ([`crate::store::file::append_synced`]); a torn
//! last line (a crash mid-write) is ignored by readers and set aside to
//! `timeline.jsonl.torn-<time>` by the writer before it appends
//! ([`crate::store::file::set_aside_torn`]); a bad line elsewhere is
//! corruption with its line number; a line from a newer format is refused.
//! Every string is redacted like the journal's
//! ([`crate::redact::Redactor::to_json_line`]).

use super::{Entry, VERSION};
use crate::redact::Redactor;
use crate::release::journal::DecodeError;
use crate::store::JournalError;
use crate::store::file::{append_synced, scan_lines, set_aside_torn};
use std::fs::{File, OpenOptions};
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// The timeline file in state directory `dir`: `dir/timeline.jsonl`.
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join("timeline.jsonl")
}

/// Decodes one line: a JSON object with `v` (at most [`VERSION`]) and the
/// fields of [`Entry`].
///
/// # Errors
///
/// [`DecodeError::Version`] for a newer `v`; [`DecodeError::Invalid`]
/// for anything else that is not an entry.
pub fn decode(line: &[u8]) -> Result<Entry, DecodeError> {
    let v: serde_json::Value = serde_json::from_slice(line)
        .map_err(|e| DecodeError::Invalid(format!("not a timeline entry: {e}")))?;
    match v.get("v").and_then(serde_json::Value::as_u64) {
        Some(n) if n <= VERSION => {}
        Some(n) => {
            return Err(DecodeError::Version(format!(
                "{n} (timeline; this rolldeck reads up to {VERSION})"
            )));
        }
        None => {
            return Err(DecodeError::Invalid(
                "not a timeline entry: no format version `v`".into(),
            ));
        }
    }
    serde_json::from_value(v)
        .map_err(|e| DecodeError::Invalid(format!("not a timeline entry: {e}")))
}

/// Encodes `e` as one line (no newline) with the format version `v`,
/// every string redacted.
pub fn encode(e: &Entry, redactor: &Redactor) -> String {
    let mut m = serde_json::Map::new();
    m.insert("v".into(), VERSION.into());
    if let Ok(serde_json::Value::Object(o)) = serde_json::to_value(e) {
        m.extend(o);
    }
    let mut v = serde_json::Value::Object(m);
    redactor.redact_value(&mut v);
    v.to_string()
}

/// Reads every complete entry of the timeline at `path`, in order. A
/// missing file is an empty timeline; a torn last line is ignored.
///
/// # Errors
///
/// I/O errors, a corrupt line (with its number), a newer format.
pub fn read(path: &Path) -> Result<Vec<Entry>, JournalError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(JournalError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    Ok(scan_lines(path, &bytes, decode)?.0)
}

/// The timeline opened for appending.
#[derive(Debug)]
pub struct Timeline {
    path: PathBuf,
    file: File,
    redactor: Redactor,
}

impl Timeline {
    /// Opens (creating it and its directory) the timeline at `path`; a torn
    /// last line is set aside first. Returns the file and its entries.
    ///
    /// # Errors
    ///
    /// As [`read`].
    pub fn open(path: &Path, redactor: Redactor) -> Result<(Self, Vec<Entry>), JournalError> {
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
        let (entries, _, torn) = scan_lines(path, &bytes, decode)?;
        if let Some((at, len)) = torn {
            let side = set_aside_torn(path, &file, at, &bytes[at as usize..(at + len) as usize])
                .map_err(io)?;
            tracing::warn!(
                "timeline {}: cut off a torn last line ({len} bytes, kept in {})",
                path.display(),
                side.display()
            );
        }
        Ok((
            Self {
                path: path.to_path_buf(),
                file,
                redactor,
            },
            entries,
        ))
    }

    /// Appends one entry (redacted), flushed and fsynced.
    ///
    /// # Errors
    ///
    /// The write's or the fsync's I/O error (a partial line is cut off).
    pub fn append(&mut self, e: &Entry) -> Result<(), JournalError> {
        let mut line = encode(e, &self.redactor).into_bytes();
        line.push(b'\n');
        let io = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        let before = self.file.metadata().map_err(io)?.len();
        append_synced(&self.path, &self.file, before, &line).map_err(io)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Kind, Severity};
    use super::*;
    use jiff::Timestamp;

    fn entry(kind: Kind, text: &str) -> Entry {
        Entry {
            ts: Timestamp::from_second(1_800_000_000).unwrap(),
            incident: "INC-1".into(),
            operator: "ana@h".into(),
            kind,
            text: text.into(),
            severity: (kind == Kind::Start).then_some(Severity::P1),
            key: None,
        }
    }

    #[test]
    fn appends_survive_a_torn_tail_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = path_in(dir.path());
        let (mut t, got) = Timeline::open(&p, Redactor::new([])).unwrap();
        assert!(got.is_empty());
        t.append(&entry(Kind::Start, "checkout down")).unwrap();
        t.append(&entry(Kind::Note, "one")).unwrap();
        drop(t);
        // A crash mid-write leaves half a line.
        use std::io::Write as _;
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(br#"{"v":1,"ts":"2027-"#).unwrap();
        drop(f);
        assert_eq!(read(&p).unwrap().len(), 2, "readers ignore the torn tail");
        let (mut t, got) = Timeline::open(&p, Redactor::new([])).unwrap();
        assert_eq!(got.len(), 2);
        t.append(&entry(Kind::Note, "two")).unwrap();
        let all = read(&p).unwrap();
        let texts: Vec<&str> = all.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(texts, ["checkout down", "one", "two"]);
        let torn: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".torn-"))
            .collect();
        assert_eq!(torn.len(), 1, "the fragment is kept aside");
    }

    #[test]
    fn secrets_never_reach_the_file_and_newer_formats_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = path_in(dir.path());
        let (mut t, _) = Timeline::open(&p, Redactor::new(["hunter2-secret".into()])).unwrap();
        t.append(&entry(Kind::Note, "password hunter2-secret seen in log"))
            .unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(!text.contains("hunter2-secret"), "{text}");
        assert!(text.contains(r#""v":1"#), "{text}");
        std::fs::write(&p, format!("{}\n{}\n", r#"{"v":9,"x":1}"#, text.trim())).unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains(":1:") && e.contains("9"), "{e}");
        std::fs::write(&p, format!("garbage\n{}", text)).unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(
            e.contains(":1:") && e.contains("not a timeline entry"),
            "{e}"
        );
    }
}
