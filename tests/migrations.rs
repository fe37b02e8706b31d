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

/// A config with one migration source (`extra` lines appended to it) and
/// a one-pause plan.
fn config(dir: &Path, tool: &str, directory: &Path, extra: &str) -> PathBuf {
    config_with(
        dir,
        tool,
        directory,
        extra,
        "[plans.p]\n[[plans.p.steps]]\nkind = \"pause\"\nduration = \"1s\"\n",
    )
}

/// A config with one migration source, `extra` lines for it, then `rest`
/// (actions, plans, rollback).
fn config_with(dir: &Path, tool: &str, directory: &Path, extra: &str, rest: &str) -> PathBuf {
    common::write_config(
        dir,
        &format!(
            "service = \"api\"\n[environment]\nname = \"staging\"\n\n[[sources.migrations]]\nname = \"app\"\ntool = \"{tool}\"\ndirectory = \"{}\"\ntimeout = \"5s\"\n{extra}\n\n{rest}",
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
    // 1.2 has its undo file; 2 has none.
    assert_eq!(
        findings(&s["pending"][0]),
        vec![("warning".into(), "rename".into(), Some(1))]
    );
    assert_eq!(
        findings(&s["pending"][1]),
        vec![
            ("error".into(), "drop-table".into(), Some(1)),
            ("warning".into(), "missing-downgrade".into(), None)
        ]
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
        // A simple (single-file) migration: no way back.
        (
            "20240103000000_third.sql",
            "ALTER TABLE s ADD COLUMN t text;",
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
    assert_eq!(
        pending_revisions(&s),
        vec!["20240102000000", "20240103000000"]
    );
    assert_eq!(
        findings(&s["pending"][0]),
        vec![("warning".into(), "type-change".into(), Some(1))]
    );
    assert_eq!(
        findings(&s["pending"][1]),
        vec![("warning".into(), "missing-downgrade".into(), None)]
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
            "class AddName < ActiveRecord::Migration[7.1]\n  def change\n    add_column :users, :name, :string\n    remove_column :users, :legacy, :string\n  end\nend\n",
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
    // The Ruby is linted: the dropped column at its line.
    assert_eq!(
        findings(&s["pending"][0]),
        vec![("error".into(), "drop-column".into(), Some(4))]
    );
    assert!(strings(&s["warnings"]).is_empty(), "{s}");
    assert_eq!(code, 1, "{s}");
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
        // `rolldeck check` says the same, without the password.
        let check = common::run(
            &["--config", cfg.to_str().unwrap(), "check"],
            &[("APP_DB", &url)],
            Duration::from_secs(60),
        );
        let line = check
            .stdout
            .lines()
            .find(|l| l.contains("migrations:app"))
            .unwrap_or_else(|| panic!("{}", check.stdout));
        assert!(line.starts_with("down") && line.contains(reason), "{line}");
        assert!(!check.stdout.contains(pg::PASSWORD));
        assert_eq!(check.code, 1);
    }
}

/// A copy of the fixture's versions without the revisions in `skip`.
fn versions_without(skip: &[&str]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixture().join("migrations/versions")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".py") && !skip.iter().any(|s| name.starts_with(s)) {
            std::fs::copy(e.path(), d.path().join(&name)).unwrap();
        }
    }
    d
}

/// A config whose plan runs a `migration` step (real Alembic through the
/// action executor) then `rest` steps.
fn step_config(dir: &Path, versions: &Path, db_url: &str, step: &str, rest: &str) -> PathBuf {
    // Alembic reads the versions beside its env.py: a copied ini whose
    // script_location holds the fixture's env.py and these versions.
    let script = dir.join("script");
    std::fs::create_dir_all(&script).unwrap();
    std::fs::copy(fixture().join("migrations/env.py"), script.join("env.py")).unwrap();
    let _ = std::fs::remove_file(script.join("versions"));
    std::os::unix::fs::symlink(versions, script.join("versions")).unwrap();
    let ini = dir.join("alembic.ini");
    std::fs::write(&ini, "[alembic]\nscript_location = %(here)s/script\n").unwrap();
    let alembic = |args: &str| {
        format!(
            "[\"/usr/bin/python3\", \"-m\", \"alembic\", \"-c\", \"{}\", {args}]",
            ini.display()
        )
    };
    config_with(
        dir,
        "alembic",
        versions,
        &format!(
            "database_url = \"{db_url}\"\nupgrade = {}\ndowngrade = {}\nrun_timeout = \"60s\"",
            alembic("\"upgrade\", \"head\""),
            alembic("\"downgrade\", \"-1\"")
        ),
        &format!(
            "[actions.traffic]\nargv = [\"true\"]\n\n[plans.p]\n[[plans.p.steps]]\n{step}\n{rest}\n\n[[rollback]]\nkind = \"traffic\"\nweight = 0\n"
        ),
    )
}

/// Runs the plan. rolldeck's own environment has no `DATABASE_URL`: the
/// upgrade/downgrade commands get it from the source's `database_url`.
fn run_plan(cfg: &Path, state: &Path) -> common::Run {
    common::run(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "run",
            "--headless",
            "--yes",
            "--exit-on-pause",
        ],
        &[],
        Duration::from_secs(180),
    )
}

fn audit_actions(state: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in walk(state) {
        if e.file_name()
            .is_some_and(|n| n.to_string_lossy().contains("audit"))
        {
            for l in std::fs::read_to_string(&e).unwrap_or_default().lines() {
                if let Ok(v) = serde_json::from_str::<Value>(l)
                    && let Some(a) = v["action"].as_str()
                {
                    out.push(a.to_string());
                }
            }
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn step_finished(run: &common::Run, name_part: &str) -> Value {
    run.events()
        .into_iter()
        .find(|e| {
            e["event"] == "step_finished"
                && e["name"].as_str().is_some_and(|n| n.contains(name_part))
        })
        .unwrap_or_else(|| {
            panic!(
                "no step_finished {name_part}:\n{}\n{}",
                run.stdout, run.stderr
            )
        })
}

/// What a plan test holds until it ends: the server, the versions copy,
/// the config dir, the state dir and the config.
struct PlanEnv {
    pg: Arc<Postgres>,
    db: String,
    _versions: tempfile::TempDir,
    tmp: tempfile::TempDir,
    state: tempfile::TempDir,
    cfg: PathBuf,
}

impl PlanEnv {
    /// A fresh database `db`, the fixture's versions without `skip`, and a
    /// config whose plan is `step` then `rest`; `None` when PostgreSQL or
    /// Alembic is missing (skipped).
    fn new(test: &str, db: &str, skip: &[&str], step: &str, rest: &str) -> Option<PlanEnv> {
        let pg = shared_pg(test)?;
        pg::alembic_or_skip(test)?;
        pg.create_db(db);
        let versions = versions_without(skip);
        let tmp = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        // `postgresql://`: both rolldeck and SQLAlchemy (the commands get it
        // as DATABASE_URL) read it.
        let cfg = step_config(
            tmp.path(),
            versions.path(),
            &pg.sqlalchemy_url(db),
            step,
            rest,
        );
        Some(PlanEnv {
            pg,
            db: db.to_string(),
            _versions: versions,
            tmp,
            state,
            cfg,
        })
    }

    fn sa_url(&self) -> String {
        self.pg.sqlalchemy_url(&self.db)
    }

    fn run(&self) -> common::Run {
        run_plan(&self.cfg, self.state.path())
    }
}

#[test]
fn migration_step_round_trip_against_the_real_database() {
    // Revisions 1–4: every downgrade works, so the round trip passes and a
    // traffic step requiring migrations at head then runs.
    let Some(env) = PlanEnv::new(
        "migration_step_round_trip_against_the_real_database",
        "round_trip_ok",
        &["5e6f"],
        "kind = \"migration\"\nround_trip = true",
        "[[plans.p.steps]]\nkind = \"traffic\"\nweight = 10\nrequire_migrations = true",
    ) else {
        return;
    };
    let (tmp, state, sa) = (&env.tmp, &env.state, env.sa_url());
    let run = env.run();
    assert!(!run.stdout.contains(pg::PASSWORD), "{}", run.stdout);
    let fin = run.finished();
    assert_eq!(fin["outcome"], "promoted", "{}\n{}", run.stdout, run.stderr);
    let step = step_finished(&run, "migration app (round trip)");
    let detail = step["detail"].as_str().unwrap();
    assert!(
        detail.contains("upgrade") && detail.contains("downgrade") && detail.contains("at head"),
        "{detail}"
    );
    let ini = tmp.path().join("alembic.ini");
    assert_eq!(
        revisions(&pg::alembic(&ini, &sa, &["current"]).unwrap()),
        vec!["4d5e6f7a8b04"]
    );
    // Each part audited: upgrade, downgrade, upgrade, then the traffic action.
    let audited: Vec<String> =
        audit_actions(state.path())
            .into_iter()
            .fold(Vec::new(), |mut v, a| {
                if v.last() != Some(&a) {
                    v.push(a);
                }
                v
            });
    assert_eq!(
        audited,
        vec![
            "migration app upgrade",
            "migration app downgrade",
            "migration app upgrade",
            "traffic"
        ],
        "audit log"
    );
    // The commands got the source's URL as DATABASE_URL (rolldeck's own
    // environment has none, and env.py reads it), shown masked.
    let texts: Vec<String> = walk(state.path())
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("DATABASE_URL='***' /usr/bin/python3")),
        "the audit log shows the variable, masked: {:?}",
        texts
            .iter()
            .flat_map(|t| t.lines())
            .filter(|l| l.contains("rendered"))
            .take(2)
            .collect::<Vec<_>>()
    );
    assert!(
        texts.iter().all(|t| !t.contains(pg::PASSWORD)),
        "no state file holds the password"
    );
}

#[test]
fn a_failing_round_trip_fails_the_step_and_follows_on_failure() {
    // Revision 5's downgrade only passes: the second upgrade re-creates a
    // table that is still there (seed 000: the way back did not work).
    let Some(env) = PlanEnv::new(
        "a_failing_round_trip_fails_the_step_and_follows_on_failure",
        "round_trip_bad",
        &[],
        "kind = \"migration\"\nround_trip = true\non_failure = \"abort\"",
        "[[plans.p.steps]]\nkind = \"traffic\"\nweight = 10",
    ) else {
        return;
    };
    let (state, cfg) = (&env.state, &env.cfg);
    let run = env.run();
    let fin = run.finished();
    assert_eq!(fin["outcome"], "aborted", "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.code, 5, "exit 5: aborted without rollback");
    let step = step_finished(&run, "migration app");
    assert_eq!(step["status"], "failed", "{step}");
    assert!(
        step["detail"].as_str().unwrap().contains("downgrade"),
        "{step}"
    );
    assert!(
        !audit_actions(state.path()).contains(&"traffic".to_string()),
        "traffic never shifted"
    );
    // A pending migration still there: the status says so, at its file.
    let (_, s, _) = migrations_json(cfg, &[]);
    assert_eq!(pending_revisions(&s), vec!["5e6f7a8b9c05"], "{s}");
}

#[test]
fn traffic_requiring_migrations_refuses_with_the_reason() {
    let Some(env) = PlanEnv::new(
        "traffic_requiring_migrations_refuses_with_the_reason",
        "gate",
        &[],
        "kind = \"traffic\"\nweight = 10\nrequire_migrations = true",
        "",
    ) else {
        return;
    };
    let ini = env.tmp.path().join("alembic.ini");
    pg::alembic(&ini, &env.sa_url(), &["upgrade", "3c4d5e6f7a03"]).unwrap();
    let state = &env.state;
    let run = env.run();
    let fin = run.finished();
    assert_eq!(
        fin["outcome"], "rolled_back",
        "{}\n{}",
        run.stdout, run.stderr
    );
    let step = step_finished(&run, "traffic 10%");
    let detail = step["detail"].as_str().unwrap();
    assert!(
        detail.contains("refused to shift traffic")
            && detail.contains("not at head: 2 pending (4d5e6f7a8b04, 5e6f7a8b9c05)"),
        "{detail}"
    );
    // The rollback's weight 0 still ran.
    assert!(audit_actions(state.path()).iter().any(|a| a == "traffic"));
}

/// `rolldeck __migrate` (the demo's runner) with DATABASE_URL.
fn runner(dir: &Path, url: &str, args: &[&str]) -> common::Run {
    let mut all = vec!["__migrate", "--dir", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    common::run(&all, &[("DATABASE_URL", url)], Duration::from_secs(60))
}

#[test]
fn the_demo_runner_follows_golang_migrate() {
    let Some(pg) = shared_pg("the_demo_runner_follows_golang_migrate") else {
        return;
    };
    pg.create_db("runner");
    let url = pg.url("runner");
    let files = dir_with(&[
        ("1_a.up.sql", "CREATE TABLE a (id int);"),
        ("1_a.down.sql", "DROP TABLE a;"),
        (
            "2_b.up.sql",
            "CREATE TABLE b (id int);\nINSERT INTO b VALUES (1);",
        ),
        ("2_b.down.sql", "DROP TABLE b;"),
        // Fails half-way: the table it created first is rolled back too.
        ("3_c.up.sql", "CREATE TABLE c (id int);\nSELECT 1 / 0;"),
        ("3_c.down.sql", "DROP TABLE c;"),
    ]);
    let version = || {
        pg.psql(
            "runner",
            "SELECT version || ' ' || dirty FROM schema_migrations",
        )
    };
    let r = runner(files.path(), &url, &["up", "1"]);
    assert_eq!(
        (r.code, r.stdout.lines().count()),
        (0, 1),
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert!(r.stdout.starts_with("1/u a ("), "{}", r.stdout);
    assert_eq!(version().trim(), "1 false");
    // Up stops at the failing file: dirty at its version, its work undone.
    let r = runner(files.path(), &url, &["up"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.starts_with("2/u b ("), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("migration failed in 3_c.up.sql: division by zero"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(pg::PASSWORD));
    assert_eq!(version().trim(), "3 true");
    assert!(
        pg.psql_try("runner", "SELECT 1 FROM c").is_err(),
        "the file ran as one transaction"
    );
    // rolldeck's own reading of the table says dirty at 3.
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(
        tmp.path(),
        "golang-migrate",
        files.path(),
        &format!("database_url = \"{url}\""),
    );
    let (code, s, _) = migrations_json(&cfg, &[]);
    assert_eq!(
        (s["dirty"].clone(), strings(&s["failed"])),
        (true.into(), vec!["3".to_string()])
    );
    assert_eq!(code, 1);
    // A dirty database refuses everything, as golang-migrate does.
    let r = runner(files.path(), &url, &["down", "1"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("Dirty database version 3. Fix and force version."),
        "{}",
        r.stderr
    );
    // Forced back to 2: down undoes newest first, to the nil version (no row).
    pg.psql(
        "runner",
        "UPDATE schema_migrations SET version = 2, dirty = false",
    );
    let r = runner(files.path(), &url, &["version"]);
    assert_eq!((r.code, r.stdout.trim()), (0, "2"));
    let r = runner(files.path(), &url, &["down", "3"]);
    assert_eq!(r.code, 1, "only 2 applied: refused before anything runs");
    assert_eq!(version().trim(), "2 false");
    let r = runner(files.path(), &url, &["down", "2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r
        .stdout
        .lines()
        .map(|l| l.split(" (").next().unwrap())
        .collect();
    assert_eq!(lines, vec!["2/d b", "1/d a"]);
    assert_eq!(
        pg.psql("runner", "SELECT count(*) FROM schema_migrations")
            .trim(),
        "0"
    );
    let r = runner(files.path(), &url, &["version"]);
    assert_eq!((r.code, r.stderr.trim()), (1, "error: no migration"));
    let r = runner(files.path(), &url, &["up", "2"]);
    assert_eq!(r.code, 0);
    let r = runner(files.path(), &url, &["up", "2"]);
    assert_eq!((r.code, r.stderr.contains("division by zero")), (1, true));
    // No URL: an error that names the variable.
    let r = common::run(
        &["__migrate", "--dir", files.path().to_str().unwrap(), "up"],
        &[],
        Duration::from_secs(30),
    );
    assert!(
        r.code == 1 && r.stderr.contains("DATABASE_URL is not set"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_directory_only_source_lints_and_claims_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let versions = fixture().join("migrations/versions");
    let cfg = config(tmp.path(), "alembic", &versions, "");
    let (code, s, _) = migrations_json(&cfg, &[]);
    assert_eq!(
        (s["ok"].clone(), s["directory_only"].clone()),
        (true.into(), true.into()),
        "{s}"
    );
    assert_eq!(s["current"], serde_json::json!([]));
    assert_eq!(s["pending"].as_array().unwrap().len(), 5, "{s}");
    assert_eq!(code, 1, "the fixture has a destructive revision");
    // Without an error finding it exits 0 (usable as a lint in CI).
    let clean = dir_with(&[
        ("1_a.up.sql", "CREATE TABLE a (id int);"),
        ("1_a.down.sql", "DROP TABLE a;"),
    ]);
    let cfg = config(tmp.path(), "golang-migrate", clean.path(), "");
    let (code, s, _) = migrations_json(&cfg, &[]);
    assert_eq!(
        (code, pending_revisions(&s)),
        (0, vec!["1".to_string()]),
        "{s}"
    );
    // Text output says it read no database.
    let run = common::run(
        &["--config", cfg.to_str().unwrap(), "migrations"],
        &[],
        Duration::from_secs(30),
    );
    assert!(
        run.stdout
            .contains("applied state not read (directory only)"),
        "{}",
        run.stdout
    );
    // A step or a gate needing the database is refused at load.
    let step = config_with(
        tmp.path(),
        "golang-migrate",
        clean.path(),
        "upgrade = [\"true\"]",
        "[plans.p]\n[[plans.p.steps]]\nkind = \"migration\"\n",
    );
    let run = common::run(
        &["--config", step.to_str().unwrap(), "check"],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("reads no database (directory only)"),
        "{}{}",
        run.stdout,
        run.stderr
    );
}
