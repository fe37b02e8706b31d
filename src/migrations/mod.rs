//! Database migrations: where the schema stands (current revision(s),
//! head(s), pending migrations in apply order, dirty or failed state,
//! applied migrations whose files are gone) and a lint of what the pending
//! migrations would do (destroying data, locking tables, no way back).
//!
//! The applied state comes from the tool's own version table, read over a
//! PostgreSQL connection ([`db`]), or from a command's output
//! (`alembic current`); the available migrations from the directory
//! ([`disk`]). Tables and file names follow each tool's documentation:
//!
//! | tool | table | files |
//! | --- | --- | --- |
//! | `alembic` | `alembic_version(version_num)`, one row per applied head | `*.py` with `revision` / `down_revision` ([`python`]) |
//! | `golang-migrate` | `schema_migrations(version bigint, dirty boolean)`, one row | `N_name.up.sql` / `N_name.down.sql` |
//! | `flyway` | `flyway_schema_history(installed_rank, version, description, type, script, checksum, installed_by, installed_on, execution_time, success)` | `V<ver>__name.sql`, undo `U<ver>__name.sql` |
//! | `sqlx` | `_sqlx_migrations(version bigint, description, installed_on, success, checksum, execution_time)` | `N_name.sql` or `N_name.up.sql` / `N_name.down.sql` |
//! | `rails` | `schema_migrations(version varchar)`, one row per applied migration | `N_name.rb` ([`ruby`]) |
//!
//! Safety: a source that cannot be read (no connection, wrong password,
//! missing table, unreadable directory, a malformed revision file) is
//! *down* with the reason, never "at head". The database URL is a secret
//! ([`url_secrets`]); reasons come from the driver's messages, which never
//! carry the password, and every text is redacted again where it is shown.
//! Everything read is capped ([`MAX_ROWS`], [`MAX_FILES`],
//! [`MAX_FILE_BYTES`], [`MAX_COMMAND_OUTPUT`]).

pub mod db;
pub mod disk;
pub mod lint;
pub mod python;
pub mod ruby;

use crate::config::MigrationSource;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Most rows read from a version table; more is an error naming the cap.
pub const MAX_ROWS: i64 = 10_000;
/// Most files listed in a migrations directory; more is an error.
pub const MAX_FILES: usize = 10_000;
/// Largest migration file read (bytes, 1 MiB); a larger pending file gets
/// an `unparsed` error finding, a larger Alembic revision file makes the
/// source down (its graph would be incomplete).
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// Most bytes of a `command` source's stdout read (1 MiB); more is an error.
pub const MAX_COMMAND_OUTPUT: u64 = 1 << 20;

/// The migration tool whose conventions a source follows.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    /// Alembic (SQLAlchemy).
    Alembic,
    /// Flyway.
    Flyway,
    /// golang-migrate.
    GolangMigrate,
    /// sqlx (Rust).
    Sqlx,
    /// Rails / ActiveRecord.
    Rails,
}

impl Tool {
    /// The config word (`golang-migrate`).
    pub fn as_str(self) -> &'static str {
        match self {
            Tool::Alembic => "alembic",
            Tool::Flyway => "flyway",
            Tool::GolangMigrate => "golang-migrate",
            Tool::Sqlx => "sqlx",
            Tool::Rails => "rails",
        }
    }

    /// The tool's default version table.
    pub fn default_table(self) -> &'static str {
        match self {
            Tool::Alembic => "alembic_version",
            Tool::Flyway => "flyway_schema_history",
            Tool::GolangMigrate | Tool::Rails => "schema_migrations",
            Tool::Sqlx => "_sqlx_migrations",
        }
    }
}

/// How bad a lint finding is.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Locks a table, breaks the running code or leaves no way back.
    Warning,
    /// Destroys data (or could not be checked: never a pass).
    Error,
}

/// One lint finding in a pending migration.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Finding {
    /// `error` or `warning`.
    pub severity: Severity,
    /// The rule, e.g. `drop-column` (see [`lint`] for the list).
    pub rule: String,
    /// 1-based line in the migration's file; `null` for the whole file
    /// (e.g. a missing `.down.sql`).
    pub line: Option<u32>,
    /// What it does and why it matters.
    pub message: String,
}

/// A migration not yet applied.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Pending {
    /// Its revision (Alembic id) or version.
    pub revision: String,
    /// Its file (the up file), as found under the directory.
    pub file: String,
    /// Lint findings, in file order.
    pub findings: Vec<Finding>,
}

/// Where one migration source stands: the `rolldeck migrations --json`
/// object (one per source) and the Migrations pane's data.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Status {
    /// The source's name.
    pub name: String,
    /// The tool.
    pub tool: Tool,
    /// Whether the source could be read; when false, `error` says why and
    /// the other fields hold what could be read (the directory's pending
    /// list and findings when only the database is out of reach).
    pub ok: bool,
    /// Why the source is down.
    pub error: Option<String>,
    /// The applied revision(s): Alembic's applied heads, else the highest
    /// applied version.
    pub current: Vec<String>,
    /// The head(s) on disk (several: an Alembic branch not merged).
    pub heads: Vec<String>,
    /// Migrations on disk not applied, in apply order.
    pub pending: Vec<Pending>,
    /// golang-migrate's dirty flag, or sqlx/Flyway failed rows: a migration
    /// stopped half-way and the schema is in an unknown state.
    pub dirty: bool,
    /// Versions whose last run failed (Flyway, sqlx; golang-migrate's dirty
    /// version).
    pub failed: Vec<String>,
    /// Applied in the database but not on disk.
    pub missing_files: Vec<String>,
    /// Other things to know (multiple heads, files not understood).
    pub warnings: Vec<String>,
    /// The source has neither `database_url` nor `command`: only the
    /// directory was read, so every migration is listed as pending and the
    /// applied state is unknown (never "at head").
    #[serde(default)]
    pub directory_only: bool,
    /// The newest applied migrations (at most [`MAX_APPLIED_SHOWN`],
    /// newest first) that have an error finding: what a rollback of the
    /// code does not bring back (a dropped column stays dropped).
    #[serde(default)]
    pub applied_destructive: Vec<Pending>,
}

/// Most applied destructive migrations listed in a [`Status`].
pub const MAX_APPLIED_SHOWN: usize = 3;

fn destructive(m: &disk::Migration) -> bool {
    m.findings.iter().any(|f| f.severity == Severity::Error)
}

impl Status {
    /// A source read so far: up, nothing current, pending or wrong.
    pub fn new(name: &str, tool: Tool) -> Status {
        Status {
            name: name.to_string(),
            tool,
            ok: true,
            error: None,
            current: Vec::new(),
            heads: Vec::new(),
            pending: Vec::new(),
            dirty: false,
            failed: Vec::new(),
            missing_files: Vec::new(),
            warnings: Vec::new(),
            directory_only: false,
            applied_destructive: Vec::new(),
        }
    }

    /// Whether any pending migration has an error-severity finding.
    pub fn has_error_finding(&self) -> bool {
        self.pending
            .iter()
            .any(|p| p.findings.iter().any(|f| f.severity == Severity::Error))
    }

    /// `Ok` when the source was read, nothing is pending, nothing is dirty
    /// or failed, and every head is applied; else the reason (for a
    /// `traffic` step requiring migrations at head, and the `migration`
    /// step's final check).
    pub fn at_head_and_clean(&self) -> Result<(), String> {
        let n = &self.name;
        if !self.ok {
            return Err(format!(
                "migrations `{n}` unknown: {}",
                self.error.as_deref().unwrap_or("source down")
            ));
        }
        if self.directory_only {
            return Err(format!(
                "migrations `{n}` unknown: the applied state is not read (directory only: no database_url or command)"
            ));
        }
        if self.dirty || !self.failed.is_empty() {
            return Err(format!(
                "migrations `{n}` dirty/failed at {}",
                if self.failed.is_empty() {
                    self.current.join(", ")
                } else {
                    self.failed.join(", ")
                }
            ));
        }
        if !self.pending.is_empty() {
            let list: Vec<&str> = self.pending.iter().map(|p| p.revision.as_str()).collect();
            return Err(format!(
                "migrations `{n}` not at head: {} pending ({})",
                list.len(),
                list.join(", ")
            ));
        }
        let cur: BTreeSet<&String> = self.current.iter().collect();
        let heads: BTreeSet<&String> = self.heads.iter().collect();
        if cur != heads {
            return Err(format!(
                "migrations `{n}` not at head: current {} ≠ head {}",
                none_if_empty(&self.current),
                none_if_empty(&self.heads)
            ));
        }
        Ok(())
    }

    fn down(&mut self, reason: impl Into<String>) {
        self.ok = false;
        self.error = Some(reason.into());
    }
}

fn none_if_empty(v: &[String]) -> String {
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(", ")
    }
}

/// The secrets in a database URL: the whole URL and its password, as
/// written and as the driver parses it (`postgres://u:p@h/db` and
/// `host=h password=p` forms).
pub fn url_secrets(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    out.extend(crate::config::url_secrets(url));
    if let Ok(c) = url.parse::<tokio_postgres::Config>()
        && let Some(p) = c.get_password()
    {
        out.push(String::from_utf8_lossy(p).into_owned());
    }
    out.retain(|s| !s.is_empty());
    out
}

/// Receives (source index, key or "", message, help) for each problem.
pub type ProblemSink<'a> = dyn FnMut(usize, &str, String, Option<String>) + 'a;

/// Checks at config load what serde cannot: names unique and not empty,
/// at most one of `database_url`/`command` (neither: directory only),
/// `command` only for Alembic, a
/// parseable URL (the error never quotes it), a table name that is an
/// identifier, a directory that exists, argv not empty. Calls `problem`
/// with (source index, key or "", message, help).
pub fn validate_sources(sources: &[MigrationSource], problem: &mut ProblemSink<'_>) {
    let mut names = BTreeSet::new();
    for (i, m) in sources.iter().enumerate() {
        if m.name.trim().is_empty() {
            problem(i, "name", "must not be empty".into(), None);
        } else if !names.insert(m.name.as_str()) {
            problem(i, "name", format!("duplicate name `{}`", m.name), None);
        }
        match (&m.database_url, &m.command) {
            (Some(_), Some(_)) => problem(
                i,
                "command",
                "set either database_url or command, not both".into(),
                None,
            ),
            // Directory only: lint and the pending list, applied state unknown.
            (None, None) => {}
            (Some(u), None) => {
                if let Err(e) = u.parse::<tokio_postgres::Config>() {
                    problem(
                        i,
                        "database_url",
                        format!("not a PostgreSQL connection URL: {e}"),
                        Some(
                            "postgres://USER:PASSWORD@HOST:PORT/DB or host=… user=… dbname=…"
                                .into(),
                        ),
                    );
                }
            }
            (None, Some(argv)) => {
                if !db::COMMAND_TOOLS.contains(&m.tool) {
                    problem(
                        i,
                        "command",
                        format!(
                            "a command source parses `alembic current`, `flyway info` or `migrate version` output; tool `{}` needs database_url",
                            m.tool.as_str()
                        ),
                        None,
                    );
                }
                if argv.is_empty() || argv[0].trim().is_empty() {
                    problem(i, "command", "must name a program".into(), None);
                }
            }
        }
        for (key, argv) in [("upgrade", &m.upgrade), ("downgrade", &m.downgrade)] {
            if let Some(a) = argv
                && (a.is_empty() || a[0].trim().is_empty())
            {
                problem(i, key, "must name a program".into(), None);
            }
        }
        if let Some(t) = &m.table
            && !is_table_name(t)
        {
            problem(
                i,
                "table",
                format!(
                    "`{}` is not a table name (`name` or `schema.name`: letters, digits, `_`)",
                    crate::config::clean(t)
                ),
                None,
            );
        }
        if !m.directory.is_dir() {
            problem(
                i,
                "directory",
                format!(
                    "migrations directory {} does not exist",
                    m.directory.display()
                ),
                None,
            );
        }
    }
}

/// `name` or `schema.name`, each `[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes
/// (PostgreSQL's identifier limit).
fn is_table_name(t: &str) -> bool {
    let parts: Vec<&str> = t.split('.').collect();
    parts.len() <= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 63
                && p.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// What the database (or command) says is applied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// Alembic: the rows of `alembic_version`; linear tools: every applied
    /// version (golang-migrate: its one version).
    pub versions: Vec<String>,
    /// golang-migrate's dirty flag.
    pub dirty: bool,
    /// Versions whose run failed (Flyway/sqlx `success = false`).
    pub failed: Vec<String>,
    /// Flyway: the baseline version, below which files are not pending.
    pub baseline: Option<String>,
}

/// Reads one source: the directory, then the database or command, and
/// combines them. Never fails: what cannot be read makes the status down
/// with the reason (the directory's pending list is still given when only
/// the database is out of reach).
pub async fn read(src: &MigrationSource) -> Status {
    let mut st = Status::new(&src.name, src.tool);
    // Listing and reading files blocks: off the async workers.
    let (tool, dir) = (src.tool, src.directory.clone());
    let disk = match tokio::task::spawn_blocking(move || disk::read(tool, &dir)).await {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => {
            st.down(e);
            return st;
        }
        Err(e) => {
            st.down(format!("reading the migrations directory failed: {e}"));
            return st;
        }
    };
    st.warnings.extend(disk.warnings.iter().cloned());
    let applied = match (&src.database_url, &src.command) {
        (Some(url), _) => db::read_applied(src, url).await,
        (None, Some(argv)) => db::command_applied(src.tool, argv, src.timeout).await,
        (None, None) => {
            // Directory only: every file listed, nothing claimed applied.
            combine(&mut st, &disk, &Applied::default());
            st.current.clear();
            st.directory_only = true;
            return st;
        }
    };
    match applied {
        Ok(a) => combine(&mut st, &disk, &a),
        Err(e) => {
            // Out of reach: everything on disk counts as pending, so the
            // operator still sees the findings, but nothing is "at head".
            combine(&mut st, &disk, &Applied::default());
            st.current.clear();
            st.down(e);
        }
    }
    st
}

/// Fills `st` from the files and the applied state.
fn combine(st: &mut Status, disk: &disk::Disk, applied: &Applied) {
    match st.tool {
        Tool::Alembic => combine_graph(st, disk, applied),
        _ => combine_linear(st, disk, applied),
    }
    if st.heads.len() > 1 {
        st.warnings.push(format!(
            "multiple heads: {} (merge them, e.g. `alembic merge heads`)",
            st.heads.join(", ")
        ));
    }
}

fn pending_of(m: &disk::Migration) -> Pending {
    Pending {
        revision: m.revision.clone(),
        file: m.file.display().to_string(),
        findings: m.findings.clone(),
    }
}

/// Alembic: a revision graph. Applied = every ancestor of an applied head;
/// pending = the rest, parents before children (ties in file-name order).
fn combine_graph(st: &mut Status, disk: &disk::Disk, applied: &Applied) {
    let by_id: BTreeMap<&str, &disk::Migration> = disk
        .migrations
        .iter()
        .map(|m| (m.revision.as_str(), m))
        .collect();
    let mut children: BTreeSet<&str> = BTreeSet::new();
    for m in &disk.migrations {
        for d in &m.down {
            children.insert(d.as_str());
            if !by_id.contains_key(d.as_str()) {
                st.warnings.push(format!(
                    "revision {} revises {d}, which no file defines",
                    m.revision
                ));
            }
        }
    }
    st.heads = disk
        .migrations
        .iter()
        .filter(|m| !children.contains(m.revision.as_str()))
        .map(|m| m.revision.clone())
        .collect();
    st.current = applied.versions.clone();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut stack: Vec<&str> = Vec::new();
    for c in &applied.versions {
        if by_id.contains_key(c.as_str()) {
            stack.push(c.as_str());
        } else {
            st.missing_files.push(c.clone());
        }
    }
    while let Some(r) = stack.pop() {
        if done.insert(r)
            && let Some(m) = by_id.get(r)
        {
            stack.extend(m.down.iter().map(String::as_str));
        }
    }
    // Applied and destructive, nearest the applied heads first.
    let mut queue: std::collections::VecDeque<&str> =
        applied.versions.iter().map(String::as_str).collect();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    while let Some(r) = queue.pop_front() {
        if st.applied_destructive.len() >= MAX_APPLIED_SHOWN || !seen.insert(r) {
            continue;
        }
        if let Some(m) = by_id.get(r) {
            if destructive(m) {
                st.applied_destructive.push(pending_of(m));
            }
            queue.extend(m.down.iter().map(String::as_str));
        }
    }
    if !st.missing_files.is_empty() {
        st.warnings.push(format!(
            "applied revision(s) {} have no file: pending list may be wrong",
            st.missing_files.join(", ")
        ));
    }
    // Kahn's algorithm over what is not applied; `disk.migrations` is in
    // file-name order, so ties keep it.
    let mut left: Vec<&disk::Migration> = disk
        .migrations
        .iter()
        .filter(|m| !done.contains(m.revision.as_str()))
        .collect();
    loop {
        let ready = left.iter().position(|m| {
            m.down
                .iter()
                .all(|d| done.contains(d.as_str()) || !by_id.contains_key(d.as_str()))
        });
        let Some(i) = ready else { break };
        let m = left.remove(i);
        done.insert(m.revision.as_str());
        st.pending.push(pending_of(m));
    }
    if !left.is_empty() {
        let ids: Vec<&str> = left.iter().map(|m| m.revision.as_str()).collect();
        st.down(format!(
            "the revision graph has a cycle through {}",
            ids.join(", ")
        ));
    }
}

/// Versioned tools: files ordered by version; applied = the table's rows
/// (golang-migrate: every file up to its one version).
fn combine_linear(st: &mut Status, disk: &disk::Disk, applied: &Applied) {
    let key = |v: &str| disk::version_key(st.tool, v);
    st.heads = disk
        .migrations
        .last()
        .map(|m| vec![m.revision.clone()])
        .unwrap_or_default();
    st.failed = applied.failed.clone();
    st.dirty = applied.dirty || !applied.failed.is_empty();
    let on_disk: BTreeSet<Vec<u64>> = disk.migrations.iter().map(|m| m.key.clone()).collect();
    let baseline = applied.baseline.as_deref().and_then(key);
    let applied_keys: BTreeSet<Vec<u64>> = match st.tool {
        Tool::GolangMigrate => match applied.versions.first().and_then(|v| key(v)) {
            Some(cur) => on_disk
                .iter()
                .filter(|k| **k <= cur)
                .cloned()
                .chain(std::iter::once(cur.clone()))
                .collect(),
            None => BTreeSet::new(),
        },
        _ => applied.versions.iter().filter_map(|v| key(v)).collect(),
    };
    if let Some(max) = applied.versions.iter().max_by_key(|v| key(v)) {
        st.current = vec![max.clone()];
    }
    for v in &applied.versions {
        if let Some(k) = key(v)
            && !on_disk.contains(&k)
        {
            st.missing_files.push(v.clone());
        }
    }
    st.applied_destructive = disk
        .migrations
        .iter()
        .rev()
        .filter(|m| applied_keys.contains(&m.key) && destructive(m))
        .take(MAX_APPLIED_SHOWN)
        .map(pending_of)
        .collect();
    for m in &disk.migrations {
        let below_baseline = baseline.as_ref().is_some_and(|b| m.key <= *b);
        if !applied_keys.contains(&m.key) && !below_baseline {
            st.pending.push(pending_of(m));
        }
    }
}

/// The action name a `migration` plan step runs as (the engine treats it as
/// an action step; the runtime recognises the name): `migration:SOURCE`
/// or `migration-round-trip:SOURCE`.
pub fn step_action(source: &str, round_trip: bool) -> String {
    if round_trip {
        format!("migration-round-trip:{source}")
    } else {
        format!("migration:{source}")
    }
}

/// The source and round-trip flag of a [`step_action`] name.
pub fn parse_step_action(action: &str) -> Option<(&str, bool)> {
    if let Some(s) = action.strip_prefix("migration-round-trip:") {
        return Some((s, true));
    }
    action.strip_prefix("migration:").map(|s| (s, false))
}

/// The action name of a `traffic` step with `require_migrations = true`:
/// `migrations-at-head:ACTION`. Raising the weight runs ACTION only when
/// every migration source is at head and clean; setting it to 0 always
/// runs (a way back is never blocked).
pub fn gate_action(traffic_action: &str) -> String {
    format!("migrations-at-head:{traffic_action}")
}

/// The traffic action behind a [`gate_action`] name.
pub fn parse_gate_action(action: &str) -> Option<&str> {
    action.strip_prefix("migrations-at-head:")
}

/// Whether every source is at head and clean: `Err` with the reasons.
pub async fn gate(sources: &[MigrationSource]) -> Result<(), String> {
    let bad: Vec<String> = read_all(sources)
        .await
        .iter()
        .filter_map(|s| s.at_head_and_clean().err())
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(bad.join("; "))
    }
}

/// Reads every source, concurrently.
pub async fn read_all(sources: &[MigrationSource]) -> Vec<Status> {
    futures::future::join_all(sources.iter().map(read)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn graph(revs: &[(&str, &[&str])]) -> disk::Disk {
        disk::Disk {
            migrations: revs
                .iter()
                .map(|(r, d)| disk::Migration {
                    revision: r.to_string(),
                    key: Vec::new(),
                    down: d.iter().map(|s| s.to_string()).collect(),
                    file: format!("{r}.py").into(),
                    findings: Vec::new(),
                })
                .collect(),
            warnings: Vec::new(),
        }
    }

    fn status(tool: Tool) -> Status {
        Status::new("app", tool)
    }

    #[test]
    fn branches_merges_and_multiple_heads() {
        // a ← b ← (c, d) ; m merges c and d; e is a second head off b.
        let d = graph(&[
            ("a", &[]),
            ("b", &["a"]),
            ("c", &["b"]),
            ("d", &["b"]),
            ("e", &["b"]),
            ("m", &["c", "d"]),
        ]);
        let mut st = status(Tool::Alembic);
        let applied = Applied {
            versions: vec!["c".into()],
            ..Applied::default()
        };
        combine(&mut st, &d, &applied);
        assert_eq!(st.heads, vec!["e", "m"]);
        let p: Vec<&str> = st.pending.iter().map(|p| p.revision.as_str()).collect();
        assert_eq!(p, vec!["d", "e", "m"], "parents before children");
        assert!(st.warnings.iter().any(|w| w.contains("multiple heads")));
        assert!(st.at_head_and_clean().is_err());

        // Both heads applied: at head.
        let mut st = status(Tool::Alembic);
        let applied = Applied {
            versions: vec!["m".into(), "e".into()],
            ..Applied::default()
        };
        combine(&mut st, &d, &applied);
        assert!(st.pending.is_empty());
        assert_eq!(st.at_head_and_clean(), Ok(()));

        // An applied revision with no file.
        let mut st = status(Tool::Alembic);
        let applied = Applied {
            versions: vec!["zz".into()],
            ..Applied::default()
        };
        combine(&mut st, &d, &applied);
        assert_eq!(st.missing_files, vec!["zz"]);
    }

    #[test]
    fn applied_destructive_migrations_stay_listed_newest_first() {
        let err = Finding {
            severity: Severity::Error,
            rule: "drop-column".into(),
            line: Some(1),
            message: String::new(),
        };
        // Alembic: a ← b(destructive) ← c(destructive) ← d; at c.
        let mut d = graph(&[("a", &[]), ("b", &["a"]), ("c", &["b"]), ("d", &["c"])]);
        for m in &mut d.migrations {
            if m.revision == "b" || m.revision == "c" || m.revision == "d" {
                m.findings.push(err.clone());
            }
        }
        let mut st = status(Tool::Alembic);
        let applied = Applied {
            versions: vec!["c".into()],
            ..Applied::default()
        };
        combine(&mut st, &d, &applied);
        let revs: Vec<&str> = st
            .applied_destructive
            .iter()
            .map(|p| p.revision.as_str())
            .collect();
        assert_eq!(revs, vec!["c", "b"], "d is pending, not applied");
        // Linear: versions 1..=5 all destructive, at 5: the newest three.
        let mut lin = disk::Disk::default();
        for v in 1..=5u64 {
            lin.migrations.push(disk::Migration {
                revision: v.to_string(),
                key: vec![v],
                down: Vec::new(),
                file: format!("{v}_x.up.sql").into(),
                findings: vec![err.clone()],
            });
        }
        let mut st = status(Tool::GolangMigrate);
        let applied = Applied {
            versions: vec!["4".into()],
            ..Applied::default()
        };
        combine(&mut st, &lin, &applied);
        let revs: Vec<&str> = st
            .applied_destructive
            .iter()
            .map(|p| p.revision.as_str())
            .collect();
        assert_eq!(revs, vec!["4", "3", "2"]);
    }

    #[test]
    fn a_cycle_is_a_source_down() {
        let d = graph(&[("a", &["b"]), ("b", &["a"])]);
        let mut st = status(Tool::Alembic);
        combine(&mut st, &d, &Applied::default());
        assert!(!st.ok);
        assert!(st.at_head_and_clean().is_err());
    }

    #[test]
    fn config_errors_name_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "service = \"s\"\n[environment]\nname = \"e\"\n[[sources.migrations]]\nname = \"app\"\ntool = \"sqlx\"\ndirectory = \"{}\"\ncommand = [\"sqlx\", \"migrate\", \"info\"]\ntable = \"x;drop\"\ninterval = \"10ms\"\n[plans.p]\n[[plans.p.steps]]\nkind = \"pause\"\n",
            dir.path().display()
        );
        let e = crate::config::parse(&text, Path::new("r.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("r.toml:8:"), "{e}");
        assert!(e.contains("alembic current"), "{e}");
        assert!(e.contains("r.toml:9:"), "{e}");
        assert!(e.contains("interval"), "{e}");
        let typo = text.replace("tool = \"sqlx\"", "tool = \"flyweight\"");
        let e = crate::config::parse(&typo, Path::new("r.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("r.toml:6:"), "{e}");
        assert!(e.contains("did you mean `flyway`"), "{e}");
        let missing = text.replace(&dir.path().display().to_string(), "/nonexistent/x");
        let e = crate::config::parse(&missing, Path::new("r.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("r.toml:7:") && e.contains("does not exist"),
            "{e}"
        );
    }

    #[test]
    fn migration_steps_are_checked_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let base = format!(
            "service = \"s\"\n[environment]\nname = \"e\"\n[[sources.migrations]]\nname = \"app\"\ntool = \"alembic\"\ndirectory = \"{}\"\ndatabase_url = \"postgres://h/db\"\nupgrade = [\"alembic\", \"upgrade\", \"head\"]\n[plans.p]\n[[plans.p.steps]]\n",
            dir.path().display()
        );
        let err = |steps: &str| {
            crate::config::parse(&format!("{base}{steps}"), Path::new("r.toml"))
                .unwrap_err()
                .to_string()
        };
        let e = err("kind = \"migration\"\nsource = \"ap\"\n");
        assert!(
            e.contains("r.toml:13:") && e.contains("did you mean `app`"),
            "{e}"
        );
        let e = err("kind = \"migration\"\nround_trip = true\n");
        assert!(
            e.contains("r.toml:13:") && e.contains("needs `downgrade`"),
            "{e}"
        );
        let e = err("kind = \"pause\"\nround_trip = true\n");
        assert!(e.contains("does not apply"), "{e}");
        let ok = crate::config::parse(
            &format!("{base}kind = \"migration\"\n"),
            Path::new("r.toml"),
        )
        .unwrap();
        let plan = crate::release::Plan::from_config(&ok, None).unwrap();
        assert_eq!(plan.steps[0].name, "migration app");
        assert!(ok.secrets.iter().any(|s| s == "postgres://h/db"));
    }

    #[test]
    fn the_url_and_its_password_are_secrets() {
        let s = url_secrets("postgres://u:p%40ss@h:5432/db");
        assert!(s.contains(&"postgres://u:p%40ss@h:5432/db".to_string()));
        assert!(s.iter().any(|x| x == "p@ss"), "{s:?}");
        let s = url_secrets("host=h user=u password=hunter2");
        assert!(s.iter().any(|x| x == "hunter2"), "{s:?}");
    }
}
