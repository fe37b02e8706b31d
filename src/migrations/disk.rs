//! The migrations on disk, per tool, with the lint findings of each.
//!
//! File names recognised (others are listed in [`Disk::warnings`] when
//! they look like migrations, and ignored):
//!
//! * Alembic: every `*.py` file not starting with `_`; its `revision` and
//!   `down_revision` come from [`super::python::parse_revision`].
//! * golang-migrate: `{version}_{title}.up.sql` and `.down.sql`, version an
//!   unsigned integer (its documented `{version}_{title}.{up|down}.{ext}`).
//! * Flyway: `V{version}__{description}.sql` (version digits separated by
//!   `.` or `_`), undo `U{version}__{description}.sql`; repeatable `R__…`
//!   files have no version and are not part of the pending list.
//! * sqlx: `{version}_{description}.sql` or reversible
//!   `{version}_{description}.up.sql` / `.down.sql`.
//! * Rails: `{version}_{name}.rb` (a timestamp version).

use super::{Finding, MAX_FILE_BYTES, MAX_FILES, Severity, Tool, lint, python, ruby};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One migration found on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Migration {
    /// Its revision (Alembic) or version as written in the file name
    /// (leading zeros kept: `000001`).
    pub revision: String,
    /// The version as numbers, for ordering (Alembic: empty).
    pub key: Vec<u64>,
    /// Alembic: the revisions it revises (several for a merge).
    pub down: Vec<String>,
    /// The up file.
    pub file: PathBuf,
    /// Lint findings of applying it (and of its way back).
    pub findings: Vec<Finding>,
}

/// Every migration of a directory, in apply order for versioned tools
/// (file-name order for Alembic).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Disk {
    /// The migrations.
    pub migrations: Vec<Migration>,
    /// Files not understood, duplicate versions.
    pub warnings: Vec<String>,
}

/// A version string as numbers (`1.2_3` → `[1, 2, 3]`, trailing zeros
/// dropped so `1.0` = `1`); `None` if it is not digits and separators.
/// Alembic revisions have no order: `None`.
pub fn version_key(tool: Tool, v: &str) -> Option<Vec<u64>> {
    if tool == Tool::Alembic || v.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    for p in v.split(['.', '_']) {
        parts.push(p.parse::<u64>().ok()?);
    }
    while parts.len() > 1 && parts.last() == Some(&0) {
        parts.pop();
    }
    Some(parts)
}

/// Reads the file, refusing more than [`MAX_FILE_BYTES`].
pub fn read_capped(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let f =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut buf = Vec::new();
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "{} is larger than {} bytes",
            path.display(),
            MAX_FILE_BYTES
        ));
    }
    String::from_utf8(buf).map_err(|_| format!("{} is not UTF-8", path.display()))
}

/// Lists and reads the directory. Errors (the source is down): the
/// directory cannot be read, has more than [`MAX_FILES`] entries, or an
/// Alembic file's revision cannot be read.
pub fn read(tool: Tool, dir: &Path) -> Result<Disk, String> {
    let mut names = Vec::new();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read migrations directory {}: {e}", dir.display()))?;
    for e in entries {
        let e =
            e.map_err(|e| format!("cannot read migrations directory {}: {e}", dir.display()))?;
        if names.len() >= MAX_FILES {
            return Err(format!(
                "migrations directory {} has more than {MAX_FILES} entries",
                dir.display()
            ));
        }
        if e.file_type().is_ok_and(|t| t.is_file()) {
            names.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    match tool {
        Tool::Alembic => read_alembic(dir, &names),
        _ => read_versioned(tool, dir, &names),
    }
}

fn read_alembic(dir: &Path, names: &[String]) -> Result<Disk, String> {
    let mut disk = Disk::default();
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for n in names
        .iter()
        .filter(|n| n.ends_with(".py") && !n.starts_with('_'))
    {
        let path = dir.join(n);
        let text = read_capped(&path)?;
        let rev = python::parse_revision(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if let Some(first) = seen.insert(rev.revision.clone(), path.clone()) {
            return Err(format!(
                "revision {} is defined twice: {} and {}",
                rev.revision,
                first.display(),
                path.display()
            ));
        }
        disk.migrations.push(Migration {
            revision: rev.revision,
            key: Vec::new(),
            down: rev.down_revision,
            file: path,
            findings: python::lint(&text),
        });
    }
    Ok(disk)
}

/// What a versioned file name says.
struct Name<'a> {
    version: &'a str,
    undo: bool,
}

fn parse_name(tool: Tool, n: &str) -> Option<Name<'_>> {
    match tool {
        Tool::Flyway => {
            let (kind, rest) = n.split_at_checked(1)?;
            let undo = match kind {
                "V" => false,
                "U" => true,
                _ => return None,
            };
            let (version, desc) = rest.split_once("__")?;
            desc.ends_with(".sql").then_some(Name { version, undo })
        }
        Tool::GolangMigrate | Tool::Sqlx => {
            let (version, rest) = n.split_once('_')?;
            if rest.ends_with(".down.sql") {
                Some(Name {
                    version,
                    undo: true,
                })
            } else if rest.ends_with(".up.sql") || (tool == Tool::Sqlx && rest.ends_with(".sql")) {
                Some(Name {
                    version,
                    undo: false,
                })
            } else {
                None
            }
        }
        Tool::Rails => {
            let (version, rest) = n.split_once('_')?;
            rest.ends_with(".rb").then_some(Name {
                version,
                undo: false,
            })
        }
        Tool::Alembic => None,
    }
}

fn read_versioned(tool: Tool, dir: &Path, names: &[String]) -> Result<Disk, String> {
    let mut disk = Disk::default();
    // version key → (version as written, up file, down file)
    type Entry = (String, Option<String>, Option<String>);
    let mut found: BTreeMap<Vec<u64>, Entry> = BTreeMap::new();
    for n in names {
        let Some(name) = parse_name(tool, n) else {
            if n.ends_with(".sql") || n.ends_with(".rb") {
                disk.warnings.push(format!(
                    "{n}: not a {} migration file name, ignored",
                    tool.as_str()
                ));
            }
            continue;
        };
        let Some(key) = version_key(tool, name.version) else {
            disk.warnings.push(format!(
                "{n}: version `{}` is not a number, ignored",
                name.version
            ));
            continue;
        };
        let e = found
            .entry(key)
            .or_insert_with(|| (name.version.to_string(), None, None));
        let slot = if name.undo { &mut e.2 } else { &mut e.1 };
        if let Some(other) = slot.replace(n.clone()) {
            disk.warnings
                .push(format!("{n} and {other} have the same version"));
        }
    }
    for (key, (version, up, down)) in found {
        let Some(up) = up else {
            disk.warnings.push(format!(
                "version {version} has a down/undo file but no up file"
            ));
            continue;
        };
        let file = dir.join(&up);
        let mut findings = if tool == Tool::Rails {
            lint_ruby_file(&file)
        } else {
            lint_file(&file)
        };
        // Every SQL migration needs its way back: golang-migrate's and
        // sqlx's `.down.sql`, Flyway's `U` undo file. A sqlx simple
        // (single-file) migration has none by construction.
        let missing = match tool {
            Tool::GolangMigrate => Some(format!(
                "no {version}_….down.sql: this migration has no way back"
            )),
            Tool::Sqlx if up.ends_with(".up.sql") => Some(format!(
                "no {version}_….down.sql: this migration has no way back"
            )),
            Tool::Sqlx => Some(format!(
                "{up} is a simple (not reversible) sqlx migration: `sqlx migrate revert` cannot undo it (use {version}_….up.sql / .down.sql)"
            )),
            Tool::Flyway => Some(format!(
                "no U{version}__….sql undo migration: `flyway undo` cannot revert it"
            )),
            Tool::Rails | Tool::Alembic => None,
        };
        match (&down, missing) {
            (None, Some(message)) => findings.push(Finding {
                severity: Severity::Warning,
                rule: "missing-downgrade".into(),
                line: None,
                message,
            }),
            (Some(d), _) => {
                if let Some(f) = empty_down(&dir.join(d)) {
                    findings.push(f);
                }
            }
            (None, None) => {}
        }
        disk.migrations.push(Migration {
            revision: version,
            key,
            down: Vec::new(),
            file,
            findings,
        });
    }
    Ok(disk)
}

/// Lints a SQL file; an unreadable or oversized file is an `unparsed`
/// error finding (unknown is never a pass).
fn lint_file(path: &Path) -> Vec<Finding> {
    match read_capped(path) {
        Ok(text) => lint::lint_sql(&text, 1),
        Err(e) => vec![Finding {
            severity: Severity::Error,
            rule: "unparsed".into(),
            line: None,
            message: format!("not linted: {e}"),
        }],
    }
}

/// Lints a Rails migration ([`ruby::lint`]); unreadable or oversized is
/// an `unparsed` error finding.
fn lint_ruby_file(path: &Path) -> Vec<Finding> {
    match read_capped(path) {
        Ok(text) => ruby::lint(&text),
        Err(e) => vec![Finding {
            severity: Severity::Error,
            rule: "unparsed".into(),
            line: None,
            message: format!("not linted: {e}"),
        }],
    }
}

/// An `empty-downgrade` warning when the down file holds no statement.
fn empty_down(path: &Path) -> Option<Finding> {
    let empty = |message: String| {
        Some(Finding {
            severity: Severity::Warning,
            rule: "empty-downgrade".into(),
            line: None,
            message,
        })
    };
    match read_capped(path) {
        Ok(text) if lint::statement_count(&text) == Some(0) => empty(format!(
            "{} has no statement: this migration has no way back",
            path.file_name().unwrap_or_default().to_string_lossy()
        )),
        Ok(_) => None,
        Err(e) => empty(format!("down file unreadable: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_numerically() {
        assert!(
            version_key(Tool::Flyway, "1.10").unwrap() > version_key(Tool::Flyway, "1.9").unwrap()
        );
        assert_eq!(
            version_key(Tool::Flyway, "1.0"),
            version_key(Tool::Flyway, "1")
        );
        assert_eq!(
            version_key(Tool::Flyway, "2_1"),
            version_key(Tool::Flyway, "2.1")
        );
        assert_eq!(version_key(Tool::GolangMigrate, "000012"), Some(vec![12]));
        assert_eq!(version_key(Tool::Sqlx, "x1"), None);
        assert_eq!(version_key(Tool::Alembic, "1"), None);
    }

    #[test]
    fn names_per_tool() {
        let up = |t, n| parse_name(t, n).map(|x| (x.version.to_string(), x.undo));
        assert_eq!(
            up(Tool::GolangMigrate, "3_drop.up.sql"),
            Some(("3".into(), false))
        );
        assert_eq!(
            up(Tool::GolangMigrate, "3_drop.down.sql"),
            Some(("3".into(), true))
        );
        assert_eq!(up(Tool::GolangMigrate, "3_drop.sql"), None);
        assert_eq!(up(Tool::Sqlx, "3_drop.sql"), Some(("3".into(), false)));
        assert_eq!(
            up(Tool::Flyway, "V1.2__add_x.sql"),
            Some(("1.2".into(), false))
        );
        assert_eq!(
            up(Tool::Flyway, "U1.2__add_x.sql"),
            Some(("1.2".into(), true))
        );
        assert_eq!(up(Tool::Flyway, "R__views.sql"), None);
        assert_eq!(
            up(Tool::Rails, "20240101120000_create_users.rb"),
            Some(("20240101120000".into(), false))
        );
    }
}
