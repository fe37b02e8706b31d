//! The applied state: the tool's version table over a PostgreSQL
//! connection (`tokio-postgres`, no TLS), or an `alembic current` command.
//!
//! Queries (at most [`MAX_ROWS`] rows; more is an error):
//!
//! * Alembic: `SELECT version_num FROM alembic_version`;
//! * golang-migrate: `SELECT version, dirty FROM schema_migrations` (one
//!   row; a dirty version is listed in `failed`);
//! * Flyway: `SELECT version, type, success FROM flyway_schema_history
//!   ORDER BY installed_rank`: a successful versioned row applies its
//!   version, a successful `UNDO_*` row un-applies it, a `BASELINE` row
//!   sets the baseline, `DELETE` rows (repair) are skipped, and a row with
//!   `success = false` is failed;
//! * sqlx: `SELECT version, success FROM _sqlx_migrations ORDER BY version`
//!   (`success = false` is failed, as `sqlx migrate` reports it dirty);
//! * Rails: `SELECT version FROM schema_migrations`.
//!
//! Errors are the driver's reasons (which never carry the password): no
//! connection, authentication failed, a missing table (`42P01`), a
//! timeout.

use super::{Applied, MAX_COMMAND_OUTPUT, MAX_ROWS, Tool};
use crate::config::MigrationSource;
use std::time::Duration;

/// The error's text, with the server's message and code when there is one.
fn reason(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    crate::sources::body::error_chain(e)
}

/// The table's name, quoted as an identifier (each part).
fn quoted(table: &str) -> String {
    table
        .split('.')
        .map(|p| format!("\"{}\"", p.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

/// Connects and reads the version table, within `src.timeout`.
pub async fn read_applied(src: &MigrationSource, url: &str) -> Result<Applied, String> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| format!("database_url is not a PostgreSQL URL: {e}"))?;
    config.connect_timeout(src.timeout);
    let table = src
        .table
        .clone()
        .unwrap_or_else(|| src.tool.default_table().to_string());
    let work = async {
        let (client, conn) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("cannot connect: {}", reason(&e)))?;
        let conn = tokio::spawn(conn);
        let out = query(&client, src.tool, &table).await;
        drop(client);
        conn.abort();
        out
    };
    match tokio::time::timeout(src.timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "no answer within {}",
            humantime::format_duration(src.timeout)
        )),
    }
}

async fn query(
    client: &tokio_postgres::Client,
    tool: Tool,
    table: &str,
) -> Result<Applied, String> {
    let t = quoted(table);
    let sql = match tool {
        Tool::Alembic => format!("SELECT version_num FROM {t} LIMIT {}", MAX_ROWS + 1),
        Tool::GolangMigrate => format!("SELECT version, dirty FROM {t} LIMIT {}", MAX_ROWS + 1),
        Tool::Flyway => format!(
            "SELECT version, type, success FROM {t} ORDER BY installed_rank LIMIT {}",
            MAX_ROWS + 1
        ),
        Tool::Sqlx => format!(
            "SELECT version, success FROM {t} ORDER BY version LIMIT {}",
            MAX_ROWS + 1
        ),
        Tool::Rails => format!("SELECT version FROM {t} LIMIT {}", MAX_ROWS + 1),
    };
    let rows = client.query(sql.as_str(), &[]).await.map_err(|e| {
        if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) {
            format!(
                "table {table} does not exist (no {} migration applied here yet, or the wrong database/schema)",
                tool.as_str()
            )
        } else {
            format!("cannot read {table}: {}", reason(&e))
        }
    })?;
    if rows.len() as i64 > MAX_ROWS {
        return Err(format!("{table} has more than {MAX_ROWS} rows"));
    }
    let bad =
        |e: tokio_postgres::Error| format!("{table} has an unexpected layout: {}", reason(&e));
    let mut a = Applied::default();
    match tool {
        Tool::Alembic => {
            for r in &rows {
                a.versions.push(r.try_get::<_, String>(0).map_err(bad)?);
            }
        }
        Tool::GolangMigrate => {
            if rows.len() > 1 {
                return Err(format!(
                    "{table} has {} rows; golang-migrate keeps one",
                    rows.len()
                ));
            }
            if let Some(r) = rows.first() {
                let v: i64 = r.try_get(0).map_err(bad)?;
                let dirty: bool = r.try_get(1).map_err(bad)?;
                // golang-migrate writes version -1 (NilVersion) for "none".
                if v >= 0 {
                    a.versions.push(v.to_string());
                    if dirty {
                        a.dirty = true;
                        a.failed.push(v.to_string());
                    }
                }
            }
        }
        Tool::Flyway => {
            for r in &rows {
                let version: Option<String> = r.try_get(0).map_err(bad)?;
                let kind: String = r.try_get(1).map_err(bad)?;
                let success: bool = r.try_get(2).map_err(bad)?;
                let Some(v) = version else { continue }; // repeatable or schema rows
                let kind = kind.to_ascii_uppercase();
                if kind == "DELETE" {
                    continue;
                }
                if !success {
                    a.failed.push(v);
                    continue;
                }
                a.failed.retain(|f| *f != v);
                if kind.starts_with("UNDO") {
                    a.versions.retain(|x| *x != v);
                } else if kind == "BASELINE" {
                    a.baseline = Some(v.clone());
                    a.versions.push(v);
                } else {
                    a.versions.push(v);
                }
            }
        }
        Tool::Sqlx => {
            for r in &rows {
                let v: i64 = r.try_get(0).map_err(bad)?;
                let success: bool = r.try_get(1).map_err(bad)?;
                if success {
                    a.versions.push(v.to_string());
                } else {
                    a.failed.push(v.to_string());
                }
            }
        }
        Tool::Rails => {
            for r in &rows {
                a.versions.push(r.try_get::<_, String>(0).map_err(bad)?);
            }
        }
    }
    Ok(a)
}

/// Runs `argv` and reads the applied state from its output, per tool:
/// `alembic current` ([`parse_alembic_current`]), `flyway info`
/// ([`parse_flyway_info`]), golang-migrate's `migrate version`
/// ([`parse_migrate_version`], which prints on stderr and exits 1 with
/// `error: no migration` when nothing is applied). A non-zero exit (but
/// that one), a timeout or more than [`MAX_COMMAND_OUTPUT`] bytes is an
/// error; so is output that does not parse.
pub async fn command_applied(
    tool: Tool,
    argv: &[String],
    timeout: Duration,
) -> Result<Applied, String> {
    use tokio::io::AsyncReadExt;
    let (program, rest) = argv.split_first().ok_or("command is empty")?;
    let mut child = tokio::process::Command::new(program)
        .args(rest)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let work = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut capped_out = (&mut stdout).take(MAX_COMMAND_OUTPUT + 1);
        let mut capped_err = (&mut stderr).take(64 * 1024);
        let (a, b) = tokio::join!(
            capped_out.read_to_end(&mut out),
            capped_err.read_to_end(&mut err)
        );
        a.map_err(|e| format!("reading {program}'s output: {e}"))?;
        b.map_err(|e| format!("reading {program}'s errors: {e}"))?;
        let status = child
            .wait()
            .await
            .map_err(|e| format!("waiting for {program}: {e}"))?;
        Ok::<_, String>((status, out, err))
    };
    let (status, out, err) = tokio::time::timeout(timeout, work).await.map_err(|_| {
        format!(
            "{program} gave no answer within {}",
            humantime::format_duration(timeout)
        )
    })??;
    if out.len() as u64 > MAX_COMMAND_OUTPUT {
        return Err(format!(
            "{program} printed more than {MAX_COMMAND_OUTPUT} bytes"
        ));
    }
    let err_text = String::from_utf8_lossy(&err);
    if tool == Tool::GolangMigrate && err_text.lines().any(|l| l.trim() == "error: no migration") {
        return Ok(Applied::default());
    }
    if !status.success() {
        let last = err_text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .to_string();
        return Err(format!(
            "{program} failed ({status}): {}",
            crate::config::clean(&last)
        ));
    }
    let out = String::from_utf8_lossy(&out);
    match tool {
        Tool::Alembic => Ok(parse_alembic_current(&out)),
        Tool::Flyway => parse_flyway_info(&out),
        // `migrate` logs to stderr; stdout when redirected by a wrapper.
        Tool::GolangMigrate => {
            parse_migrate_version(&out).or_else(|_| parse_migrate_version(&err_text))
        }
        Tool::Sqlx | Tool::Rails => Err(format!(
            "a command source cannot read {} output; use database_url",
            tool.as_str()
        )),
    }
}

/// Tools whose status command a `command` source parses.
pub const COMMAND_TOOLS: &[Tool] = &[Tool::Alembic, Tool::Flyway, Tool::GolangMigrate];

/// golang-migrate's `migrate version` output: the version, ` (dirty)`
/// when a migration stopped half-way (e.g. `3`, `3 (dirty)`), log lines
/// around it ignored. Errors when no line is a version.
pub fn parse_migrate_version(out: &str) -> Result<Applied, String> {
    for l in out.lines().map(str::trim) {
        let (v, dirty) = match l.strip_suffix("(dirty)") {
            Some(v) => (v.trim(), true),
            None => (l, false),
        };
        if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) {
            let mut a = Applied::default();
            a.versions.push(v.to_string());
            if dirty {
                a.dirty = true;
                a.failed.push(v.to_string());
            }
            return Ok(a);
        }
    }
    Err("`migrate version` printed no version".into())
}

/// `flyway info` output: its table (`| Category | Version | Description |
/// Type | Installed On | State | Undoable |`, older releases without
/// Category/Type/Undoable; the columns are found by their header) or
/// `-outputType=json` (`{"migrations": [{"version", "state", …}]}`).
/// States (Flyway's `MigrationState`): `Success`, `Baseline`, `Missing`,
/// `Future`, `Outdated`, `Superseded` are applied; `Failed…` is failed;
/// `Undone`, `Pending`, `Ignored`, `Above Target`, `Below Baseline`,
/// `Available`, `Deleted` are not applied. Rows without a version
/// (repeatable) are skipped. Errors: no table, or a row whose state is
/// not one of these.
pub fn parse_flyway_info(out: &str) -> Result<Applied, String> {
    let rows: Vec<(String, String)> = if out.trim_start().starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(out.trim())
            .map_err(|e| format!("flyway info JSON does not parse: {e}"))?;
        let list = v["migrations"]
            .as_array()
            .ok_or("flyway info JSON has no `migrations` list")?;
        list.iter()
            .map(|m| {
                (
                    m["version"].as_str().unwrap_or("").to_string(),
                    m["state"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    } else {
        let cells = |l: &str| -> Vec<String> {
            let t = l.trim();
            t.trim_start_matches('|')
                .trim_end_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        };
        let mut lines = out.lines().filter(|l| l.trim_start().starts_with('|'));
        let header = lines
            .next()
            .map(cells)
            .ok_or("`flyway info` printed no table")?;
        let col = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
        let (Some(vc), Some(sc)) = (col("Version"), col("State")) else {
            return Err(format!(
                "`flyway info` table has no Version/State columns (header: {})",
                header.join(" | ")
            ));
        };
        lines
            .map(cells)
            .filter(|c| c.len() == header.len())
            .map(|c| (c[vc].clone(), c[sc].clone()))
            .collect()
    };
    let mut a = Applied::default();
    for (version, state) in rows {
        if version.is_empty() {
            continue;
        }
        let s = state.to_ascii_lowercase();
        if s.starts_with("failed") {
            a.failed.push(version);
        } else if s == "baseline" {
            a.baseline = Some(version.clone());
            a.versions.push(version);
        } else if ["success", "missing", "future", "outdated", "superseded"].contains(&s.as_str()) {
            a.versions.push(version);
        } else if [
            "pending",
            "undone",
            "ignored",
            "above target",
            "below baseline",
            "available",
            "deleted",
        ]
        .contains(&s.as_str())
        {
        } else {
            return Err(format!(
                "`flyway info`: version {version} has state `{}`, which rolldeck does not know",
                crate::config::clean(&state)
            ));
        }
    }
    Ok(a)
}

/// The revisions in `alembic current` output (see [`command_applied`]).
pub fn parse_alembic_current(out: &str) -> Applied {
    let mut a = Applied::default();
    for l in out.lines() {
        let Some(first) = l.split_whitespace().next() else {
            continue;
        };
        if first == "INFO" || first.starts_with('[') {
            continue;
        }
        if first.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            a.versions.push(first.to_string());
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alembic_current_output() {
        let a = parse_alembic_current(
            "INFO  [alembic.runtime.migration] Context impl PostgresqlImpl.\nae1027a6acf (head)\n3f2 (head) (mergepoint)\n\n",
        );
        assert_eq!(a.versions, vec!["ae1027a6acf", "3f2"]);
    }

    // Output written after Flyway's and golang-migrate's documentation
    // (neither tool is installable here: no Debian package).
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/command-output");

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()
    }

    #[test]
    fn flyway_info_table_and_json() {
        let a = parse_flyway_info(&fixture("flyway-info.txt")).unwrap();
        assert_eq!(a.versions, vec!["1", "1.0.1", "1.1"]);
        assert_eq!(a.baseline.as_deref(), Some("1"));
        assert_eq!(a.failed, vec!["2"]);
        let a = parse_flyway_info(&fixture("flyway-info-v5.txt")).unwrap();
        assert_eq!(
            (a.versions, a.failed),
            (vec!["1".into(), "2".into()], vec![])
        );
        let a = parse_flyway_info(&fixture("flyway-info.json")).unwrap();
        assert_eq!(a.versions, vec!["1", "2"]);
        // Unknown is never a pass: an unknown state or no table is an error.
        let odd = fixture("flyway-info-v5.txt").replace("| Pending |", "| Weird   |");
        assert!(parse_flyway_info(&odd).unwrap_err().contains("Weird"));
        assert!(parse_flyway_info("ERROR: Unable to connect").is_err());
    }

    #[test]
    fn migrate_version_output() {
        let a = parse_migrate_version(&fixture("migrate-version.txt")).unwrap();
        assert_eq!(
            (a.versions, a.dirty),
            (vec!["20240102150405".into()], false)
        );
        let a = parse_migrate_version(&fixture("migrate-version-dirty.txt")).unwrap();
        assert_eq!(
            (a.versions.clone(), a.dirty, a.failed),
            (vec!["3".into()], true, vec!["3".into()])
        );
        assert!(parse_migrate_version("error: something\n").is_err());
    }

    #[tokio::test]
    async fn command_sources_run_the_tool() {
        let sh = |script: &str| vec!["sh".to_string(), "-c".to_string(), script.to_string()];
        let t = Duration::from_secs(10);
        // `migrate version` prints on stderr; nothing applied is exit 1.
        let a = command_applied(Tool::GolangMigrate, &sh("echo '4 (dirty)' >&2"), t)
            .await
            .unwrap();
        assert!(a.dirty && a.versions == vec!["4"]);
        let a = command_applied(
            Tool::GolangMigrate,
            &sh("echo 'error: no migration' >&2; exit 1"),
            t,
        )
        .await
        .unwrap();
        assert!(a.versions.is_empty());
        let e = command_applied(
            Tool::GolangMigrate,
            &sh("echo 'error: connection refused' >&2; exit 1"),
            t,
        )
        .await
        .unwrap_err();
        assert!(e.contains("connection refused"), "{e}");
        let a = command_applied(
            Tool::Flyway,
            &sh(&format!("cat {FIXTURES}/flyway-info.txt")),
            t,
        )
        .await
        .unwrap();
        assert_eq!(a.failed, vec!["2"]);
    }

    #[test]
    fn tables_are_quoted() {
        assert_eq!(quoted("public.t"), "\"public\".\"t\"");
    }
}
