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

/// Runs `argv` (e.g. `alembic current`) and reads the revisions from its
/// stdout: each line whose first word is a revision id (letters, digits,
/// `_`), e.g. `ae1027a6acf (head)`; log lines (`INFO  [alembic…]`) are
/// skipped. A non-zero exit, a timeout or more than
/// [`MAX_COMMAND_OUTPUT`] bytes is an error.
pub async fn command_applied(argv: &[String], timeout: Duration) -> Result<Applied, String> {
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
    if !status.success() {
        let last = String::from_utf8_lossy(&err)
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
    Ok(parse_alembic_current(&String::from_utf8_lossy(&out)))
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

    #[test]
    fn tables_are_quoted() {
        assert_eq!(quoted("public.t"), "\"public\".\"t\"");
    }
}
