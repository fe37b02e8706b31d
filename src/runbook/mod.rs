//! Markdown runbooks: sections, runnable blocks, manual checks, progress.
//!
//! A runbook is a plain Markdown file as teams already keep them, read with
//! `pulldown-cmark` (CommonMark plus tables and task lists):
//!
//! * headings are [`Section`]s (levels kept, each knows its parent);
//! * fenced code blocks in a shell language (`sh`, `bash`, `shell`, `zsh`)
//!   are runnable steps ([`BlockKind::Shell`]); fenced `promql` blocks are
//!   queries run against the configured Prometheus ([`BlockKind::Promql`],
//!   [`run::query_table`]);
//! * task-list items `- [ ] text` are manual [`Check`]s;
//! * everything else (other languages, `console` transcripts, indented code
//!   blocks, tables, HTML, prose) is shown, never run: every fenced or
//!   indented code block still appears in [`Runbook::blocks`], in document
//!   order, with `runnable: false`.
//!
//! Fence attributes follow Runme's cell attributes
//! (<https://docs.runme.dev/configuration/cell-level>): the info string
//! ```` ```sh {"name":"check-constraint","confirm":"true","timeout":"30s"} ````
//! carries `name`, `confirm`, `timeout`, `background`, `interactive` and
//! `excludeFromRunAll`; values are JSON strings or booleans (Runme writes
//! `"true"`). Runme's older `{ name=x confirm=true }` form is read too. A
//! malformed attribute object is a [`Problem`] naming its line, and the
//! block is still shown but not runnable ([`Block::not_runnable`] says why).
//!
//! Every block has a stable [`Block::name`]: its `name` attribute, else one
//! derived from its first command line (`kubectl-get-pods`), made unique in
//! the file with `-2`, `-3`, …; and its 1-based [`Block::line`] (the line of
//! the opening fence, or the first line of an indented block).
//!
//! `$VAR` / `${VAR}` in a block come from the config's `[runbooks] vars`, a
//! value the operator gave once (recorded in the [`progress`] file unless
//! the name looks secret), or rolldeck's environment; a block with an
//! unresolved variable is refused with the names ([`run::Refusal`]) and
//! never runs with an empty value. See [`vars`].
//!
//! Running a block ([`run`]) goes through [`crate::exec::Executor`]: the
//! audit line before the spawn, the process group killed at the timeout
//! (default [`DEFAULT_TIMEOUT`], at most [`crate::config::MAX_DURATION`]),
//! control sequences stripped, secrets redacted. Progress (block states,
//! ticked checks, variable values) lives under the state directory, one
//! versioned JSON file per runbook ([`progress`]).

pub mod attrs;
pub mod checklist;
pub mod cli;
pub mod demo;
pub mod parse;
pub mod progress;
pub mod run;
pub mod vars;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

pub use attrs::Attributes;
pub use parse::parse;
pub use progress::{BlockRecord, BlockState, Progress, ProgressError, ProgressStore};
pub use run::{Prepared, QueryTable, Refusal, RunPolicy};

/// Time limit of a block without a `timeout` attribute.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Largest runbook file read, in bytes (a runbook is prose, not data).
pub const MAX_RUNBOOK_BYTES: u64 = 4 * 1024 * 1024;

/// A parsed runbook.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Runbook {
    /// The file it was read from (`None` when parsed from a string).
    pub path: Option<PathBuf>,
    /// The text of the first level-1 heading, if any.
    pub title: Option<String>,
    /// Headings, in document order.
    pub sections: Vec<Section>,
    /// Every fenced or indented code block, in document order.
    pub blocks: Vec<Block>,
    /// Task-list items, in document order.
    pub checks: Vec<Check>,
    /// Everything, in document order, for display.
    pub items: Vec<Item>,
    /// Problems found while reading (malformed attributes, duplicate names).
    pub problems: Vec<Problem>,
}

/// A heading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    /// 1 (`#`) to 6 (`######`).
    pub level: u8,
    /// The heading's text, inline markup removed.
    pub title: String,
    /// 1-based line of the heading.
    pub line: usize,
    /// Index in [`Runbook::sections`] of the nearest earlier heading with a
    /// lower level.
    pub parent: Option<usize>,
}

/// What a code block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// A fenced block in a shell language: run by [`run::run_block`].
    Shell,
    /// A fenced `promql` block: a query ([`run::query_table`]).
    Promql,
    /// Anything else (other languages, no language, `console`, indented):
    /// shown, never run.
    Other,
}

/// A code block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Block {
    /// Unique in the file: the `name` attribute, else derived.
    pub name: String,
    /// Whether [`Block::name`] came from the `name` attribute.
    pub named: bool,
    /// The fence's language (first word of the info string, lower-cased),
    /// `None` for an indented block or a fence without one.
    pub language: Option<String>,
    /// What the block is.
    pub kind: BlockKind,
    /// Fenced (```` ``` ```` or `~~~`) rather than indented.
    pub fenced: bool,
    /// The block's text as written (trailing newline included).
    pub code: String,
    /// The parsed attributes (defaults when none or malformed).
    pub attributes: Attributes,
    /// The attribute object as written (JSON object of the keys given).
    pub raw_attributes: serde_json::Map<String, serde_json::Value>,
    /// Why the block is not runnable, `None` when it is.
    pub not_runnable: Option<String>,
    /// 1-based line of the opening fence (indented: of the first line).
    pub line: usize,
    /// Index of the enclosing section.
    pub section: Option<usize>,
    /// `$VAR` / `${VAR}` the block needs ([`vars::references`]).
    pub variables: Vec<String>,
}

impl Block {
    /// Runnable: a shell or PromQL block whose attributes are sound.
    pub fn runnable(&self) -> bool {
        self.not_runnable.is_none()
    }

    /// The block's time limit: its `timeout` attribute or
    /// [`DEFAULT_TIMEOUT`].
    pub fn timeout(&self) -> Duration {
        self.attributes.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }

    /// A short hash of the code (FNV-1a, 16 hex digits): the progress of a
    /// block whose code changed since it ran is not carried over.
    pub fn code_hash(&self) -> String {
        fnv_hex(&self.code)
    }
}

/// A task-list item (`- [ ] text`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Unique in the file: the text, with `#2`, `#3`, … for repeats.
    pub key: String,
    /// The item's text, inline markup removed.
    pub text: String,
    /// 1-based line of the item.
    pub line: usize,
    /// Index of the enclosing section.
    pub section: Option<usize>,
    /// Written as `- [x]` in the file. Shown, but it does not count as
    /// ticked: ticks come only from the progress file, so a committed `[x]`
    /// never passes a checklist by itself.
    pub checked_in_file: bool,
}

/// One element of the runbook in document order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Item {
    /// [`Runbook::sections`]`[index]`.
    Section {
        /// Index into [`Runbook::sections`].
        index: usize,
    },
    /// [`Runbook::blocks`]`[index]`.
    Block {
        /// Index into [`Runbook::blocks`].
        index: usize,
    },
    /// [`Runbook::checks`]`[index]`.
    Check {
        /// Index into [`Runbook::checks`].
        index: usize,
    },
    /// Markdown between the elements above (paragraphs, tables, HTML,
    /// list items), as written, surrounding blank lines removed.
    Text {
        /// 1-based line of its first line.
        line: usize,
        /// The Markdown source.
        text: String,
    },
}

/// How bad a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The block it names is not runnable.
    Error,
    /// Worth knowing (e.g. an attribute rolldeck does not use).
    Warning,
}

/// Something wrong in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based line.
    pub line: usize,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, e.g. `malformed attributes: expected ',' or '}' at column 17`.
    pub message: String,
    /// The block it concerns (index into [`Runbook::blocks`]).
    pub block: Option<usize>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "line {}: {sev}: {}", self.line, self.message)
    }
}

/// Errors reading a runbook file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file cannot be read.
    #[error("cannot read runbook {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Larger than [`MAX_RUNBOOK_BYTES`].
    #[error("runbook {path} is {size} bytes; at most {max} are read")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// [`MAX_RUNBOOK_BYTES`].
        max: u64,
    },
    /// Not UTF-8.
    #[error("runbook {path} is not UTF-8 text")]
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },
}

impl Runbook {
    /// Reads and parses a runbook file (at most [`MAX_RUNBOOK_BYTES`],
    /// UTF-8).
    ///
    /// # Errors
    ///
    /// [`LoadError`] when the file cannot be read, is too large or is not
    /// UTF-8. Problems inside the Markdown are not errors: they are in
    /// [`Runbook::problems`].
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        use std::io::Read as _;
        let io = |source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        if size > MAX_RUNBOOK_BYTES {
            return Err(LoadError::TooLarge {
                path: path.to_path_buf(),
                size,
                max: MAX_RUNBOOK_BYTES,
            });
        }
        let mut bytes = Vec::new();
        file.take(MAX_RUNBOOK_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > MAX_RUNBOOK_BYTES {
            return Err(LoadError::TooLarge {
                path: path.to_path_buf(),
                size: bytes.len() as u64,
                max: MAX_RUNBOOK_BYTES,
            });
        }
        let text = String::from_utf8(bytes).map_err(|_| LoadError::NotUtf8 {
            path: path.to_path_buf(),
        })?;
        let mut rb = parse(&text);
        rb.path = Some(path.to_path_buf());
        Ok(rb)
    }

    /// The block named `name`.
    pub fn block(&self, name: &str) -> Option<&Block> {
        self.blocks.iter().find(|b| b.name == name)
    }

    /// The block named `name`, or an error listing the names (with a
    /// suggestion for a near miss).
    pub fn block_or_err(&self, name: &str) -> Result<&Block, String> {
        self.block(name).ok_or_else(|| {
            let names: Vec<&str> = self.blocks.iter().map(|b| b.name.as_str()).collect();
            let hint = crate::config::suggest(name, names.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            if names.is_empty() {
                format!("no block named `{name}`: the runbook has no code blocks")
            } else {
                format!(
                    "no block named `{name}`{hint}; blocks: {}",
                    names.join(", ")
                )
            }
        })
    }

    /// The sections from the top down to `index` (titles), e.g.
    /// `["DB pool exhausted", "Diagnose"]`.
    pub fn section_path(&self, index: usize) -> Vec<&str> {
        let mut out = Vec::new();
        let mut at = Some(index);
        while let Some(i) = at {
            let Some(s) = self.sections.get(i) else { break };
            out.push(s.title.as_str());
            at = s.parent;
        }
        out.reverse();
        out
    }

    /// A display name: the title, else the file stem, else `runbook`.
    pub fn display_name(&self) -> String {
        self.title
            .clone()
            .or_else(|| {
                self.path
                    .as_deref()
                    .and_then(Path::file_stem)
                    .map(|s| s.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "runbook".into())
    }
}

/// A runbook file found in a configured directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The name to open it by: the path relative to its directory, without
    /// `.md` (`db-pool-exhausted`, `checklists/pre-deploy`).
    pub name: String,
    /// The file.
    pub path: PathBuf,
}

/// The `.md` / `.markdown` files under `dirs` (recursively, at most 8 levels
/// and 1000 files, hidden entries skipped), sorted by name; the first
/// directory wins when two hold the same name.
///
/// # Errors
///
/// A directory that does not exist or cannot be read, with its path.
pub fn discover(dirs: &[PathBuf]) -> Result<Vec<Entry>, String> {
    let mut out: Vec<Entry> = Vec::new();
    for dir in dirs {
        let mut found = Vec::new();
        walk(dir, dir, 0, &mut found)?;
        found.sort();
        for (name, path) in found {
            if !out.iter().any(|e| e.name == name) {
                out.push(Entry { name, path });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn walk(
    root: &Path,
    dir: &Path,
    depth: usize,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<(), String> {
    if depth > 8 || out.len() >= 1000 {
        return Ok(());
    }
    let rd = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read runbook directory {}: {e}", dir.display()))?;
    for entry in rd {
        let entry =
            entry.map_err(|e| format!("cannot read runbook directory {}: {e}", dir.display()))?;
        let path = entry.path();
        let file_name = entry.file_name();
        if file_name.to_string_lossy().starts_with('.') {
            continue;
        }
        let ft = entry
            .file_type()
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if ft.is_dir() {
            walk(root, &path, depth + 1, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("md" | "markdown")
        ) && out.len() < 1000
        {
            let rel = path.strip_prefix(root).unwrap_or(&path).with_extension("");
            out.push((rel.to_string_lossy().into_owned(), path));
        }
    }
    Ok(())
}

/// Finds a runbook by what an operator or an alert's `runbook_url` names
/// it: an entry's name (`db-pool-exhausted`), its file name
/// (`db-pool-exhausted.md`), or a URL / path ending in one
/// (`https://wiki/runbooks/db-pool-exhausted.md#diagnose`, fragment and
/// query ignored).
pub fn find<'a>(entries: &'a [Entry], wanted: &str) -> Option<&'a Entry> {
    let w = wanted.split(['#', '?']).next().unwrap_or(wanted).trim();
    let w = w.trim_end_matches('/');
    let stem = w
        .strip_suffix(".md")
        .or_else(|| w.strip_suffix(".markdown"))
        .unwrap_or(w);
    entries
        .iter()
        .find(|e| e.name == stem)
        .or_else(|| {
            entries
                .iter()
                .find(|e| stem.ends_with(&format!("/{}", e.name)))
        })
        .or_else(|| {
            let last = stem.rsplit('/').next().unwrap_or(stem);
            let mut m = entries
                .iter()
                .filter(|e| e.name.rsplit('/').next() == Some(last));
            match (m.next(), m.next()) {
                (Some(e), None) => Some(e),
                _ => None,
            }
        })
}

/// `rolldeck check`: one status per runbook in `[runbooks] dirs`
/// (`runbook:NAME`): not ok when it cannot be read or has an error-severity
/// problem (the first is shown), else how many blocks (runnable) and
/// checks it has; a directory that cannot be read is one status too.
pub fn check_statuses(cfg: &crate::config::Config) -> Vec<crate::sources::SourceStatus> {
    use crate::sources::SourceStatus;
    let status = |source: String, ok: bool, detail: String| SourceStatus {
        source,
        ok,
        detail,
        latency_ms: None,
    };
    let entries = match discover(&cfg.runbooks.dirs) {
        Ok(e) => e,
        Err(e) => return vec![status("runbooks".into(), false, e)],
    };
    entries
        .iter()
        .map(|e| match Runbook::load(&e.path) {
            Err(err) => status(format!("runbook:{}", e.name), false, err.to_string()),
            Ok(rb) => match rb.problems.iter().find(|p| p.severity == Severity::Error) {
                Some(p) => status(format!("runbook:{}", e.name), false, p.to_string()),
                None => status(
                    format!("runbook:{}", e.name),
                    true,
                    format!(
                        "{} blocks ({} runnable), {} checks",
                        rb.blocks.len(),
                        rb.blocks.iter().filter(|b| b.runnable()).count(),
                        rb.checks.len()
                    ),
                ),
            },
        })
        .collect()
}

/// FNV-1a of `s` as 16 hex digits.
pub(crate) fn fnv_hex(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}
