//! Migration sources against a real PostgreSQL and real Alembic: status
//! matches what `alembic current` / `alembic heads` say, lint findings at
//! the right lines, every tool's version table created per its docs, and a
//! database out of reach is a source down with its reason — never the
//! password.

mod common;

use common::pg::{self, Postgres};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// One server shared by the tests running at the same time; stopped when
/// the last of them drops it.
fn shared_pg(test: &str) -> Option<Arc<Postgres>> {
    static SHARED: Mutex<Weak<Postgres>> = Mutex::new(Weak::new());
    let mut g = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = g.upgrade() {
        return Some(p);
    }
    let p = Arc::new(Postgres::start_or_skip(test)?);
    *g = Arc::downgrade(&p);
    Some(p)
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alembic")
}

/// A config with one migration source (`extra` lines appended to it).
fn config(dir: &Path, tool: &str, directory: &Path, extra: &str) -> PathBuf {
    common::write_config(
        dir,
        &format!(
            r#"service = "api"
[environment]
name = "staging"

[[sources.migrations]]
name = "app"
tool = "{tool}"
directory = "{}"
timeout = "5s"
{extra}

[plans.p]
[[plans.p.steps]]
kind = "pause"
duration = "1s"
"#,
            directory.display()
        ),
    )
}

fn migrations_json(cfg: &Path, env: &[(&str, &str)]) -> (i32, Value, String) {
    let run = common::run(
        &["--config", cfg.to_str().unwrap(), "migrations", "--json"],
        env,
        Duration::from_secs(60),
    );
    assert!(
        !run.stdout.contains(pg::PASSWORD) && !run.stderr.contains(pg::PASSWORD),
        "the password leaked:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    let v: Value = serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", run.stdout, run.stderr));
    (run.code, v[0].clone(), run.stderr)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// The first word of each output line (`alembic current` / `heads`).
fn revisions(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn findings(p: &Value) -> Vec<(String, String, Option<u64>)> {
    p["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap().to_string(),
                f["rule"].as_str().unwrap().to_string(),
                f["line"].as_u64(),
            )
        })
        .collect()
}

#[test]
fn alembic_status_and_lint_match_alembic() {
    let Some(pg) = shared_pg("alembic_status_and_lint_match_alembic") else {
        return;
    };
    if pg::alembic_or_skip("alembic_status_and_lint_match_alembic").is_none() {
        return;
    }
    pg.create_db("alembic_status");
    let ini = fixture().join("alembic.ini");
    let sa_url = pg.sqlalchemy_url("alembic_status");
    pg::alembic(&ini, &sa_url, &["upgrade", "3c4d5e6f7a03"]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let versions = fixture().join("migrations/versions");
    let cfg = config(
        tmp.path(),
        "alembic",
        &versions,
        "database_url = \"${env:APP_DB}\"",
    );
    let url = pg.url("alembic_status");
    let (code, s, _) = migrations_json(&cfg, &[("APP_DB", &url)]);
    let current = revisions(&pg::alembic(&ini, &sa_url, &["current"]).unwrap());
    let heads = revisions(&pg::alembic(&ini, &sa_url, &["heads"]).unwrap());
    assert_eq!(s["ok"], true, "{s}");
    assert_eq!(strings(&s["current"]), current);
    assert_eq!(strings(&s["current"]), vec!["3c4d5e6f7a03"]);
    assert_eq!(strings(&s["heads"]), heads);
    let pending: Vec<&str> = s["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["revision"].as_str().unwrap())
        .collect();
    assert_eq!(pending, vec!["4d5e6f7a8b04", "5e6f7a8b9c05"]);
    // The destructive revision at its drop_column line, the empty
    // downgrade at its def line.
    assert_eq!(
        findings(&s["pending"][0]),
        vec![("error".into(), "drop-column".into(), Some(15))]
    );
    assert!(
        s["pending"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("4d5e6f7a8b04_drop_user_email.py")
    );
    assert_eq!(
        findings(&s["pending"][1]),
        vec![("warning".into(), "empty-downgrade".into(), Some(18))]
    );
    assert_eq!(s["dirty"], false);
    assert_eq!(s["missing_files"], serde_json::json!([]));
    assert_eq!(code, 1, "an error finding in a pending migration exits 1");

    // The text form says the same, and the snapshot carries the object.
    let text = common::run(
        &["--config", cfg.to_str().unwrap(), "migrations"],
        &[("APP_DB", &url)],
        Duration::from_secs(60),
    );
    assert!(
        text.stdout
            .contains("app (alembic): 3c4d5e6f7a03 → 5e6f7a8b9c05, 2 pending"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("drop-column"), "{}", text.stdout);
    assert!(!text.stdout.contains(pg::PASSWORD));
    let snap = common::run(
        &["--config", cfg.to_str().unwrap(), "snapshot", "--json"],
        &[("APP_DB", &url)],
        Duration::from_secs(60),
    );
    assert!(!snap.stdout.contains(pg::PASSWORD));
    let snap: Value = serde_json::from_str(snap.stdout.trim()).unwrap();
    assert_eq!(snap["migrations"][0], s);

    // The same through `alembic current` as a command source.
    let cmd_cfg_dir = tempfile::tempdir().unwrap();
    let cmd_cfg = config(
        cmd_cfg_dir.path(),
        "alembic",
        &versions,
        &format!(
            "command = [\"/usr/bin/python3\", \"-m\", \"alembic\", \"-c\", \"{}\", \"current\"]",
            ini.display()
        ),
    );
    let (_, c, _) = migrations_json(&cmd_cfg, &[("DATABASE_URL", &sa_url)]);
    assert_eq!(c["ok"], true, "{c}");
    assert_eq!(strings(&c["current"]), current);
    assert_eq!(c["pending"], s["pending"]);

    // At head: nothing pending, exit 0.
    pg::alembic(&ini, &sa_url, &["upgrade", "head"]).unwrap();
    let (code, s, _) = migrations_json(&cfg, &[("APP_DB", &url)]);
    assert_eq!(strings(&s["current"]), vec!["5e6f7a8b9c05"]);
    assert_eq!(s["pending"], serde_json::json!([]));
    assert_eq!(code, 0, "{s}");
}

/// Writes `files` (name, content) into a new dir.
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (n, c) in files {
        std::fs::write(d.path().join(n), c).unwrap();
    }
    d
}

fn pending_revisions(s: &Value) -> Vec<String> {
    s["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["revision"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_tool_reads_its_documented_table() {
    let Some(pg) = shared_pg("every_tool_reads_its_documented_table") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();

    // golang-migrate (database/postgres driver): one row, version + dirty.
    pg.create_db("gm");
    pg.psql(
        "gm",
        "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL); INSERT INTO schema_migrations VALUES (2, true)",
    );
    let files = dir_with(&[
        ("1_users.up.sql", "CREATE TABLE users (id int);"),
        ("1_users.down.sql", "DROP TABLE users;"),
        ("2_email.up.sql", "ALTER TABLE users ADD COLUMN email text;"),
        ("2_email.down.sql", "ALTER TABLE users DROP COLUMN email;"),
        (
            "3_drop.up.sql",
            "-- bye\nALTER TABLE users DROP COLUMN email;",
        ),
        ("4_idx.up.sql", "CREATE INDEX i ON users (id);"),
        ("4_idx.down.sql", "-- nothing\n"),
    ]);
    let cfg = config(
        tmp.path(),
        "golang-migrate",
        files.path(),
        &format!("database_url = \"{}\"", pg.url("gm")),
    );
    let (code, s, _) = migrations_json(&cfg, &[]);
    assert_eq!(s["ok"], true, "{s}");
    assert_eq!(strings(&s["current"]), vec!["2"]);
    assert_eq!(strings(&s["heads"]), vec!["4"]);
    assert_eq!(s["dirty"], true);
    assert_eq!(strings(&s["failed"]), vec!["2"]);
    assert_eq!(pending_revisions(&s), vec!["3", "4"]);
    assert_eq!(
        findings(&s["pending"][0]),
        vec![
            ("error".into(), "drop-column".into(), Some(2)),
            ("warning".into(), "missing-downgrade".into(), None)
        ]
    );
    assert_eq!(
        findings(&s["pending"][1]),
        vec![
            ("warning".into(), "index-not-concurrent".into(), Some(1)),
            ("warning".into(), "empty-downgrade".into(), None)
        ]
    );
    assert_eq!(code, 1);
    pg.psql(
        "gm",
        "UPDATE schema_migrations SET version = 4, dirty = false",
    );
    let (code, s, _) = migrations_json(&cfg, &[]);
    assert_eq!(
        (s["dirty"].clone(), pending_revisions(&s).len()),
        (false.into(), 0)
    );
    assert_eq!(code, 0, "{s}");

    // Flyway: flyway_schema_history as Flyway creates it, with a failed row
    // and an undo.
    pg.create_db("fw");
    pg.psql(
        "fw",
        r#"CREATE TABLE flyway_schema_history (
            installed_rank INT NOT NULL PRIMARY KEY, version VARCHAR(50), description VARCHAR(200) NOT NULL,
            type VARCHAR(20) NOT NULL, script VARCHAR(1000) NOT NULL, checksum INT,
            installed_by VARCHAR(100) NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT now(),
            execution_time INT NOT NULL, success BOOLEAN NOT NULL);
        INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success) VALUES
          (1, '1', 'init', 'SQL', 'V1__init.sql', 1, 'ci', 5, true),
          (2, '1.1', 'add', 'SQL', 'V1.1__add.sql', 2, 'ci', 5, true),
          (3, '1.2', 'tmp', 'SQL', 'V1.2__tmp.sql', 3, 'ci', 5, true),
          (4, '1.2', 'tmp', 'UNDO_SQL', 'U1.2__tmp.sql', 4, 'ci', 5, true),
          (5, NULL, 'views', 'SQL', 'R__views.sql', 5, 'ci', 5, true),
          (6, '2', 'broken', 'SQL', 'V2__broken.sql', 6, 'ci', 5, false)"#,
    );
    let files = dir_with(&[
        ("V1__init.sql", "CREATE TABLE a (id int);"),
        ("V1.1__add.sql", "ALTER TABLE a ADD COLUMN b int;"),
        ("V1.2__tmp.sql", "ALTER TABLE a RENAME COLUMN b TO c;"),
        ("U1.2__tmp.sql", "ALTER TABLE a RENAME COLUMN c TO b;"),
        ("V2__broken.sql", "DROP TABLE a;"),
        ("R__views.sql", "CREATE VIEW v AS SELECT 1;"),
    ]);
    let cfg = config(
        tmp.path(),
        "flyway",
        files.path(),
        &format!("database_url = \"{}\"", pg.url("fw")),
    );
    let (code, s, _) = migrations_json(&cfg, &[]);
    assert_eq!(s["ok"], true, "{s}");
    assert_eq!(strings(&s["current"]), vec!["1.1"]);
    assert_eq!(strings(&s["heads"]), vec!["2"]);
    assert_eq!(strings(&s["failed"]), vec!["2"]);
    assert_eq!(s["dirty"], true);
    assert_eq!(pending_revisions(&s), vec!["1.2", "2"]);
    assert_eq!(
        findings(&s["pending"][1]),
        vec![("error".into(), "drop-table".into(), Some(1))]
    );
    assert_eq!(code, 1);

    // sqlx: _sqlx_migrations as sqlx creates it, one failed (dirty) row.
    pg.create_db("sx");
    pg.psql(
        "sx",
        r#"CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL,
            installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL,
            checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL);
        INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES
          (20240101000000, 'init', true, '\x00', 1), (20240102000000, 'second', false, '\x00', 1)"#,
    );
    let files = dir_with(&[
        ("20240101000000_init.sql", "CREATE TABLE s (id int);"),
        (
            "20240102000000_second.up.sql",
            "ALTER TABLE s ALTER COLUMN id TYPE bigint;",
        ),
        (
            "20240102000000_second.down.sql",
            "ALTER TABLE s ALTER COLUMN id TYPE int;",
        ),
    ]);
    let cfg = config(
        tmp.path(),
        "sqlx",
        files.path(),
        &format!("database_url = \"{}\"", pg.url("sx")),
    );
    let (code, s, _) = migrations_json(&cfg, &[]);
    assert_eq!(s["ok"], true, "{s}");
    assert_eq!(strings(&s["current"]), vec!["20240101000000"]);
    assert_eq!(strings(&s["failed"]), vec!["20240102000000"]);
    assert_eq!(pending_revisions(&s), vec!["20240102000000"]);
    assert_eq!(
        findings(&s["pending"][0]),
        vec![("warning".into(), "type-change".into(), Some(1))]
    );
    assert_eq!(code, 1, "failed is never clean");

    // Rails: schema_migrations(version varchar), a file gone from disk.
    pg.create_db("rails");
    pg.psql(
        "rails",
        "CREATE TABLE schema_migrations (version character varying NOT NULL PRIMARY KEY); INSERT INTO schema_migrations VALUES ('20240101120000'), ('20231201000000')",
    );
    let files = dir_with(&[
        (
            "20240101120000_create_users.rb",
            "class CreateUsers < ActiveRecord::Migration[7.1]\nend\n",
        ),
        (
            "20240201120000_add_name.rb",
            "class AddName < ActiveRecord::Migration[7.1]\nend\n",
        ),
    ]);
    let cfg = config(
        tmp.path(),
        "rails",
        files.path(),
        &format!("database_url = \"{}\"", pg.url("rails")),
    );
    let (code, s, _) = migrations_json(&cfg, &[]);
    assert_eq!(s["ok"], true, "{s}");
    assert_eq!(strings(&s["current"]), vec!["20240101120000"]);
    assert_eq!(strings(&s["missing_files"]), vec!["20231201000000"]);
    assert_eq!(pending_revisions(&s), vec!["20240201120000"]);
    assert_eq!(code, 0, "{s}");
}

#[test]
fn a_database_out_of_reach_is_a_source_down_with_its_reason() {
    let Some(pg) = shared_pg("a_database_out_of_reach_is_a_source_down_with_its_reason") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let versions = fixture().join("migrations/versions");
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    pg.create_db("empty");
    let wrong = format!(
        "postgres://{}:wrong-{}@127.0.0.1:{}/empty",
        pg::USER,
        pg::PASSWORD,
        pg.port
    );
    let cases = [
        (
            format!(
                "postgres://{}:{}@127.0.0.1:{free}/x",
                pg::USER,
                pg::PASSWORD
            ),
            "cannot connect",
        ),
        (wrong, "password authentication failed"),
        (pg.url("empty"), "table alembic_version does not exist"),
    ];
    for (url, reason) in cases {
        let cfg = config(
            tmp.path(),
            "alembic",
            &versions,
            "database_url = \"${env:APP_DB}\"",
        );
        let (code, s, stderr) = migrations_json(&cfg, &[("APP_DB", &url)]);
        assert_eq!(s["ok"], false, "{s}");
        let err = s["error"].as_str().unwrap();
        assert!(err.contains(reason), "{reason}: {err}");
        assert!(!err.contains("wrong-"), "{err}");
        assert_eq!(s["current"], serde_json::json!([]));
        // The directory is still read: everything pending, with findings.
        assert_eq!(s["pending"].as_array().unwrap().len(), 5, "{s}");
        assert_eq!(code, 1, "{stderr}");
    }
}
