//! A real PostgreSQL (Debian's binaries under /usr/lib/postgresql/*/bin)
//! for the test: `initdb` into a temporary dir (as `nobody` through
//! `setpriv` when running as root, since PostgreSQL refuses root), password
//! authentication (scram-sha-256) for user `rolldeck`, a free 127.0.0.1
//! port, the unix socket in the temporary dir; stopped (fast shutdown) and
//! removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The superuser the harness creates.
pub const USER: &str = "rolldeck";
/// Its password.
pub const PASSWORD: &str = "s3cret-pg-Passw0rd";

/// The newest `bin` dir holding `initdb` and `postgres`.
pub fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file()).then_some((v, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, b)| b)
}

/// A running server.
pub struct Postgres {
    child: Child,
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `cmd` run as `nobody` when we are root.
fn as_postgres_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--reset-env",
        ])
        .arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl Postgres {
    /// Starts a server, or `None` after printing why the test skips; panics
    /// when `ROLLDECK_TEST_REQUIRE` names `postgres` and it cannot start.
    pub fn start_or_skip(test: &str) -> Option<Postgres> {
        let Some(bin) = bin_dir() else {
            assert!(
                !super::required("postgres"),
                "{test}: postgres is required (ROLLDECK_TEST_REQUIRE) but /usr/lib/postgresql/*/bin/initdb is missing"
            );
            eprintln!("skipped {test}: PostgreSQL not installed (Debian package `postgresql`)");
            return None;
        };
        Some(Self::start(bin))
    }

    fn start(bin: PathBuf) -> Postgres {
        let dir = tempfile::Builder::new()
            .prefix("rolldeck-pg")
            .tempdir()
            .expect("tempdir");
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, format!("{PASSWORD}\n")).unwrap();
        if is_root() {
            let nobody = nix::unistd::User::from_name("nobody")
                .ok()
                .flatten()
                .expect("user nobody");
            let group = nix::unistd::Group::from_name("nogroup")
                .ok()
                .flatten()
                .map(|g| g.gid.as_raw());
            for p in [dir.path(), pwfile.as_path()] {
                std::os::unix::fs::chown(p, Some(nobody.uid.as_raw()), group).unwrap();
            }
        }
        let out = as_postgres_user(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                USER,
                "--auth=scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdin(Stdio::null())
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let child = as_postgres_user(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        let pg = Postgres {
            child,
            dir,
            bin,
            port,
        };
        let start = Instant::now();
        loop {
            if pg.psql_try("postgres", "SELECT 1").is_ok() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "postgres did not accept connections within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        pg
    }

    /// A `postgres://` URL for database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{db}", self.port)
    }

    /// A SQLAlchemy URL (psycopg2) for database `db`.
    pub fn sqlalchemy_url(&self, db: &str) -> String {
        format!(
            "postgresql://{USER}:{PASSWORD}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// Runs SQL with psql; `Err(stderr)` on failure.
    pub fn psql_try(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                db,
                "-c",
                sql,
            ])
            .env("PGPASSWORD", PASSWORD)
            .env("PGCONNECT_TIMEOUT", "5")
            .stdin(Stdio::null())
            .output();
        stdout_or_stderr(out)
    }

    /// Runs SQL with psql; panics on failure.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.psql_try(db, sql)
            .unwrap_or_else(|e| panic!("psql {sql}: {e}"))
    }

    /// Creates a database.
    pub fn create_db(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
    }

    /// The temporary dir (socket, data).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT: fast shutdown.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        );
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Real Alembic: `/usr/bin/python3 -m alembic` with SQLAlchemy and
/// psycopg2 (Debian's python3-alembic, python3-psycopg2), or `None` after
/// printing why the test skips; panics when `ROLLDECK_TEST_REQUIRE` names
/// `alembic`.
pub fn alembic_or_skip(test: &str) -> Option<()> {
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import alembic, sqlalchemy, psycopg2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(());
    }
    assert!(
        !super::required("alembic"),
        "{test}: alembic is required (ROLLDECK_TEST_REQUIRE) but /usr/bin/python3 cannot import alembic, sqlalchemy and psycopg2"
    );
    eprintln!(
        "skipped {test}: Alembic not installed (Debian packages python3-alembic python3-psycopg2)"
    );
    None
}

/// Runs `python3 -m alembic -c INI ARGS…` against `url`; returns stdout,
/// panics with stderr on failure.
pub fn alembic(ini: &Path, url: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new("/usr/bin/python3")
        .args(["-m", "alembic", "-c"])
        .arg(ini)
        .args(args)
        .env("DATABASE_URL", url)
        .stdin(Stdio::null())
        .output();
    stdout_or_stderr(out)
}

/// A finished command's stdout, or its stderr when it failed.
fn stdout_or_stderr(out: std::io::Result<std::process::Output>) -> Result<String, String> {
    let out = out.map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
